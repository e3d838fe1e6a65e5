package fleet

import (
	"fmt"

	"github.com/picket-dev/picket/alert/notify"
)

// PageRecords is the part of a fleet's page records that the outbox's hooks need (the
// daemon adapts alert/cluster to it; the outage simulator has an in-memory one).
type PageRecords interface {
	// Name is this member's name, as page records carry it in By.
	Name() string
	Page(key string) (Page, bool)
	// RecordPage records this member's trigger (open) or resolve, not yet confirmed.
	RecordPage(key string, open bool)
	// ConfirmPage confirms this member's own unconfirmed record with the same open.
	ConfirmPage(key string, open bool)
}

// ConfirmPage tells the fleet the paging service accepted a notification (the outbox's
// OnResult, for accepted attempts). Usually that confirms this vantage's own record.
// Otherwise this acceptance is the paging service's latest word on the key (the others'
// records were accepted before, or are still in flight), so it becomes the record:
// after a crash lost this vantage's record, or when a stale trigger got through and
// reopened an incident another vantage had resolved (then this vantage's queued resolve
// must not count as superseded).
func ConfirmPage(p PageRecords, r notify.AttemptResult) {
	if !r.Complete {
		return // another notifier of the same notification has not accepted yet
	}
	open := r.Action == notify.ActionTrigger
	rec, ok := p.Page(r.DedupKey)
	switch {
	case ok && rec.Open == open && rec.By == p.Name():
		p.ConfirmPage(r.DedupKey, open)
	case !ok || rec.Open != open || !rec.Confirmed:
		p.RecordPage(r.DedupKey, open)
		p.ConfirmPage(r.DedupKey, open)
	}
}

// ObsoletePage says why a queued notification was superseded by another vantage, or ""
// (the outbox's Obsolete hook). A trigger is superseded by an accepted trigger of
// another vantage (the incident is open already) or by anything it had accepted after
// this trigger was made: after a takeover, this vantage's old trigger must not reopen a
// resolved incident once its paging service answers again. A resolve is superseded by
// another vantage's accepted resolve made after the incident opened, the latest word on
// the key (a stale trigger of this vantage that got through would have become the
// record instead: ConfirmPage).
func ObsoletePage(p PageRecords, n notify.Notification) string {
	rec, ok := p.Page(n.DedupKey)
	if !ok || rec.By == p.Name() || !rec.Confirmed {
		return ""
	}
	later := rec.At.After(n.Created.Add(clockSlack)) // a fresh trigger is not dropped against a resolve of about the same time
	switch {
	case n.Action == notify.ActionTrigger && rec.Open:
		return fmt.Sprintf("vantage %s's trigger was accepted: the incident is open", rec.By)
	case n.Action == notify.ActionTrigger && later:
		return fmt.Sprintf("vantage %s's resolve was accepted after this trigger was made", rec.By)
	case n.Action == notify.ActionResolve && !rec.Open && rec.At.After(n.Opened):
		// (A resolve from before this incident opened, e.g. the fleet's while this
		// vantage was cut off and paged alone, does not close it.)
		return fmt.Sprintf("vantage %s's resolve of this incident was accepted", rec.By)
	}
	return ""
}
