package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/config"
)

func newPageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "page", Short: "Paging tools"}
	var path, name string
	test := &cobra.Command{
		Use:   "test -c FILE --notifier NAME",
		Short: "Send a test trigger and its resolve through one notifier",
		Long: `Send a test trigger and then its resolve through one notifier, so that a person can
verify a routing key or webhook before an outage does. Exit 0 when both were accepted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			nf, ok := notifiers.Build(cfg, nil, nil)[name]
			if !ok {
				return &exitError{code: exitUsage, err: fmt.Errorf("--notifier %q is not defined under notifiers: in %s", name, path)}
			}
			now := time.Now().UTC()
			key := fmt.Sprintf("picket/test/%s/%d", cfg.Vantage, now.Unix())
			n := notify.Notification{
				ID: key + "|trigger", Action: notify.ActionTrigger, DedupKey: key, Scope: "test",
				Summary:  fmt.Sprintf("[TEST] Picket test page from %s; no action needed, it resolves itself", cfg.Vantage),
				Severity: notify.SeverityInfo, Source: cfg.Vantage, Created: now,
				Details: map[string]any{"test": true, "vantage": cfg.Vantage, "notifier": name},
			}
			out := cmd.OutOrStdout()
			if err := sendWithRetry(cmd.Context(), nf, n); err != nil {
				return &exitError{code: exitDown, err: fmt.Errorf("test trigger via %s (%s) failed: %w", name, nf.Kind(), err)}
			}
			fmt.Fprintf(out, "trigger accepted by %s (%s), dedup key %s\n", name, nf.Kind(), key)
			n.ID, n.Action, n.Summary = key+"|resolve", notify.ActionResolve, "[TEST] Picket test page resolved"
			if err := sendWithRetry(cmd.Context(), nf, n); err != nil {
				return &exitError{code: exitDown, err: fmt.Errorf("test resolve via %s failed (resolve %s by hand): %w", name, key, err)}
			}
			fmt.Fprintf(out, "resolve accepted by %s\n", name)
			return nil
		},
	}
	addConfigFlag(test, &path)
	test.Flags().StringVar(&name, "notifier", "", "notifier name from the config")
	_ = test.MarkFlagRequired("notifier")
	_ = test.RegisterFlagCompletionFunc("notifier", completeNames(func(n config.Names) []string { return n.Notifiers }))
	cmd.AddCommand(test)
	return cmd
}

// sendWithRetry tries a few times with a short backoff: a person is waiting.
func sendWithRetry(ctx context.Context, nf notify.Notifier, n notify.Notification) error {
	var err error
	for attempt, wait := 1, time.Second; attempt <= 3; attempt, wait = attempt+1, wait*2 {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = nf.Notify(actx, n)
		cancel()
		if err == nil || notify.IsPermanent(err) {
			return err
		}
		if ra := notify.RetryAfter(err); ra > wait {
			wait = ra
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return err
}
