package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/store"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// pageTimeout bounds how long a one-shot run waits for its pages to be accepted.
const pageTimeout = 60 * time.Second

// pageResults sends what one check run found. With stateDir, thresholds and open
// incidents come from the same store the daemon uses, so cron runs behave like the
// daemon; without it every down target pages at once and everything not failing is
// resolved (dedup keys make repeated runs harmless). It returns how many notifications
// could not be delivered (they stay queued in stateDir for the next run).
func pageResults(ctx context.Context, cfg *config.Config, stateDir string, results []probe.Result, stderr io.Writer, log *slog.Logger) (int, error) {
	stateless := stateDir == ""
	if stateless {
		dir, err := os.MkdirTemp("", "picket-page-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		stateDir = dir
		cfg = cfg.WithThresholds(1, 1) // one result per target: one failure fires, one success resolves
	}
	st, err := store.Open(stateDir, store.Options{})
	if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	defer st.Close()
	var eng *alert.Engine
	ob, err := notify.NewOutbox(notify.OutboxOptions{Store: st, Notifiers: notifiers.Build(cfg, nil, log), Logger: log,
		OnResult: func(r notify.AttemptResult) {
			if eng != nil {
				eng.NoteDelivery(r)
			}
		}})
	if err != nil {
		return 0, err
	}
	noWait := time.Duration(0)
	eng, err = alert.NewEngine(alert.EngineOptions{Config: cfg, Store: st, Outbox: ob, Logger: log, GroupWait: &noWait})
	if err != nil {
		return 0, err
	}
	eng.ObserveAll(results)
	if stateless {
		eng.ResolveQuiet()
	}
	flushCtx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	_ = ob.Flush(flushCtx)
	for _, e := range ob.Entries() {
		fmt.Fprintf(stderr, "picket: not delivered yet: %s %s via %s (%d attempts): %s\n", e.Action, e.DedupKey, e.Notifier, e.Attempts, e.LastError)
	}
	return ob.Pending(), nil
}
