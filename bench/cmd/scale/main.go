// Command scale runs one Picket scale run and writes its report as JSON, or, with
// -summary, prints the reports in the given JSON files as one markdown table.
//
//	scale -targets 10000 -duration 60s -out bench/out/scale-10000.json [-cpuprofile cpu.out]
//	scale -summary bench/out/scale-1000.json bench/out/scale-10000.json
//	scale -daemon -targets 10000 -duration 60s -out bench/out/daemon-10000.json [-heapprofile heap.out]
//	scale -daemon -summary bench/out/daemon-1000.json bench/out/daemon-10000.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/picket-dev/picket/bench"
)

func main() {
	bench.ServeChildIfAsked() // Run re-executes this binary as its server child
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	var o bench.Options
	fs.IntVar(&o.Targets, "targets", 1000, "how many targets (up to 100, or a multiple of 100)")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "how long the scheduler (or the daemon, once ready) runs")
	fs.DurationVar(&o.Interval, "interval", 10*time.Second, "every target's interval")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "every journey's timeout")
	fs.IntVar(&o.Concurrency, "concurrency", 256, "the scheduler's bound on runs at once (not with -daemon)")
	out := fs.String("out", "", "write the report as JSON to this file (default: stdout)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (with -daemon: of the daemon, after its first interval)")
	daemon := fs.Bool("daemon", false, "run the whole daemon (picket run: engine, store, metrics, status page) in a process of its own")
	heapProfile := fs.String("heapprofile", "", "with -daemon: write a heap profile of the daemon at the end to this file")
	scrapeEvery := fs.Duration("scrape-every", 15*time.Second, "with -daemon: read /metrics this often (negative: only at the end)")
	statusEvery := fs.Duration("status-every", 10*time.Second, "with -daemon: read /api/v1/status this often, as an open status page does (negative: never)")
	summary := fs.Bool("summary", false, "print the reports in the JSON files given as arguments as a markdown table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *summary {
		return summarize(fs.Args(), *daemon, stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *daemon {
		rep, err := bench.RunDaemon(ctx, bench.DaemonOptions{Targets: o.Targets, Duration: o.Duration, Interval: o.Interval,
			Timeout: o.Timeout, ScrapeEvery: *scrapeEvery, StatusEvery: *statusEvery, HeapProfile: *heapProfile, CPUProfile: *cpuProfile})
		if rep != nil {
			fmt.Fprint(os.Stderr, bench.DaemonTable([]*bench.DaemonReport{rep}))
		}
		if err != nil {
			return err
		}
		return writeReport(rep, *out, stdout)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.CPUProfile = f
	}
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, bench.Table([]*bench.Report{rep}))
	return writeReport(rep, *out, stdout)
}

func writeReport(rep any, out string, stdout io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if out == "" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

func summarize(files []string, daemon bool, stdout io.Writer) error {
	if len(files) == 0 {
		return fmt.Errorf("-summary: name the report files")
	}
	var table string
	if daemon {
		reps, err := readReports[bench.DaemonReport](files, "a daemon scale report")
		if err != nil {
			return err
		}
		table = bench.DaemonTable(reps)
	} else {
		reps, err := readReports[bench.Report](files, "a scale report")
		if err != nil {
			return err
		}
		table = bench.Table(reps)
	}
	_, err := io.WriteString(stdout, table)
	return err
}

// readReports reads each file as a JSON report of type T (what names it in errors).
func readReports[T any](files []string, what string) ([]*T, error) {
	var reps []*T
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		r := new(T)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("%s: want %s in JSON: %w", name, what, err)
		}
		reps = append(reps, r)
	}
	return reps, nil
}
