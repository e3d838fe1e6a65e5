// Command summary prints the benchmark figures under bench/out as one markdown table
// and writes them as JSON: Go benchmarks (gobench.txt, `go test -bench` output), scale
// runs (scale-*.json), time to page (timetopage.json) and the soak (soak.json), as far
// as they exist.
//
//	summary [-dir bench/out] [-json bench/out/summary.json]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/picket-dev/picket/bench/summary"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
}

// run prints the table and writes the JSON even when a file did not parse (its row is
// left out), and then reports the error.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	dir := fs.String("dir", "bench/out", "the directory holding the figures")
	out := fs.String("json", "", "write the summary as JSON here (default: DIR/summary.json; - for none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: the files are found in -dir", fs.Args())
	}
	if *out == "" {
		*out = filepath.Join(*dir, "summary.json")
	}
	s, loadErr := summary.Load(*dir)
	if _, err := io.WriteString(stdout, s.Markdown()); err != nil {
		return err
	}
	if *out != "-" {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
	}
	return loadErr
}
