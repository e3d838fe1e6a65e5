package sim

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/picket-dev/picket/alert/notify"
)

// Receiver kinds, as the config names them.
const (
	KindPagerDuty = "pagerduty"
	KindSlack     = "slack"
	KindWebhook   = "webhook"
)

// Receiver faults: what a receiver answers while the fault lasts.
const (
	FaultOK       = "202"  // accepted (no fault)
	FaultReject   = "400"  // refused for good: notify.Permanent
	FaultThrottle = "429"  // retry after RetryAfter: *notify.RetryAfterError
	FaultDown     = "5xx"  // a plain error: retried with backoff
	FaultSlow     = "slow" // recorded, but the call times out: the outbox retries, a duplicate arrives
)

// RetryAfter is what a throttling receiver asks for.
const RetryAfter = 20 * time.Second

// Event is one call a receiver got, at virtual time.
type Event struct {
	At       time.Duration // virtual time since the start of the run
	Wall     time.Time     // the clock's time (it may have been stepped)
	Receiver string
	Notifier string // the config name it came through
	Source   string // the vantage that sent it
	Key      string
	Action   string
	Answer   string // one of the Fault* values
	Recorded bool   // the receiver took it (202, or slow)
	Opened   bool   // this event opened the key (closed -> open)
	Closed   bool   // this event closed the key
	Summary  string
	Created  time.Time // when the engine made the notification
	Details  map[string]any
}

func (e Event) String() string {
	mark := ""
	switch {
	case e.Opened:
		mark = " OPEN"
	case e.Closed:
		mark = " CLOSE"
	}
	return fmt.Sprintf("%9s %-8s via %-10s from %-4s %-7s %-40s %s%s", fmtDur(e.At), e.Receiver, e.Notifier, e.Source, e.Action, e.Key, e.Answer, mark)
}

// faultWindow is one receiver fault between From and To (virtual time), for calls
// from one vantage only when Source is set (that vantage's path to the receiver).
type faultWindow struct {
	Kind     string
	From, To time.Duration
	Source   string
}

// Receiver is an in-process paging service, chat or webhook endpoint. Like PagerDuty
// it keeps open incidents per dedup key: a trigger opens (or updates) one, a resolve
// closes it. It logs every call with virtual time. Safe for concurrent use.
type Receiver struct {
	name, kind string
	now        func() (time.Duration, time.Time)

	mu     sync.Mutex
	faults []faultWindow
	open   map[string]bool
	events []Event
}

// NewReceiver makes a receiver; now tells virtual and wall time.
func NewReceiver(name, kind string, now func() (time.Duration, time.Time)) *Receiver {
	return &Receiver{name: name, kind: kind, now: now, open: map[string]bool{}}
}

// Name is the receiver's (destination's) name.
func (r *Receiver) Name() string { return r.name }

// Kind is pagerduty, slack or webhook.
func (r *Receiver) Kind() string { return r.kind }

// AddFault makes the receiver answer kind between from and to (virtual time); to
// calls from source only, unless source is "".
func (r *Receiver) AddFault(kind string, from, to time.Duration, source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, faultWindow{Kind: kind, From: from, To: to, Source: source})
}

// ClearFaults ends every fault at virtual time at.
func (r *Receiver) ClearFaults(at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.faults {
		if r.faults[i].To > at {
			r.faults[i].To = max(at, r.faults[i].From)
		}
	}
}

// faultAt is the answer at virtual time at to a call from source: the latest fault
// added that covers it.
func (r *Receiver) faultAt(at time.Duration, source string) string {
	for i := len(r.faults) - 1; i >= 0; i-- {
		f := r.faults[i]
		if at >= f.From && at < f.To && (f.Source == "" || f.Source == source) {
			return f.Kind
		}
	}
	return FaultOK
}

// Faults lists the fault windows.
func (r *Receiver) Faults() []faultWindow {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.faults)
}

// Notify takes one notification through the notifier named via.
func (r *Receiver) Notify(ctx context.Context, via string, n notify.Notification) error {
	at, wall := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	answer := r.faultAt(at, n.Source)
	ev := Event{At: at, Wall: wall, Receiver: r.name, Notifier: via, Source: n.Source, Key: n.DedupKey, Action: n.Action,
		Answer: answer, Summary: n.Summary, Created: n.Created, Details: n.Details}
	if answer == FaultOK || answer == FaultSlow {
		ev.Recorded = true
		switch {
		case n.Action == notify.ActionTrigger && !r.open[n.DedupKey]:
			r.open[n.DedupKey], ev.Opened = true, true
		case n.Action == notify.ActionResolve && r.open[n.DedupKey]:
			delete(r.open, n.DedupKey)
			ev.Closed = true
		}
	}
	r.events = append(r.events, ev)
	// Refusals are StatusErrors, as the real notifiers return them: the outbox knows
	// from them that nothing was kept (a timeout may have been).
	switch answer {
	case FaultReject:
		return notify.Permanent(fmt.Errorf("%s: %w", r.name, &notify.StatusError{Status: 400}))
	case FaultThrottle:
		return &notify.RetryAfterError{After: RetryAfter, Err: fmt.Errorf("%s: %w", r.name, &notify.StatusError{Status: 429})}
	case FaultDown:
		return fmt.Errorf("%s: %w", r.name, &notify.StatusError{Status: 503})
	case FaultSlow:
		return fmt.Errorf("%s: no answer within the attempt timeout: %w", r.name, context.DeadlineExceeded)
	}
	return ctx.Err()
}

// Events copies the log.
func (r *Receiver) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// OpenKeys lists the keys open at the receiver, sorted.
func (r *Receiver) OpenKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.open))
	for k := range r.open {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// refused reports whether the receiver refused an action of key for good (400).
func (r *Receiver) refused(key, action string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.events, func(ev Event) bool {
		return ev.Key == key && ev.Action == action && ev.Answer == FaultReject
	})
}

// IsOpen reports whether key is open at the receiver.
func (r *Receiver) IsOpen(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open[key]
}

// binding is a receiver under one config notifier name: what the outbox calls.
type binding struct {
	name string
	r    *Receiver
}

var _ notify.Notifier = binding{}

// Identity is the receiver's, as a real notifier's is its destination: two names for
// one receiver are a rename, and queued pages follow the new name.
func (b binding) Identity() string { return notify.NewIdentity(b.r.kind, b.r.name) }

func (b binding) Name() string { return b.name }
func (b binding) Kind() string { return b.r.kind }
func (b binding) Notify(ctx context.Context, n notify.Notification) error {
	return b.r.Notify(ctx, b.name, n)
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	h := d / time.Hour
	m := (d % time.Hour) / time.Minute
	s := (d % time.Minute) / time.Second
	return fmt.Sprintf("%d:%02d:%02d", h, m, s)
}
