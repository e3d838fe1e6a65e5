package alert

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
)

// casesConfig is the engine config of the numbered-case tests: defaults thresholds (2
// and 2), interval 15 s, group wait 5 s, three regions and two products.
func casesConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	return casesConfigWith(t, "{interval: 15s, timeout: 5s}", extra)
}

func casesConfigWith(t *testing.T, defaults, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("cases.yaml", []byte(`
vantage: v
defaults: `+defaults+`
alerting: {group_wait: 5s}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}, us1: {vars: {api: "http://127.0.0.1:1"}}, sin: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: logs, priority: 1, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: metrics, priority: 2, journeys: [{name: q, steps: [{http: {url: "{{.region.api}}/"}}]}]}
notifiers: {pd: {webhook: {url: "http://127.0.0.1:1/hook"}}}
routes: [{notify: [pd]}]
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runPattern feeds one target a pattern of results (D down, U up) every interval,
// ticking the engine in between, and returns the triggers and resolves sent for key.
func runPattern(t *testing.T, e *Engine, c *testClock, ob *recordingOutbox, id, pattern string, repeat int, every time.Duration) (triggers, resolves int) {
	t.Helper()
	for i := 0; i < repeat; i++ {
		for _, ch := range pattern {
			status := "up"
			if ch == 'D' {
				status = "down"
			}
			r := resultOf(id, status)
			r.Started = c.t
			e.Observe(r)
			for step := time.Duration(0); step < every; step += time.Second {
				c.t = c.t.Add(time.Second)
				e.Tick()
			}
		}
	}
	for _, line := range ob.lines() {
		switch {
		case strings.HasPrefix(line, "trigger "):
			triggers++
		case strings.HasPrefix(line, "resolve "):
			resolves++
		}
	}
	return triggers, resolves
}

// Case 2: a target failing down-down-up-up paged 15 times in 5 minutes at defaults; one
// failing every other run was never paged.
func TestCase02FlappingTargetPagesOnceWhileItFlaps(t *testing.T) {
	e, c, ob := memEngine(t, casesConfig(t, ""))
	// 5 minutes at 15 s: 20 runs of DDUU.
	triggers, resolves := runPattern(t, e, c, ob, "logs/a@eu1", "DDUU", 5, 15*time.Second)
	if triggers > 2 || resolves > 1 {
		t.Fatalf("DDUU for 5 minutes: %d triggers, %d resolves; want at most 2 triggers (the failure, then once as flapping) and 1 resolve: %v",
			triggers, resolves, ob.lines())
	}
	if st := e.states["logs/a@eu1"]; st.State != StateFiring || !st.Flapping {
		t.Fatalf("after 5 minutes of DDUU: state %s flapping %v, want firing and flapping", st.State, st.Flapping)
	}
	// Stable again: a whole window of passes resolves it, once.
	triggers, resolves = runPattern(t, e, c, ob, "logs/a@eu1", "U", 12, 15*time.Second)
	if triggers > 2 || resolves != 2 {
		t.Fatalf("after it is stable: %d triggers, %d resolves in all; want the flap resolved once: %v", triggers, resolves, ob.lines())
	}
}

func TestCase02TargetFailingEveryOtherRunIsPaged(t *testing.T) {
	e, c, ob := memEngine(t, casesConfig(t, ""))
	triggers, resolves := runPattern(t, e, c, ob, "logs/a@eu1", "DU", 10, 15*time.Second)
	if triggers != 1 || resolves != 0 {
		t.Fatalf("DU for 5 minutes: %d triggers, %d resolves; want paged once and kept open: %v", triggers, resolves, ob.lines())
	}
}

func TestFailureWindowOff(t *testing.T) {
	c := &testClock{t: time.Unix(1000, 0)}
	ob := &recordingOutbox{}
	cfg := casesConfigWith(t, "{interval: 15s, timeout: 5s, failure_window: {failures: 0}}", "")
	e, err := NewEngine(EngineOptions{Config: cfg, Outbox: ob, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if triggers, _ := runPattern(t, e, c, ob, "logs/a@eu1", "DU", 10, 15*time.Second); triggers != 0 {
		t.Fatalf("failure window off: DU paged %d times, want 0 (consecutive threshold only)", triggers)
	}
}

// failRegions makes every target of the given regions fail twice (past the threshold)
// and lets the group wait pass.
func failRegions(e *Engine, c *testClock, regions ...string) {
	for range 2 {
		var rs []probe.Result
		for _, t := range e.cfg.Targets {
			if slices.Contains(regions, t.Region) {
				r := resultOf(t.ID, "down")
				r.Started = c.t
				rs = append(rs, r)
			}
		}
		e.ObserveAll(rs)
		c.t = c.t.Add(15 * time.Second)
		e.Tick()
	}
}

// Case 1: a silence on one region (match {region: [sin]}) muted the GLOBAL page while
// another region was fully down, until the silence ended.
func TestCase01SilenceOnOneRegionDoesNotMuteGlobal(t *testing.T) {
	c := &testClock{t: time.Unix(1000, 0)}
	ob := &recordingOutbox{}
	cfg := casesConfig(t, `
blast_radius: {region_min_products: 2, product_min_regions: 2, global_min_regions: 2}
silences: [{comment: sin maintenance, start: "1970-01-01T00:00:00Z", end: "2100-01-01T00:00:00Z", match: {region: [sin]}}]
`)
	e, err := NewEngine(EngineOptions{Config: cfg, Outbox: ob, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	failRegions(e, c, "sin")
	if got := ob.lines(); len(got) != 0 {
		t.Fatalf("the silenced region alone was paged: %v", got)
	}
	failRegions(e, c, "sin", "eu1")
	got := ob.lines()
	if len(got) == 0 || !strings.HasPrefix(got[0], "trigger picket/global") {
		t.Fatalf("sin (silenced) and eu1 down: want the GLOBAL page, got %v", got)
	}
}

func TestSilenceCoveringEveryTargetMutesTheWiderIncident(t *testing.T) {
	c := &testClock{t: time.Unix(1000, 0)}
	ob := &recordingOutbox{}
	cfg := casesConfig(t, `
silences:
  - {comment: sin, start: "1970-01-01T00:00:00Z", end: "2100-01-01T00:00:00Z", match: {region: [sin]}}
  - {comment: eu1, start: "1970-01-01T00:00:00Z", end: "2100-01-01T00:00:00Z", match: {region: [eu1]}}
`)
	e, err := NewEngine(EngineOptions{Config: cfg, Outbox: ob, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	failRegions(e, c, "sin", "eu1")
	if got := ob.lines(); len(got) != 0 {
		t.Fatalf("every failing target is silenced, yet paged: %v", got)
	}
	inc := e.incidents.Get("picket/global")
	if inc == nil || !inc.Silenced {
		t.Fatalf("want the global incident open and marked silenced, got %+v", inc)
	}
}

// Case 4: a closed incident kept only the last target to recover ("Regions: us1,
// Products: logs" after a 10-target, 4-product outage).
func TestCase04ClosedIncidentKeepsPeakExtentAndReasons(t *testing.T) {
	c := &testClock{t: time.Unix(1000, 0)}
	ob := &recordingOutbox{}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse("peak.yaml", []byte(`
vantage: v
defaults: {interval: 15s, timeout: 5s, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 1s}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}, us1: {vars: {api: "http://127.0.0.1:1"}}, ap1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: logs, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: metrics, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: events, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: web, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
notifiers: {pd: {webhook: {url: "http://127.0.0.1:1/hook"}}}
routes: [{notify: [pd]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(EngineOptions{Config: cfg, Store: st, Outbox: ob, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	// 10 of 12 targets fail (web is fine in ap1 and us1), each with its own reason.
	var failing []string
	for _, t := range cfg.Targets {
		if t.Product == "web" && t.Region != "eu1" {
			continue
		}
		failing = append(failing, t.ID)
	}
	observe := func(ids []string, status string) {
		var rs []probe.Result
		for _, id := range ids {
			r := resultOf(id, status)
			r.Started = c.t
			if status == "down" {
				r.Error = "step submit: status 503 from " + id
			}
			rs = append(rs, r)
		}
		e.ObserveAll(rs)
		c.t = c.t.Add(2 * time.Second)
		e.Tick()
	}
	observe(failing, "down")
	if e.incidents.Get("picket/global") == nil {
		t.Fatal("no global incident for 10 failing targets")
	}
	// Recovery in stages; logs@us1 recovers last.
	observe(failing[:len(failing)-1], "up")
	for _, id := range failing {
		if id == "logs/a@us1" {
			observe([]string{id}, "up")
		}
	}
	observe(failing, "up")
	inc, ok, err := e.FindIncident("picket/global")
	if err != nil || !ok || inc.Open() {
		t.Fatalf("closed global incident: ok %v err %v open %v", ok, err, inc.Open())
	}
	if len(inc.Targets) != 10 || len(inc.Products) != 4 || len(inc.Regions) != 3 {
		t.Fatalf("closed incident: %d targets, products %v, regions %v; want its peak: 10 targets, 4 products, 3 regions",
			len(inc.Targets), inc.Products, inc.Regions)
	}
	md := inc.Markdown()
	for _, want := range []string{"- **Regions:** ap1, eu1, us1", "- **Products:** events, logs, metrics, web", "status 503 from metrics/a@ap1"} {
		if !strings.Contains(md, want) {
			t.Errorf("export lacks %q:\n%s", want, md)
		}
	}
}

// hookReceiver is a local webhook endpoint that records what it accepted and can be
// switched down (503).
type hookReceiver struct {
	mu   sync.Mutex
	down bool
	got  []string // "action key"
	srv  *httptest.Server
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Notification notify.Notification `json:"notification"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.got = append(h.got, p.Notification.Action+" "+p.Notification.DedupKey)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setDown(down bool) { h.mu.Lock(); h.down = down; h.mu.Unlock() }
func (h *hookReceiver) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// oneTargetHookConfig is one target (logs/a@eu1) at thresholds 1 and 1, paged to the
// hook receiver; defaults adds to the defaults: line, groupWait is alerting.group_wait.
func oneTargetHookConfig(t *testing.T, hook *hookReceiver, defaults, groupWait string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("one.yaml", []byte(`
vantage: v
defaults: {interval: 10s, timeout: 5s, failure_threshold: 1, success_threshold: 1`+defaults+`}
alerting: {group_wait: `+groupWait+`}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: logs, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
notifiers: {hook: {webhook: {url: "`+hook.srv.URL+`"}}}
routes: [{notify: [hook]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// process is one Picket process over a state dir: real store, outbox and engine.
type process struct {
	st *store.Store
	ob *notify.Outbox
	e  *Engine
}

func startProcess(t *testing.T, dir string, cfg *config.Config, clk *clock.Fake) *process {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := notify.NewOutbox(notify.OutboxOptions{Store: st, Notifiers: notifiers.Build(cfg, nil, nil), Clock: clk,
		Jitter: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(EngineOptions{Config: cfg, Store: st, Outbox: ob, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return &process{st: st, ob: ob, e: e}
}

// observe feeds one result at the clock's time, ticks and delivers what is due.
func (p *process) observe(clk *clock.Fake, id, status string) {
	r := resultOf(id, status)
	r.Started = clk.Now()
	p.e.Observe(r)
	p.e.Tick()
	p.ob.Step(context.Background())
}

// Case 5: break, heal, break again while the receiver is down, SIGKILL, heal, restart:
// the receiver ended with trigger, resolve, trigger (the previous incident's queued
// resolve was taken for the current one).
func TestCase05QueuedResolveOfAnEarlierIncidentDoesNotCloseTheCurrentOne(t *testing.T) {
	hook := newHookReceiver(t)
	cfg := oneTargetHookConfig(t, hook, ", failure_window: {failures: 0}", "0s")
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	p := startProcess(t, dir, cfg, clk)
	const id, key = "logs/a@eu1", "picket/target/logs/a@eu1"
	p.observe(clk, id, "down") // break: paged
	hook.setDown(true)
	clk.Advance(10 * time.Second)
	p.observe(clk, id, "up") // heal: the resolve waits for the receiver
	clk.Advance(10 * time.Second)
	p.observe(clk, id, "down") // break again: a new incident, its trigger queued
	_ = p.st.Close()           // SIGKILL: nothing flushed beyond what was committed
	clk.Advance(10 * time.Second)
	hook.setDown(false)
	p = startProcess(t, dir, cfg, clk) // restart, meanwhile healed
	defer p.st.Close()
	p.observe(clk, id, "up")
	for range 5 { // deliver everything, bounded
		clk.Advance(2 * time.Minute)
		p.ob.Step(context.Background())
	}
	// The outbox coalesces what queued while the receiver was down: the second
	// trigger makes the first resolve moot and the second resolve the second trigger.
	// Had the engine taken the queued resolve for the current incident, it would send
	// no second resolve and the receiver would end with the second trigger, open.
	got := hook.events()
	want := []string{"trigger " + key, "resolve " + key}
	if !slices.Equal(got, want) {
		t.Fatalf("receiver got %v, want %v (the second incident must be resolved too)", got, want)
	}
}

// Case 6 (engine part): editing a failing journey resolved it mid-outage and
// triggered it again.
func TestCase06EditingAFailingJourneyKeepsItsIncident(t *testing.T) {
	e, c, ob := memEngine(t, casesConfig(t, ""))
	runPattern(t, e, c, ob, "logs/a@eu1", "DD", 1, 15*time.Second)
	if n := len(ob.lines()); n != 1 {
		t.Fatalf("want one trigger before the edit, got %v", ob.lines())
	}
	edited := casesConfigWith(t, "{interval: 15s, timeout: 6s}", "") // every fingerprint changes
	if edited.Targets[0].Fingerprint == e.cfg.Targets[0].Fingerprint {
		t.Fatal("the edit did not change the fingerprint; the test proves nothing")
	}
	e.Reload(edited)
	triggers, resolves := runPattern(t, e, c, ob, "logs/a@eu1", "DD", 2, 15*time.Second)
	if triggers != 1 || resolves != 0 {
		t.Fatalf("after editing the failing journey: %d triggers, %d resolves; want the first trigger only: %v", triggers, resolves, ob.lines())
	}
}

// Case 10: a held page's time was restored as wall time: after a backward clock step
// across a restart the page left 10 minutes late.
func TestCase10HeldPageSurvivesClockStepsAcrossRestart(t *testing.T) {
	for _, step := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(step.String(), func(t *testing.T) {
			hook := newHookReceiver(t)
			cfg := oneTargetHookConfig(t, hook, "", "30s")
			clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
			dir := t.TempDir()
			p := startProcess(t, dir, cfg, clk)
			p.observe(clk, "logs/a@eu1", "down") // held for group_wait
			clk.Advance(5 * time.Second)
			_ = p.st.Close()
			clk.Advance(step) // the wall clock steps while Picket is down
			p = startProcess(t, dir, cfg, clk)
			defer p.st.Close()
			for i := 0; i < 31; i++ { // 31 s of ticks: group_wait is 30 s
				clk.Advance(time.Second)
				p.e.Tick()
				p.ob.Step(context.Background())
			}
			if got := hook.events(); len(got) != 1 || got[0] != "trigger picket/target/logs/a@eu1" {
				t.Fatalf("clock step %s across a restart: within group_wait after the restart the receiver got %v, want the trigger", step, got)
			}
		})
	}
}
