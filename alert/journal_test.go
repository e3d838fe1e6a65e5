package alert

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/internal/testkit"
	"github.com/picket-dev/picket/probe"
)

// gatedStore is the real store with a gate in front of its commits: a commit waits
// while the gate is shut, so a test can hold one under way and see what the others do
// meanwhile. It counts the commits and the writes in each.
type gatedStore struct {
	*store.Store
	mu      sync.Mutex
	shut    chan struct{}            // nil: open
	holds   func([]store.Write) bool // which commits the gate holds; nil: all
	batches []int
	entered atomic.Int32
}

func (g *gatedStore) CommitWrites(writes []store.Write) error {
	g.mu.Lock()
	gate := g.shut
	if g.holds != nil && !g.holds(writes) {
		gate = nil
	}
	g.mu.Unlock()
	if gate != nil {
		g.entered.Add(1)
		<-gate
	}
	g.mu.Lock()
	g.batches = append(g.batches, len(writes))
	g.mu.Unlock()
	return g.Store.CommitWrites(writes)
}

// holdArchives shuts the gate for the commits that archive an incident (that write
// to the closed bucket).
func (g *gatedStore) holdArchives() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = make(chan struct{})
	g.holds = func(ws []store.Write) bool {
		return slices.ContainsFunc(ws, func(w store.Write) bool { return w.Bucket == BucketClosed })
	}
}

// open lets every commit through, the held ones too.
func (g *gatedStore) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.shut)
	g.shut = nil
}

func manyTargetsConfig(t *testing.T, regions int) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("vantage: v\ndefaults: {interval: 10s, timeout: 5s, failure_threshold: 2, success_threshold: 1}\nalerting: {group_wait: 10s}\nregions:\n")
	for i := range regions {
		fmt.Fprintf(&b, "  r%03d: {vars: {api: \"http://127.0.0.1:1\"}}\n", i)
	}
	b.WriteString(`products:
  - {name: logs, priority: 1, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
notifiers: {pd: {webhook: {url: "http://127.0.0.1:1/hook"}}}
routes: [{notify: [pd]}]
`)
	cfg, err := config.Parse("many.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEngineWritesAreGroupCommitted: while one commit is under way (held at the gate),
// 300 failing targets' results pass the engine one after the other without waiting
// for it, and their writes go to disk together in the next commit, not in 300 fsyncs
// under the engine's lock (which made verdicts tens of seconds late at 1,000 to 2,000
// failing targets). No Observe returns before its write is on disk.
func TestEngineWritesAreGroupCommitted(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := manyTargetsConfig(t, 301)
	g := &gatedStore{Store: st}
	e, err := NewEngine(EngineOptions{Config: cfg, Store: g, Outbox: &recordingOutbox{}})
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.shut, g.batches = make(chan struct{}), nil
	g.mu.Unlock()
	var returned atomic.Int32
	var wg sync.WaitGroup
	observe := func(id string) {
		defer wg.Done()
		e.Observe(resultOf(id, "down")) // the first failure of two: pending, saved
		returned.Add(1)
	}
	wg.Add(1)
	go observe(cfg.Targets[0].ID)
	testkit.WaitFor(t, 5*time.Second, "the first commit at the gate", func() bool { return g.entered.Load() == 1 })
	for _, tg := range cfg.Targets[1:] {
		wg.Add(1)
		go observe(tg.ID)
	}
	// Every result passes the engine while the first commit is held: its lock is free.
	testkit.WaitFor(t, 10*time.Second, "300 results through the engine", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		n := 0
		for _, s := range e.states {
			if s.Failures == 1 {
				n++
			}
		}
		return n == 301
	})
	if n := returned.Load(); n != 0 {
		t.Fatalf("%d Observe calls returned before their writes were committed", n)
	}
	g.open()
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batches) != 2 || g.batches[0] != 1 || g.batches[1] != 300 {
		t.Errorf("commits of %v writes, want 2: the first target's state, then the other 300 together", g.batches)
	}
	var saved TargetState
	if ok, err := st.Get(BucketStates, cfg.Targets[300].ID, &saved); !ok || err != nil || saved.Failures != 1 {
		t.Errorf("the last target's state on disk: %+v (%v, %v), want its failure", saved, ok, err)
	}
}

// checkingOutbox, at each notification, reads the state of the targets the page is
// about from the store: what a page stands on must be on disk before it is queued.
type checkingOutbox struct {
	st      *store.Store
	targets []string
	mu      sync.Mutex
	queued  int
	behind  []string
}

func (c *checkingOutbox) Enqueue(notify.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queued++
	for _, id := range c.targets {
		var s TargetState
		if ok, err := c.st.Get(BucketStates, id, &s); !ok || err != nil || s.State != StateFiring {
			c.behind = append(c.behind, fmt.Sprintf("%s: %s on disk (%v, %v)", id, s.State, ok, err))
		}
	}
	return nil
}

// TestPagesAreQueuedAfterWhatTheyStandOn: the writes of a page's targets are committed
// before the page is queued, so a crash can never leave a page in the outbox whose
// firing states were lost (the restart would not know to resolve it).
func TestPagesAreQueuedAfterWhatTheyStandOn(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ob := &checkingOutbox{st: st, targets: []string{"logs/a@eu1", "metrics/q@eu1"}}
	e, err := NewEngine(EngineOptions{Config: engineConfig(t, "0s"), Store: st, Outbox: ob})
	if err != nil {
		t.Fatal(err)
	}
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down")})
	e.Tick()
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.queued == 0 {
		t.Fatal("nothing was paged")
	}
	if len(ob.behind) > 0 {
		t.Errorf("pages queued before the states they stand on were on disk: %v", ob.behind)
	}
}

// BenchmarkFailingAtOnce: 2,000 targets of one product fail at once, two rounds (the
// threshold), each result from its own goroutine as the scheduler's runs deliver them,
// on a real store on disk. ms/burst is how long the engine took to take them all: the
// verdicts' delay behind the engine.
func BenchmarkFailingAtOnce(b *testing.B) {
	cfg := manyTargetsConfig(&testing.T{}, 2000)
	for b.Loop() {
		b.StopTimer()
		st, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		e, err := NewEngine(EngineOptions{Config: cfg, Store: st, Outbox: &recordingOutbox{}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		for range 2 {
			var wg sync.WaitGroup
			for _, tg := range cfg.Targets {
				wg.Add(1)
				go func() { defer wg.Done(); e.Observe(resultOf(tg.ID, "down")) }()
			}
			wg.Wait()
		}
		b.ReportMetric(float64(time.Since(began).Milliseconds()), "ms/burst")
		b.StopTimer()
		_ = st.Close()
		b.StartTimer()
	}
}

// TestClosedReadsWhatIsDecided: an incident closed a moment ago is in the journal until
// its commit lands; Closed (the timeline and export read it) waits for that commit
// rather than answer without it. (Found by the time-to-page bench: a timeline asked for
// right after the resolve reached the receiver was a 404.)
func TestClosedReadsWhatIsDecided(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &gatedStore{Store: st}
	e, err := NewEngine(EngineOptions{Config: engineConfig(t, "0s"), Store: g, Outbox: &recordingOutbox{}})
	if err != nil {
		t.Fatal(err)
	}
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down")})
	g.holdArchives()
	go e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "up"), resultOf("metrics/q@eu1", "up")}) // resolves; the archive's commit waits at the gate
	testkit.WaitFor(t, 5*time.Second, "the archiving commit at the gate", func() bool { return g.entered.Load() == 1 })
	got := make(chan []Incident, 1)
	go func() {
		closed, _ := e.Closed(0)
		got <- closed
	}()
	select {
	case c := <-got:
		t.Fatalf("Closed answered %d incidents while the closing commit was held", len(c))
	case <-time.After(100 * time.Millisecond):
	}
	g.open()
	closed := <-got
	if !slices.ContainsFunc(closed, func(inc Incident) bool { return inc.Key == "picket/region/eu1" }) {
		t.Errorf("closed incidents %v, want picket/region/eu1", closed)
	}
}

// TestScopeKnownReleasesWideIncidentsOnly: once the confirmation runs around them have
// reported, a region's held first page goes out at once; one target's incident still
// waits out its group wait (on a lossy path that wait lets two unlucky targets share a
// page).
func TestScopeKnownReleasesWideIncidentsOnly(t *testing.T) {
	e, c, ob := memEngine(t, engineConfig(t, "30s"))
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down"), resultOf("logs/a@us1", "down")})
	c.t = c.t.Add(time.Second)
	e.ScopeKnown([]string{"logs/a@eu1", "metrics/q@eu1", "logs/a@us1"})
	got := ob.lines()
	if len(got) != 1 || !strings.HasPrefix(got[0], "trigger picket/region/eu1 ") {
		t.Fatalf("after the scope was known: %v, want only the region's page", got)
	}
	c.t = c.t.Add(30 * time.Second)
	e.Tick()
	if got := ob.lines(); len(got) != 2 || !strings.HasPrefix(got[1], "trigger picket/target/logs/a@us1 ") {
		t.Errorf("after the group wait: %v, want the lone target's page too", got)
	}
}
