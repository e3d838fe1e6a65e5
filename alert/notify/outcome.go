package notify

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
)

// Outcomes of a notification with one notifier.
const (
	OutcomeAccepted = "accepted" // the receiver took it
	OutcomeRefused  = "refused"  // failed for good: retrying cannot help (a fallback may follow)
	OutcomeQueued   = "queued"   // not delivered yet: it stays in the outbox for the next run
)

// Outcome is where one notification stands with one notifier once a flush is over:
// what a one-shot `picket check --page` reports, so the person who ran it knows what
// the on-call was told. Reason is the receiver's answer as the notifier redacted it.
type Outcome struct {
	Action   string `json:"action"`
	DedupKey string `json:"dedup_key"`
	Notifier string `json:"notifier"`
	Fallback bool   `json:"fallback,omitempty"`
	Outcome  string `json:"outcome"`          // accepted, refused, queued
	Reason   string `json:"reason,omitempty"` // why refused, or the last error while queued
	Attempts int    `json:"attempts"`
}

// String is one line: "trigger picket/region/eu1 via pd: accepted".
func (o Outcome) String() string {
	via := o.Notifier
	if o.Fallback {
		via += " (fallback)"
	}
	line := fmt.Sprintf("%s %s via %s: ", o.Action, o.DedupKey, via)
	switch o.Outcome {
	case OutcomeAccepted:
		return line + "accepted"
	case OutcomeRefused:
		return line + "refused: " + o.Reason
	}
	line += fmt.Sprintf("still queued (%d attempts)", o.Attempts)
	if o.Reason != "" {
		line += ": " + o.Reason
	}
	return line
}

// Outcomes gathers the outbox's attempt results; Record is an OutboxOptions.OnResult.
// Safe for the outbox's concurrent sends.
type Outcomes struct {
	mu   sync.Mutex
	last map[outcomeKey]Outcome
}

type outcomeKey struct {
	notification, notifier string
	fallback               bool
}

// Record keeps the latest result per notification and notifier.
func (o *Outcomes) Record(r AttemptResult) {
	out := Outcome{Action: r.Action, DedupKey: r.DedupKey, Notifier: r.Notifier, Fallback: r.Fallback,
		Outcome: OutcomeAccepted, Attempts: r.Attempt}
	if r.Err != nil {
		out.Outcome, out.Reason = OutcomeQueued, r.Err.Error() // retried, unless permanent
		if r.Permanent {
			out.Outcome = OutcomeRefused
		}
	}
	o.put(outcomeKey{r.NotificationID, r.Notifier, r.Fallback}, out)
}

func (o *Outcomes) put(k outcomeKey, out Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = map[outcomeKey]Outcome{}
	}
	o.last[k] = out
}

// List returns one outcome per notification and notifier: triggers first (what paged
// someone), then by dedup key, a fallback after its primary. pending (Outbox.Entries
// after the flush) are recorded as still queued, also those never tried.
func (o *Outcomes) List(pending []EntryInfo) []Outcome {
	for _, e := range pending {
		o.put(outcomeKey{e.NotificationID, e.Notifier, e.Fallback}, Outcome{Action: e.Action, DedupKey: e.DedupKey,
			Notifier: e.Notifier, Fallback: e.Fallback, Outcome: OutcomeQueued, Reason: e.LastError, Attempts: e.Attempts})
	}
	o.mu.Lock()
	out := make([]Outcome, 0, len(o.last))
	for _, v := range o.last {
		out = append(out, v)
	}
	o.mu.Unlock()
	slices.SortFunc(out, func(a, b Outcome) int {
		return cmp.Or(cmp.Compare(actionRank(a.Action), actionRank(b.Action)), cmp.Compare(a.DedupKey, b.DedupKey),
			cmp.Compare(a.Action, b.Action), compareBool(a.Fallback, b.Fallback), cmp.Compare(a.Notifier, b.Notifier))
	})
	return out
}

func actionRank(action string) int {
	if action == ActionTrigger {
		return 0
	}
	return 1
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}
