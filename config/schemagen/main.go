// Command schemagen writes the JSON Schema of Picket's config file (config.File and the
// types under it), with each key's description taken from the Go comment of its field.
// Run by `go generate ./config`.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	out := flag.String("o", "picket.schema.json", "file to write")
	src := flag.String("src", ".,../probe/expect", "comma-separated folders of the Go source whose comments describe the keys")
	flag.Parse()
	b, err := generate(strings.Split(*src, ","))
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}
