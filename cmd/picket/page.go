package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
)

// pageTimeout bounds how long a one-shot run waits for its pages to be accepted.
const pageTimeout = 60 * time.Second

// pageResults sends what one check run found. With stateDir, thresholds and open
// incidents come from the same store the daemon uses, so cron runs behave like the
// daemon; without it every down target pages at once and everything not failing is
// resolved (dedup keys make repeated runs harmless). It returns what became of each
// notification, secrets redacted; the queued ones stay in stateDir for the next run.
func pageResults(ctx context.Context, cfg *config.Config, stateDir string, results []probe.Result, log *slog.Logger) ([]notify.Outcome, error) {
	stateless := stateDir == ""
	if stateless {
		dir, err := os.MkdirTemp("", "picket-page-")
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		defer os.RemoveAll(dir)
		stateDir = dir
		cfg = cfg.WithThresholds(1, 1) // one result per target: one failure fires, one success resolves
	}
	st, err := store.Open(stateDir, store.Options{})
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer st.Close()
	var outcomes notify.Outcomes
	noWait := time.Duration(0)
	eng, ob, err := alert.NewPaging(alert.PagingOptions{
		Engine: alert.EngineOptions{Config: cfg, Store: st, Logger: log, GroupWait: &noWait},
		Outbox: notify.OutboxOptions{Store: st, Notifiers: notifiers.BuildWith(cfg, notifiers.Options{Logger: log, Threads: st}), Logger: log,
			OnResult: outcomes.Record},
	})
	if err != nil {
		return nil, err
	}
	eng.ObserveAll(results)
	if stateless {
		eng.ResolveQuiet()
	}
	flushCtx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	_ = ob.Flush(flushCtx) // what is left is reported as queued
	list := outcomes.List(ob.Entries())
	redact := scrub.New(notifiers.Secrets(cfg)...) // built once, not per outcome
	for i := range list {
		// Each notifier redacts its own answers; this is the last line before a terminal.
		list[i].Reason = redact.String(cfg.Secrets.Redact(list[i].Reason))
	}
	return list, nil
}

// undelivered counts the notifications still queued after a run.
func undelivered(pages []notify.Outcome) int {
	n := 0
	for _, p := range pages {
		if p.Outcome == notify.OutcomeQueued {
			n++
		}
	}
	return n
}
