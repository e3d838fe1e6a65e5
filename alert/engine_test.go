package alert

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// recordingOutbox is the engine's outbox in these tests: it records deliveries (the
// real outbox is exercised by the integration tests).
type recordingOutbox struct {
	mu   sync.Mutex
	sent []notify.Notification
}

func (r *recordingOutbox) Enqueue(d notify.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, d.Notification)
	return nil
}

func (r *recordingOutbox) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.sent {
		out = append(out, n.Action+" "+n.DedupKey+" "+n.Summary)
	}
	return out
}

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

// memEngine is an engine of cfg with nothing persisted, on a test clock at Unix 1000,
// recording what it queues.
func memEngine(t *testing.T, cfg *config.Config) (*Engine, *testClock, *recordingOutbox) {
	t.Helper()
	c := &testClock{t: time.Unix(1000, 0)}
	ob := &recordingOutbox{}
	e, err := NewEngine(EngineOptions{Config: cfg, Outbox: ob, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return e, c, ob
}

func engineConfig(t *testing.T, groupWait string) *config.Config {
	t.Helper()
	return engineConfigOf(t, "{group_wait: "+groupWait+"}", `
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}, us1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: logs, priority: 1, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: metrics, priority: 1, journeys: [{name: q, steps: [{http: {url: "{{.region.api}}/"}}]}]}
`)
}

// engineConfigOf is a config with thresholds of 1 and one webhook for every incident,
// with alerting as given and the regions and products of platform.
func engineConfigOf(t *testing.T, alerting, platform string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("e.yaml", []byte(`
vantage: v
defaults: {interval: 10s, timeout: 5s, failure_threshold: 1, success_threshold: 1}
alerting: `+alerting+platform+`
notifiers: {pd: {webhook: {url: "http://127.0.0.1:1/hook"}}}
routes: [{notify: [pd]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestGroupWaitPagesTheWiderScopeOnly(t *testing.T) {
	e, c, ob := memEngine(t, engineConfig(t, "10s"))
	// One journey of eu1 fails first, the other 3 s later: within the group wait.
	e.Observe(resultOf("logs/a@eu1", "down"))
	c.t = c.t.Add(3 * time.Second)
	e.Tick()
	e.Observe(resultOf("metrics/q@eu1", "down"))
	if len(ob.lines()) != 0 {
		t.Fatalf("paged during the group wait: %v", ob.lines())
	}
	c.t = c.t.Add(10 * time.Second)
	e.Tick()
	got := ob.lines()
	if len(got) != 1 || !strings.HasPrefix(got[0], "trigger picket/region/eu1 [REGION eu1]") {
		t.Fatalf("want one region page, got %v", got)
	}
}

func TestPagedNarrowIncidentIsToldWhenTheWiderIsPaged(t *testing.T) {
	e, c, ob := memEngine(t, engineConfig(t, "5s"))
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down")})
	c.t = c.t.Add(6 * time.Second)
	e.Tick() // region eu1 paged
	e.ObserveAll([]probe.Result{resultOf("logs/a@us1", "down"), resultOf("metrics/q@us1", "down")})
	if n := len(ob.lines()); n != 1 {
		t.Fatalf("the absorbed region was told before the global page existed: %v", ob.lines())
	}
	c.t = c.t.Add(6 * time.Second)
	e.Tick() // global paged, then eu1 told
	got := ob.lines()
	if len(got) != 3 || !strings.HasPrefix(got[1], "trigger picket/global [GLOBAL]") ||
		!strings.HasPrefix(got[2], "trigger picket/region/eu1") || !strings.HasSuffix(got[2], "now part of [GLOBAL]") {
		t.Fatalf("got %q", got)
	}
	// Everything recovers: both paged incidents are resolved once.
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "up"), resultOf("metrics/q@eu1", "up"), resultOf("logs/a@us1", "up"), resultOf("metrics/q@us1", "up")})
	resolves := 0
	for _, l := range ob.lines() {
		if strings.HasPrefix(l, "resolve ") {
			resolves++
		}
	}
	if resolves != 2 {
		t.Errorf("resolves %d: %v", resolves, ob.lines())
	}
}

func TestBannerNamesOnlyTheWidestScope(t *testing.T) {
	groups := []Group{
		{Scope: ScopeRegion, Subject: "eu1", Regions: []string{"eu1"}, Products: []string{"logs", "metrics"}},
		{Scope: ScopeTarget, Subject: "web/home@us1", Regions: []string{"us1"}, Products: []string{"web"}},
	}
	if got := banner(false, Summarize(groups), 4, nil); got != "Regional outage: eu1" {
		t.Errorf("got %q", got)
	}
	global := []Group{{Scope: ScopeGlobal, Regions: []string{"eu1", "us1", "us3"}, Products: []string{"logs"}}}
	if got := banner(true, Summarize(global), 4, nil); !strings.HasSuffix(got, "Global outage: 3 of 4 regions") || !strings.Contains(got, "impaired") {
		t.Errorf("got %q", got)
	}
	if got := banner(false, Summarize(nil), 4, nil); got != "All systems operational" {
		t.Errorf("got %q", got)
	}
}

// failingOutbox cannot persist anything, until it can.
type failingOutbox struct {
	recordingOutbox
	broken bool
}

func (f *failingOutbox) Enqueue(d notify.Delivery) error {
	if f.broken {
		return errors.New("disk full")
	}
	return f.recordingOutbox.Enqueue(d)
}

func TestTriggerThatCannotBeQueuedIsRetried(t *testing.T) {
	c := &testClock{t: time.Unix(1000, 0)}
	ob := &failingOutbox{broken: true}
	e, err := NewEngine(EngineOptions{Config: engineConfig(t, "0s"), Outbox: ob, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down")})
	if st := e.Snapshot(); st.Incidents[0].Triggered {
		t.Fatal("marked triggered although nothing was queued")
	}
	ob.broken = false
	e.Tick()
	if got := ob.lines(); len(got) != 1 || !strings.HasPrefix(got[0], "trigger picket/region/eu1") {
		t.Fatalf("after the store recovered: %v", got)
	}
}

// TestUnroutedDegradedIncidentWarnsOnceWithReason: under alerting.degraded: notify a
// degraded incident whose only route pages reaches no notifier; the log says so once,
// with why, not at every trigger and resolve.
func TestUnroutedDegradedIncidentWarnsOnceWithReason(t *testing.T) {
	cfg, err := config.Parse("u.yaml", []byte(`
vantage: v
defaults: {interval: 10s, timeout: 5s, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 0s}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: logs, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
notifiers: {pd: {pagerduty: {routing_key: "unroutedtestroutingkey0000000001"}}}
routes: [{notify: [pd]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder // the engine logs under its lock, from this goroutine
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ob := &recordingOutbox{}
	e, err := NewEngine(EngineOptions{Config: cfg, Outbox: ob, Logger: log, Now: func() time.Time { return time.Unix(1000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	e.Observe(resultOf("logs/a@eu1", "degraded"))
	e.Observe(resultOf("logs/a@eu1", "up"))
	e.Observe(resultOf("logs/a@eu1", "degraded"))
	if got := ob.lines(); len(got) != 0 {
		t.Fatalf("sent %v", got)
	}
	var warns []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "picket/degraded/logs/a@eu1") || !strings.Contains(warns[0], "alerting.degraded") {
		t.Errorf("want one warning naming the incident and alerting.degraded, got %d:\n%s", len(warns), strings.Join(warns, "\n"))
	}
}

// TestNoteDropGoesOnTheTimeline: what the outbox dropped unsent is on the incident's
// timeline, with why (the outbox's OnDrop hook).
func TestNoteDropGoesOnTheTimeline(t *testing.T) {
	e, c, ob := memEngine(t, casesConfig(t, ""))
	runPattern(t, e, c, ob, "logs/a@eu1", "DD", 1, 15*time.Second)
	if len(ob.sent) != 1 {
		t.Fatalf("want the incident paged, got %v", ob.lines())
	}
	key := ob.sent[0].DedupKey
	e.NoteDrop(notify.Dropped{Notifier: "pd", DedupKey: key, Action: notify.ActionTrigger, Reason: notify.DropCoalesced})
	e.NoteDrop(notify.Dropped{Notifier: "pd", DedupKey: key, Action: notify.ActionTrigger, Reason: notify.DropShed, Fallback: true})
	inc, _ := e.Incident(key)
	var got []string
	for _, ev := range inc.Timeline {
		if ev.Kind == notify.DropCoalesced || ev.Kind == notify.DropShed {
			got = append(got, ev.Kind+": "+ev.Text)
		}
	}
	want := []string{"coalesced: trigger via pd dropped unsent: a later notification of the key made it moot",
		"shed: trigger via pd (fallback) dropped unsent: the outbox was full and it was among the least important"}
	if !slices.Equal(got, want) {
		t.Errorf("timeline %q, want %q", got, want)
	}
}

// TestNotificationsOfOneInstantHaveTheirOwnIDs (fleet seed 406): a trigger and its
// widening queued at the same instant shared an id (key, action, time); the outbox,
// coalescing the first into the second, marked that id as partly unsent, so the
// pager's acceptance never completed the page and other vantages took it over.
func TestNotificationsOfOneInstantHaveTheirOwnIDs(t *testing.T) {
	e, c, ob := memEngine(t, engineConfig(t, "0s"))
	e.Observe(resultOf("logs/a@eu1", "down"))
	inc := e.incidents.Get("picket/target/logs/a@eu1")
	if inc == nil || !inc.Triggered {
		t.Fatalf("want the target paged at once (group_wait 0), got %+v", inc)
	}
	e.mu.Lock()
	e.sendWidened(c.t, inc) // at the very instant of the first page
	e.mu.Unlock()
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if len(ob.sent) != 2 || ob.sent[0].ID == ob.sent[1].ID {
		ids := make([]string, len(ob.sent))
		for i, n := range ob.sent {
			ids[i] = n.ID
		}
		t.Errorf("notification ids %q: want two, each its own", ids)
	}
}
