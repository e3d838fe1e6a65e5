package notify

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/clock"
)

// limitedReceiver is a paging service in fake time that takes at most limit events
// in any window of per, as PagerDuty's Events API does per routing key, and refuses
// the rest with 429 and a Retry-After. While down it answers 503. It keeps what a
// paging service keeps: which keys are open, and every event it took.
type limitedReceiver struct {
	name, id string
	limits   Limits
	clock    *clock.Fake
	limit    int
	per      time.Duration

	mu       sync.Mutex
	down     func(time.Time) bool // nil: never
	window   []time.Time          // times of the requests counted against the limit
	requests int
	refused  int // 429s
	failed   int // 503s
	took     []tookEvent
	open     map[string]bool
	maxRate  int // the most requests seen in any window of per
}

type tookEvent struct {
	at time.Time
	n  Notification
}

func newLimitedReceiver(c *clock.Fake, limit int, per time.Duration, rate Rate) *limitedReceiver {
	return &limitedReceiver{name: "pd", id: "pd-service", clock: c, limit: limit, per: per,
		limits: Limits{Rate: rate}, open: map[string]bool{}}
}

func (r *limitedReceiver) Name() string     { return r.name }
func (r *limitedReceiver) Kind() string     { return "pagerduty" }
func (r *limitedReceiver) Identity() string { return r.id }
func (r *limitedReceiver) Limits() Limits   { return r.limits }

func (r *limitedReceiver) Notify(_ context.Context, n Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	r.requests++
	if r.down != nil && r.down(now) {
		r.failed++
		return &StatusError{Status: 503}
	}
	r.window = slices.DeleteFunc(r.window, func(t time.Time) bool { return !t.After(now.Add(-r.per)) })
	r.window = append(r.window, now) // a refused request counts too, as at PagerDuty
	r.maxRate = max(r.maxRate, len(r.window))
	if len(r.window) > r.limit {
		r.refused++
		wait := max(r.window[len(r.window)-r.limit-1].Add(r.per).Sub(now), time.Second)
		return &RetryAfterError{After: wait.Round(time.Second), Err: &StatusError{Status: 429}}
	}
	r.took = append(r.took, tookEvent{at: now, n: n})
	r.open[n.DedupKey] = n.Action == ActionTrigger
	return nil
}

func (r *limitedReceiver) snapshot() (requests, refused int, took []tookEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.refused, slices.Clone(r.took)
}

// newPacedStepper is a stepper whose outbox delivers to the given notifiers, tweaked.
func newPacedStepper(t *testing.T, c *clock.Fake, tweak func(*OutboxOptions), notifiers ...Notifier) *stepper {
	t.Helper()
	h := newHarness(t, openStore(t, memDir(t)), func(o *OutboxOptions) {
		o.Clock = c
		o.Jitter = func() float64 { return 0.5 }
		o.MinBackoff, o.MaxBackoff = time.Second, time.Minute
		if tweak != nil {
			tweak(o)
		}
	}, notifiers...)
	return &stepper{harness: h, clock: c}
}

// memDir is a directory on tmpfs when there is one: the pacing tests store thousands
// of entries, and an fsync each on a shared disk takes most of their time.
func memDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "picket-outbox-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// incident is one incident of the pacing tests: a dedup key with its scope and priority.
type incident struct {
	key      string
	scope    string
	priority int
}

func (i incident) notification(action string, at time.Time) Notification {
	return Notification{ID: fmt.Sprintf("%s|%s|%d", i.key, action, at.UnixNano()), Action: action, DedupKey: i.key,
		Scope: i.scope, Priority: i.priority, Summary: i.key, Severity: SeverityCritical, Source: "test",
		Created: at, Opened: at}
}

// stormOf2000 is 2,000 separate incidents, narrow ones first as a platform falling
// apart makes them (targets fail first, their region and product incidents form
// later): 1,900 targets of priorities 1-3, 80 products, 19 regions, 1 global.
func stormOf2000() []incident {
	var out []incident
	for i := range 1900 {
		out = append(out, incident{key: fmt.Sprintf("picket/target/t%04d", i), scope: "target", priority: 1 + i%3})
	}
	for i := range 80 {
		out = append(out, incident{key: fmt.Sprintf("picket/product/p%02d", i), scope: "product", priority: 1 + i%3})
	}
	for i := range 19 {
		out = append(out, incident{key: fmt.Sprintf("picket/region/r%02d", i), scope: "region", priority: 1})
	}
	return append(out, incident{key: "picket/global", scope: "global", priority: 1})
}

var scopeOrder = map[string]int{"global": 0, "region": 1, "product": 2, "target": 3}

// TestPacingKeepsUnderTheDestinationsLimit: 2,000 incidents to one routing key that
// takes 120 events a minute are all delivered without one refusal, wider and more
// important first, in about the 17 minutes the limit needs.
func TestPacingKeepsUnderTheDestinationsLimit(t *testing.T) {
	c := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	pd := newLimitedReceiver(c, 120, time.Minute, Rate{Events: 120, Per: time.Minute})
	s := newPacedStepper(t, c, nil, pd)
	start := c.Now()
	storm := stormOf2000()
	for _, inc := range storm {
		s.enqueue(Delivery{Notification: inc.notification(ActionTrigger, start), Notify: []string{"pd"}})
	}
	s.drive(time.Hour)

	requests, refused, took := pd.snapshot()
	drained := took[len(took)-1].at.Sub(start)
	t.Logf("2,000 incidents at 120/min: %d requests, %d refused (429), %d delivered, most in any minute %d, drained in %s",
		requests, refused, len(took), pd.maxRate, drained)
	if refused != 0 || len(took) != len(storm) || s.outbox.Pending() != 0 {
		t.Fatalf("want 0 refused and all %d delivered, got %d refused, %d delivered, %d pending",
			len(storm), refused, len(took), s.outbox.Pending())
	}
	if limit := 17*time.Minute + 30*time.Second; drained > limit {
		t.Errorf("drained in %s, want at most %s (2,000 at 120/min)", drained, limit)
	}
	for i := 1; i < len(took); i++ {
		a, b := took[i-1].n, took[i].n
		if c := cmp.Or(cmp.Compare(scopeOrder[a.Scope], scopeOrder[b.Scope]), cmp.Compare(a.Priority, b.Priority)); c > 0 {
			t.Fatalf("delivery %d (%s, priority %d) came before delivery %d (%s, priority %d): want wider, then more important, first",
				i-1, a.DedupKey, a.Priority, i, b.DedupKey, b.Priority)
		}
	}
}

// TestRetryAfterPausesTheWholeDestination: a 429 with Retry-After to one key holds
// every key of that destination, also under another notifier name with the same
// identity, until the wait is over; another destination goes on.
func TestRetryAfterPausesTheWholeDestination(t *testing.T) {
	c := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	recv := startReceiver(t)
	recv.SetFault(pdtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second, Count: 1})
	pd := &identified{pdNotifier: newPDNotifier(t, "pd", recv.URL()), id: "pd-service"}
	alias := &identified{pdNotifier: newPDNotifier(t, "pd-alias", recv.URL()), id: "pd-service"}
	chat := &fakeNotifier{name: "chat", id: "chat-hook"}
	s := newPacedStepper(t, c, nil, pd, alias, chat)

	s.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}})
	s.outbox.Step(t.Context())
	if got := recv.Requests(); got != 1 {
		t.Fatalf("receiver got %d requests, want 1 (refused with 429)", got)
	}
	s.enqueue(Delivery{Notification: notification(ActionTrigger, "B"), Notify: []string{"pd"}})
	s.enqueue(Delivery{Notification: notification(ActionTrigger, "C"), Notify: []string{"pd-alias", "chat"}})
	c.Advance(10 * time.Second)
	s.outbox.Step(t.Context())
	if got := recv.Requests(); got != 1 {
		t.Errorf("10s into a Retry-After of 30s the receiver got %d requests, want still 1: the whole destination waits", got)
	}
	if got := chat.acceptedList(); got != "trigger:C" {
		t.Errorf("chat accepted %q, want trigger:C: another destination is not held", got)
	}
	s.drive(time.Minute)
	if got := recv.Requests(); got != 4 || s.outbox.Pending() != 0 {
		t.Errorf("after the wait: %d requests and %d pending, want 4 (A twice, B, C) and none", got, s.outbox.Pending())
	}
}

// identified gives the outbox tests' PagerDuty notifier an identity.
type identified struct {
	*pdNotifier
	id string
}

func (i *identified) Identity() string { return i.id }

// flapper enqueues what an engine enqueues for targets that flap: each incident opens
// and closes every period (its offset spread over the period), until stop.
type flapper struct {
	s        *stepper
	targets  []incident
	period   time.Duration
	stop     time.Time
	open     map[string]bool        // the engine's view
	resolves map[string][]time.Time // when each key's resolves were enqueued
	notify   []string
	maxSize  int
}

func newFlapper(s *stepper, n int, period time.Duration, stop time.Time, notify ...string) *flapper {
	f := &flapper{s: s, period: period, stop: stop, open: map[string]bool{}, resolves: map[string][]time.Time{},
		notify: notify}
	for i := range n {
		f.targets = append(f.targets, incident{key: fmt.Sprintf("picket/target/flap%02d", i), scope: "target", priority: 2})
	}
	return f
}

// run flaps, stepping the outbox every second of fake time, until stop; then it lets
// the outbox drain for drain.
func (f *flapper) run(drain time.Duration) {
	half := f.period / 2
	start := f.s.clock.Now()
	for now := start; now.Before(f.stop); now = now.Add(time.Second) {
		f.s.clock.Set(now)
		for i, inc := range f.targets {
			offset := (half * time.Duration(i) / time.Duration(len(f.targets))).Truncate(time.Second)
			if now.Sub(start.Add(offset))%half == 0 && !now.Before(start.Add(offset)) {
				f.toggle(inc, now)
			}
		}
		f.s.outbox.Step(f.s.t.Context())
		f.maxSize = max(f.maxSize, f.s.outbox.Pending())
	}
	f.s.drive(drain)
}

func (f *flapper) toggle(inc incident, now time.Time) {
	action := ActionTrigger
	if f.open[inc.key] {
		action = ActionResolve
		f.resolves[inc.key] = append(f.resolves[inc.key], now)
	}
	f.open[inc.key] = !f.open[inc.key]
	f.s.enqueue(Delivery{Notification: inc.notification(action, now), Notify: f.notify})
	f.maxSize = max(f.maxSize, f.s.outbox.Pending())
}

// over reports whether the incident a trigger made at created was resolved by at.
func (f *flapper) over(key string, created, at time.Time) bool {
	return slices.ContainsFunc(f.resolves[key], func(r time.Time) bool { return r.After(created) && !r.After(at) })
}

// TestOutageCoalescesWhatIsOver: 50 targets flap while the paging service is down for
// 5 minutes. The outbox stays small (a trigger whose resolve is queued behind it is
// dropped with it, updates keep only the latest), no trigger of an incident that is
// already over is delivered, and afterwards the receiver has exactly the engine's
// open incidents.
func TestOutageCoalescesWhatIsOver(t *testing.T) {
	c := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	pd := newLimitedReceiver(c, 120, time.Minute, Rate{Events: 120, Per: time.Minute})
	outageFrom, outageTo := c.Now().Add(2*time.Minute), c.Now().Add(7*time.Minute)
	pd.down = func(at time.Time) bool { return !at.Before(outageFrom) && at.Before(outageTo) }
	var drops dropLog
	s := newPacedStepper(t, c, func(o *OutboxOptions) { o.OnDrop = drops.add }, pd)
	f := newFlapper(s, 50, 40*time.Second, outageTo.Add(-7*time.Second), "pd")
	f.run(30 * time.Minute)

	requests, refused, took := pd.snapshot()
	var replayed, after int
	var drained time.Time
	for _, ev := range took {
		if ev.n.Action == ActionTrigger && f.over(ev.n.DedupKey, ev.n.Created, ev.at) {
			replayed++ // its incident was over when the trigger was delivered
		}
		if !ev.at.Before(outageTo) {
			after++
			drained = ev.at
		}
	}
	t.Logf("50 flapping targets, 5-minute outage: most entries queued %d, %d requests (%d refused with 429), %d events delivered after the outage (drained %s after it), %d triggers delivered for incidents already over, %d dropped unsent",
		f.maxSize, requests, refused, after, drained.Sub(outageTo).Round(time.Second), replayed, drops.count(DropCoalesced))
	if replayed != 0 {
		t.Errorf("%d triggers were delivered for incidents already over, want 0", replayed)
	}
	if f.maxSize > 100 {
		t.Errorf("the outbox held up to %d entries, want at most 100 (two per flapping key)", f.maxSize)
	}
	if after > 50 {
		t.Errorf("%d events were delivered after the outage, want at most one per key (50)", after)
	}
	for _, inc := range f.targets {
		if got, want := pd.open[inc.key], f.open[inc.key]; got != want {
			t.Errorf("%s: open at the receiver %v, the engine says %v", inc.key, got, want)
		}
	}
}

// dropLog collects OnDrop calls.
type dropLog struct {
	mu   sync.Mutex
	list []Dropped
}

func (d *dropLog) add(x Dropped) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, x)
}

func (d *dropLog) count(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, x := range d.list {
		if x.Reason == reason {
			n++
		}
	}
	return n
}

func (d *dropLog) all() []Dropped {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.list)
}

// TestFullOutboxShedsTheLeastImportant: with the paging service down, 300 incidents
// into an outbox of 100 keep it at 100: it warns at 80 %, then drops narrow and
// low-priority pages, updates before first triggers, and never a first trigger of a
// global or regional page; those are delivered once the service is back.
func TestFullOutboxShedsTheLeastImportant(t *testing.T) {
	c := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	pd := newLimitedReceiver(c, 1000, time.Minute, Rate{})
	back := c.Now().Add(10 * time.Minute)
	pd.down = func(at time.Time) bool { return at.Before(back) }
	var drops dropLog
	s := newPacedStepper(t, c, func(o *OutboxOptions) { o.MaxEntries, o.OnDrop = 100, drops.add }, pd)
	var wide []incident
	byKey := map[string]incident{}
	deepest := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		inc := incident{key: fmt.Sprintf("picket/target/t%03d", i), scope: "target", priority: 1 + rng.IntN(3)}
		switch {
		case i%50 == 0:
			inc = incident{key: fmt.Sprintf("picket/region/r%d", i/50), scope: "region", priority: 1}
			wide = append(wide, inc)
		case i%10 == 0:
			inc = incident{key: fmt.Sprintf("picket/product/p%d", i/10), scope: "product", priority: 2}
		}
		byKey[inc.key] = inc
		s.enqueue(Delivery{Notification: inc.notification(ActionTrigger, c.Now()), Notify: []string{"pd"}})
		s.outbox.Step(t.Context())
		deepest = max(deepest, s.outbox.Pending())
		if n := s.outbox.Pending(); n > 100 {
			t.Fatalf("after %d incidents the outbox holds %d entries, want at most 100", i+1, n)
		}
		c.Advance(time.Second)
	}
	if logs := s.logs.String(); !strings.Contains(logs, "outbox: 80 % full") || !strings.Contains(logs, "outbox: full") {
		t.Errorf("want a notice at 80 %% and a loud line when full; logs:\n%s", s.logs.String())
	}
	if got := drops.count(DropShed); got != 200 {
		t.Errorf("shed %d entries, want 200", got)
	}
	checkShedOrder(t, drops.all(), s.outbox.Entries(), byKey)
	s.drive(time.Hour)
	_, _, took := pd.snapshot()
	t.Logf("300 incidents into an outbox of 100 while the receiver is down: at most %d entries, %d shed, %d delivered once it is back",
		deepest, drops.count(DropShed), len(took))
	for _, inc := range wide {
		if !slices.ContainsFunc(took, func(ev tookEvent) bool { return ev.n.DedupKey == inc.key }) {
			t.Errorf("%s was never delivered", inc.key)
		}
	}
}

// checkShedOrder: only targets were shed (of 300 incidents into 100 there are enough),
// and none more important than a target kept.
func checkShedOrder(t *testing.T, drops []Dropped, kept []EntryInfo, byKey map[string]incident) {
	t.Helper()
	leastKept := 0 // the least important priority of a target kept
	for _, e := range kept {
		if inc := byKey[e.DedupKey]; inc.scope == "target" {
			leastKept = max(leastKept, inc.priority)
		}
	}
	for _, d := range drops {
		if inc := byKey[d.DedupKey]; d.Reason != DropShed || inc.scope != "target" || inc.priority < leastKept {
			t.Errorf("dropped %s (%s, %s, priority %d) while a target of priority %d is kept: want narrow and low priority shed first, never a regional page",
				d.DedupKey, d.Reason, inc.scope, inc.priority, leastKept)
		}
	}
}
