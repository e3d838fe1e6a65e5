package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

type checkFlags struct {
	path        string
	products    []string
	regions     []string
	journeys    []string
	output      string
	concurrency int
	page        bool
	stateDir    string
	shard       string
	log         logFlags
}

func newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Run each selected target once and print the results",
		Long: `Run each selected target once, print a table (or JSON with -o json).
Exit status: 0 when every target is up or degraded, 1 when any is down, 2 on a config
or usage error. A certificate near expiry (cert_min_days) is a warning, shown under
the result (cert_warnings in JSON): alone, it is no reason to exit 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCheck(cmd, f) },
	}
	addConfigFlag(cmd, &f.path)
	fl := cmd.Flags()
	fl.StringSliceVar(&f.products, "product", nil, "only these products (repeat or comma-separate)")
	fl.StringSliceVar(&f.regions, "region", nil, "only these regions")
	fl.StringSliceVar(&f.journeys, "journey", nil, "only these journeys")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fl.IntVar(&f.concurrency, "concurrency", 0, "targets run at once (default: the config's concurrency)")
	fl.BoolVar(&f.page, "page", false, "send triggers for what is down and resolves for what is up, through the config's routes")
	fl.StringVar(&f.stateDir, "state", "", "with --page: keep alert state here (thresholds and open incidents, as the daemon does)")
	addLogFlags(cmd, &f.log, "warn") // a one-shot run prints its report; only trouble belongs on stderr
	addShardFlag(cmd, &f.shard)
	_ = cmd.RegisterFlagCompletionFunc("product", completeNames(func(n config.Names) []string { return n.Products }))
	_ = cmd.RegisterFlagCompletionFunc("region", completeNames(func(n config.Names) []string { return n.Regions }))
	_ = cmd.RegisterFlagCompletionFunc("journey", completeNames(func(n config.Names) []string { return n.Journeys }))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runCheck(cmd *cobra.Command, f checkFlags) error {
	if f.stateDir != "" && !f.page {
		return &exitError{code: exitUsage, err: fmt.Errorf("--state goes with --page")}
	}
	if f.output != "table" && f.output != "json" {
		return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: want table or json", f.output)}
	}
	cfg, err := loadConfig(cmd, f.path)
	if err != nil {
		return err
	}
	sh, err := shardFlag(f.shard)
	if err != nil {
		return err
	}
	if sh != nil {
		if cfg, err = cfg.WithShard(*sh); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	targets := selectTargets(cfg.Targets, f)
	if len(targets) == 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("no target matches --product %v --region %v --journey %v", f.products, f.regions, f.journeys)}
	}
	concurrency := cfg.Concurrency
	if f.concurrency > 0 {
		concurrency = f.concurrency
	}
	runner := probe.NewRunner(probe.WithScreenshotDir(checkScreenshotDir(cfg, f)))
	defer runner.Close()
	started := time.Now()
	results := runner.RunAll(cmd.Context(), targets, concurrency)
	rep := alert.BuildReport(cfg, started, results)
	// The table goes out before paging (a person reads it while pages are sent); the JSON
	// after, since it carries what became of the pages.
	if f.output == "table" {
		if err := printReport(cmd, f.output, rep); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	var pageErr error
	if f.page {
		rep.Pages, pageErr = sendPages(cmd, f, cfg, results)
	}
	if f.output == "json" {
		if err := printReport(cmd, f.output, rep); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	if pageErr != nil {
		return pageErr
	}
	if rep.Summary.Down > 0 {
		return &exitError{code: exitDown}
	}
	return nil
}

// checkScreenshotDir is where check keeps the screenshots of failed browser steps: in
// --state's folder, else in the config's state_dir (each reason names its file).
func checkScreenshotDir(cfg *config.Config, f checkFlags) string {
	dir := cfg.StateDir
	if f.stateDir != "" {
		dir = f.stateDir
	}
	return filepath.Join(dir, "screenshots")
}

// sendPages pages what the run found and tells what became of each notification: one
// line per notification on stderr with the table (stdout stays the report), in the
// report's "pages" with JSON. A notification still queued makes the run fail.
func sendPages(cmd *cobra.Command, f checkFlags, cfg *config.Config, results []probe.Result) ([]notify.Outcome, error) {
	log, err := f.log.logger(cmd.ErrOrStderr())
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	pages, err := pageResults(cmd.Context(), cfg, f.stateDir, results, log)
	if err != nil {
		return nil, &exitError{code: exitDown, err: fmt.Errorf("paging: %w", err)}
	}
	if f.output == "table" {
		for _, p := range pages {
			fmt.Fprintln(cmd.ErrOrStderr(), "picket: page: "+p.String())
		}
	}
	if n := undelivered(pages); n > 0 {
		return pages, &exitError{code: exitDown, err: fmt.Errorf("%d notification(s) not delivered; they stay queued", n)}
	}
	return pages, nil
}

func printReport(cmd *cobra.Command, format string, rep alert.Report) error {
	if format == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return alert.WriteTable(cmd.OutOrStdout(), rep)
}

func selectTargets(all []*config.Target, f checkFlags) []*config.Target {
	var out []*config.Target
	for _, t := range all {
		if matches(f.products, t.Product) && matches(f.regions, t.Region) && matches(f.journeys, t.Journey) {
			out = append(out, t)
		}
	}
	return out
}

func matches(filter []string, v string) bool { return len(filter) == 0 || slices.Contains(filter, v) }
