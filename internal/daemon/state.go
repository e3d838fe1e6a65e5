package daemon

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
)

// DefaultStateAlarmAfter is how long state writes must keep failing before the [STATE]
// notice goes out, and keep working before it is resolved: a disk that fills and frees
// within seconds is logged, not paged.
const DefaultStateAlarmAfter = 30 * time.Second

// stateWatch follows the store's Health from the tick (one goroutine: no lock).
type stateWatch struct {
	after       time.Duration
	resetsSeen  int
	errorsSeen  uint64
	troubleFrom time.Time // the tick that saw the first failure of the current trouble; zero: none
	lastFailure time.Time // the last tick that saw a new failure
	open        bool      // the [STATE] notice is out
}

// watchState runs from the tick, every second: metrics, the notice when state writes
// keep failing, and after the store started a fresh file, memory written to it again.
func (d *daemon) watchState(now time.Time) {
	h := d.store.Health()
	d.metrics.outboxUnpersisted.Set(float64(d.outbox.Unpersisted()))
	for _, r := range h.Resets[min(d.state.resetsSeen, len(h.Resets)):] {
		d.stateLost(r)
	}
	d.state.resetsSeen = len(h.Resets)
	d.stateTrouble(now, h)
}

// stateTrouble opens the [STATE] notice once writes have kept failing for the alarm's
// length, and resolves it once none has failed (and one has worked) for as long. A
// failure counts when the error count moved, so a disk where some writes still fit
// (bbolt reuses freed pages) is trouble all the same.
func (d *daemon) stateTrouble(now time.Time, h store.Health) {
	w := &d.state
	if h.WriteErrors > w.errorsSeen {
		d.metrics.storeWriteErrors.Add(float64(h.WriteErrors - w.errorsSeen))
		w.errorsSeen, w.lastFailure = h.WriteErrors, now
		if w.troubleFrom.IsZero() {
			w.troubleFrom = now
		}
	}
	vantage := d.config().Vantage
	switch {
	case w.troubleFrom.IsZero():
	case now.Sub(w.lastFailure) >= w.after && h.FailingSince.IsZero():
		w.troubleFrom = time.Time{}
		if w.open {
			w.open = false
			d.stateNotice("picket/state/"+vantage, false, fmt.Sprintf("[STATE %s] writes its state again", vantage), map[string]any{})
		}
	case !w.open && now.Sub(w.troubleFrom) >= w.after:
		w.open = true
		d.stateNotice("picket/state/"+vantage, true, fmt.Sprintf("[STATE %s] cannot write its state: %v", vantage, h.LastError),
			map[string]any{"failing_since": h.FailingSince, "write_errors": h.WriteErrors,
				"consequence": "pages still go out from memory; what is not written is lost if Picket restarts"})
	}
}

// stateLost writes what is in memory to the fresh file the store started, and says so.
func (d *daemon) stateLost(r store.Reset) {
	d.metrics.storeResets.Inc()
	d.log.Warn("state: writing the open incidents, target states and undelivered notifications to the fresh state file",
		"reason", r.Reason)
	d.engine.PersistAgain()
	d.outbox.PersistAgain()
	vantage := d.config().Vantage
	summary := fmt.Sprintf("[STATE %s] state was lost: %s; started a fresh state file", vantage, r.Reason)
	if r.Copied {
		summary = fmt.Sprintf("[STATE %s] its state file was %s; a fresh one holds a copy", vantage, r.Reason)
	}
	if r.MovedTo != "" {
		summary += "; the old file is kept as " + r.MovedTo
	}
	d.stateNotice("picket/state-lost/"+vantage, true, summary,
		map[string]any{"reason": r.Reason, "moved_to": r.MovedTo, "copied": r.Copied, "at": r.At.UTC()})
}

// stateNotice queues a [STATE] notice (trigger or resolve) to the fleet's or the
// self-check's notifiers; without either it is only logged.
func (d *daemon) stateNotice(key string, open bool, summary string, details map[string]any) {
	cfg := d.config()
	d.log.Warn("state notice: "+summary, "key", key)
	to := stateNotifiers(cfg)
	if len(to) == 0 {
		return
	}
	action := notify.ActionResolve
	if open {
		action = notify.ActionTrigger
	}
	now := time.Now()
	n := notify.Notification{
		ID: fmt.Sprintf("%s|%s|%d", key, action, now.UnixNano()), Action: action,
		DedupKey: key, Scope: "state", Subject: cfg.Vantage, Summary: summary,
		Severity: notify.SeverityError, Source: cfg.Vantage, Created: now.UTC(), Details: details,
	}
	if err := d.outbox.Enqueue(notify.Delivery{Notification: n, Notify: to}); err != nil {
		d.log.Error("could not queue the state notice", "key", key, "err", err)
	}
}

// stateNotifiers: where notices about this vantage itself go (cluster.notify defaults to
// self_check.notify).
func stateNotifiers(cfg *config.Config) []string {
	if cfg.Cluster != nil && len(cfg.Cluster.Notify) > 0 {
		return cfg.Cluster.Notify
	}
	if cfg.SelfCheck != nil {
		return cfg.SelfCheck.Notify
	}
	return nil
}
