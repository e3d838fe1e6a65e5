package network

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/daemon"
	"github.com/picket-dev/picket/probe/probetest"
)

// Timings of the flaky-network runs. The interval is short so that ~500 runs go through
// the proxy in seconds; the timeout may not exceed the interval, so a connection the
// proxy delays by flakyDelay fails as a timeout, just as a dropped one fails at once:
// every faulty connection fails its try.
const (
	flakyInterval  = 200 * time.Millisecond
	flakyTimeout   = 200 * time.Millisecond
	flakyRate      = 0.10
	flakyDelay     = 300 * time.Millisecond
	flakySeed      = 20260606
	flakyRuns      = 500              // runs of the proxied region per scenario
	flakyRunsLimit = 45 * time.Second // to make them, on a busy 2-core machine
	flakyGroupWait = flakyInterval    // the default: the shortest interval
	failThreshold  = 2                // the default, which the config leaves unset
	pageSlack      = time.Second
	flakyRegion    = "eu1" // behind the proxy
	steadyRegion   = "us1" // direct, as a control
)

// flakyJourneys are one request each, so a run's try is one connection through the
// proxy and P(try fails) is the proxy's fault rate.
const flakyJourneys = `products:
  - name: web
    journeys:
      - {name: home, steps: [{http: {url: "{{.region.api}}/"}}]}
      - {name: login, steps: [{http: {url: "{{.region.api}}/login"}}]}
      - {name: home-again, steps: [{http: {url: "{{.region.api}}/?again=1"}}]}
  - name: metrics
    journeys:
      - {name: query, steps: [{http: {url: "{{.region.api}}/v1/query?q=up"}, expect: {json: {status: ok}}}]}
      - {name: query-again, steps: [{http: {url: "{{.region.api}}/v1/query?q=up&again=1"}, expect: {json: {status: ok}}}]}
  - name: health
    journeys:
      - {name: healthz, steps: [{http: {url: "{{.region.api}}/healthz"}, expect: {body_contains: ok}}]}
`

type flakyRig struct {
	plat  *probetest.Platform
	proxy *FlakyProxy
	dir   string
}

func startFlakyRig(t *testing.T) *flakyRig {
	t.Helper()
	plat, err := probetest.Start(probetest.Options{Regions: []string{flakyRegion, steadyRegion}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plat.Close() })
	u, err := url.Parse(plat.URL(flakyRegion))
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := StartFlakyProxy(ProxyOptions{Upstream: u.Host, FaultRate: flakyRate, Seed: flakySeed, Delay: flakyDelay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	return &flakyRig{plat: plat, proxy: proxy, dir: t.TempDir()}
}

// runningDaemon is one daemon with its own receiver and state.
type runningDaemon struct {
	base string
	pd   *pdtest.Receiver
	stop func() error
}

// startDaemon writes a config with the given retries (-1: leave the default) and runs
// the daemon in this process.
func (r *flakyRig) startDaemon(t *testing.T, name string, retries int) *runningDaemon {
	t.Helper()
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	retriesKey := ""
	if retries >= 0 {
		retriesKey = fmt.Sprintf(", retries: %d", retries)
	}
	// failure_threshold, success_threshold and group_wait are left at their defaults.
	cfg := fmt.Sprintf(`vantage: resilience-flaky
listen: 127.0.0.1:0
defaults: {interval: %v, timeout: %v%s}
regions:
  %s: {vars: {api: "http://%s"}}
  %s: {vars: {api: %q}}
%snotifiers:
  pd: {pagerduty: {routing_key: "flakytestroutingkey0000000000001", events_url: %q}}
routes:
  - notify: [pd]
`, flakyInterval, flakyTimeout, retriesKey, flakyRegion, r.proxy.Addr(), steadyRegion, r.plat.URL(steadyRegion), flakyJourneys, pd.BaseURL())
	dir := filepath.Join(r.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "picket.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- daemon.Run(ctx, daemon.Options{ConfigPath: path, StateDir: filepath.Join(dir, "state"),
			OnListen: func(a string) { addr <- a }})
	}()
	d := &runningDaemon{pd: pd}
	select {
	case a := <-addr:
		d.base = "http://" + a
		d.stop = sync.OnceValue(func() error { cancel(); return <-errc })
	case err := <-errc:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("daemon did not listen within 10s")
	}
	t.Cleanup(func() { _ = d.stop() }) // after an explicit stop, returns its error at once
	return d
}

// runCounts are picket_probe_runs_total by region and status.
type runCounts map[string]map[string]int

var (
	labelRegion = regexp.MustCompile(`region="([^"]*)"`)
	labelStatus = regexp.MustCompile(`status="([^"]*)"`)
)

func (d *runningDaemon) runs(t *testing.T) runCounts {
	t.Helper()
	resp, err := http.Get(d.base + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	out := runCounts{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "picket_probe_runs_total{") {
			continue
		}
		region, status := labelRegion.FindStringSubmatch(line), labelStatus.FindStringSubmatch(line)
		fields := strings.Fields(line)
		n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if region == nil || status == nil || err != nil {
			t.Fatalf("metrics: cannot read %q", line)
		}
		if out[region[1]] == nil {
			out[region[1]] = map[string]int{}
		}
		out[region[1]][status[1]] += int(n)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return out
}

func (c runCounts) total(region string) int {
	n := 0
	for _, v := range c[region] {
		n += v
	}
	return n
}

func triggers(events []pdtest.Event) []pdtest.Event {
	var out []pdtest.Event
	for _, e := range events {
		if e.Action == pdtest.ActionTrigger {
			out = append(out, e)
		}
	}
	return out
}

// flakyOutcome is what one scenario measured.
type flakyOutcome struct {
	runs          runCounts
	conns, faults int64 // proxy connections and faulty ones during the scenario
	falsePages    []pdtest.Event
	expected      float64 // false pages the model expects (see expectedFalsePages)
	elapsed       time.Duration
}

// runFlaky runs the daemon until flakyRuns runs of the proxied region are done and
// returns what happened; the daemon keeps running (d.stop ends it).
func (r *flakyRig) runFlaky(t *testing.T, name string, retries int) (*runningDaemon, flakyOutcome) {
	t.Helper()
	before := r.proxy.Stats()
	began := time.Now()
	d := r.startDaemon(t, name, retries)
	var runs runCounts
	testkit.WaitFor(t, flakyRunsLimit, fmt.Sprintf("%d runs of %s", flakyRuns, flakyRegion), func() bool {
		runs = d.runs(t)
		return runs.total(flakyRegion) >= flakyRuns
	})
	after := r.proxy.Stats()
	o := flakyOutcome{
		runs:       runs,
		conns:      after.Accepted - before.Accepted,
		faults:     (after.Dropped - before.Dropped) + (after.Delayed - before.Delayed),
		falsePages: triggers(d.pd.Events()),
		elapsed:    time.Since(began),
	}
	tries := 1 + max(retries, 0)
	p := float64(o.faults) / float64(max(o.conns, 1))
	o.expected = expectedFalsePages(runs.total(flakyRegion), math.Pow(p, float64(tries)))
	t.Logf("%s (retries %d): %v; %s runs %d (%d down), %s runs %d (%d down); proxy: %d connections, %d faulty (%.1f%%: %d dropped, %d delayed); false pages %d (model: %.3f expected)",
		name, tries-1, o.elapsed.Round(100*time.Millisecond),
		flakyRegion, runs.total(flakyRegion), runs[flakyRegion]["down"], steadyRegion, runs.total(steadyRegion), runs[steadyRegion]["down"],
		o.conns, o.faults, 100*p, after.Dropped-before.Dropped, after.Delayed-before.Delayed, len(o.falsePages), o.expected)
	for _, e := range o.falsePages {
		t.Logf("  false page %s at %s: %s", e.DedupKey, e.Received.Format("15:04:05.000"), e.Payload.Summary)
	}
	checkFaultRate(t, o, retries)
	return d, o
}

// expectedFalsePages is the model: a target fires when failThreshold runs in a row
// fail, each with probability q independently; over n runs (summed over targets) there
// are about n streak starts, each of probability q^failThreshold·(1−q) once the run
// before passed. Each firing is a page: it lasts at least success_threshold (2) runs,
// 400 ms, longer than the 200 ms group wait that would swallow it.
func expectedFalsePages(n int, q float64) float64 {
	return float64(n) * math.Pow(q, failThreshold) * (1 - q)
}

// checkFaultRate makes sure the proxy did what the scenario claims: about flakyRate of
// the connections were faulty (binomial, n ≥ 500: ±5 points is over 3.7 σ), and the
// faults reached the prober: failed runs without retries, extra tries with them.
func checkFaultRate(t *testing.T, o flakyOutcome, retries int) {
	t.Helper()
	if o.conns < flakyRuns {
		t.Fatalf("only %d connections went through the proxy, want at least %d", o.conns, flakyRuns)
	}
	if p := float64(o.faults) / float64(o.conns); math.Abs(p-flakyRate) > 0.05 {
		t.Fatalf("the proxy faulted %.1f%% of connections, want %.0f%% ± 5", 100*p, 100*flakyRate)
	}
	runs := int64(o.runs.total(flakyRegion))
	switch {
	case retries <= 0 && o.runs[flakyRegion]["down"] == 0:
		t.Fatalf("no run of %s failed: the faults did not reach the prober", flakyRegion)
	case retries > 0 && o.conns <= runs:
		t.Fatalf("%d connections for %d runs of %s: no try was retried", o.conns, runs, flakyRegion)
	}
}

// TestFlakyNetworkPagesOnlyForRealOutages is issue 6 item 4: a proxy in front of one
// region drops or delays a seeded 10% of connections while the daemon probes every
// 200 ms with the default thresholds.
//
// With retries 0 (the default) that is not enough: a run fails with p = 0.1, two in a
// row fire the target, so ~500 runs give ~500·p² ≈ 5 false pages. The first subtest
// measures and reports them. retries: 1 makes a run fail with p² = 0.01 (~0.05 false
// pages per 500 runs: one test run in 20 would still see one); retries: 2 makes it
// p³ = 0.001 (~0.0005). The second subtest asserts that with retries: 2 no page is sent
// over ~500 runs, then breaks the region behind the same proxy and asserts that it pages
// within failure_threshold × interval + timeout + group_wait + 1 s.
func TestFlakyNetworkPagesOnlyForRealOutages(t *testing.T) {
	requireResilience(t)
	rig := startFlakyRig(t)

	t.Run("default retries 0: false pages measured", func(t *testing.T) {
		d, _ := rig.runFlaky(t, "retries0", -1)
		if err := d.stop(); err != nil {
			t.Fatalf("daemon: %v", err)
		}
	})
	t.Run("retries 1: false pages measured", func(t *testing.T) {
		d, _ := rig.runFlaky(t, "retries1", 1)
		if err := d.stop(); err != nil {
			t.Fatalf("daemon: %v", err)
		}
	})
	t.Run("retries 2: no false page, and a real outage pages in time", func(t *testing.T) {
		d, o := rig.runFlaky(t, "retries2", 2)
		if len(o.falsePages) != 0 {
			t.Errorf("%d false pages with retries 2, want 0", len(o.falsePages))
		}
		timeToPage(t, rig, d)
		if err := d.stop(); err != nil {
			t.Fatalf("daemon: %v", err)
		}
	})
}

// timeToPage breaks the proxied region (the platform drops every connection) and
// measures how long until the receiver accepts its page.
func timeToPage(t *testing.T, rig *flakyRig, d *runningDaemon) {
	t.Helper()
	bound := failThreshold*flakyInterval + flakyTimeout + flakyGroupWait + pageSlack
	wantKey := "picket/region/" + flakyRegion
	before := len(d.pd.Events())
	t0 := time.Now()
	rig.plat.SetFault(flakyRegion, "", probetest.Fault{Kind: probetest.FaultDown})
	defer rig.plat.ClearFaults()
	ctx, cancel := context.WithTimeout(context.Background(), bound+5*time.Second)
	defer cancel()
	var page pdtest.Event
	err := d.pd.WaitFor(ctx, func(events []pdtest.Event) bool {
		for _, e := range triggers(events[before:]) {
			page = e
			return true
		}
		return false
	})
	if err != nil {
		t.Fatalf("no page within %v of breaking %s: %v", bound+5*time.Second, flakyRegion, err)
	}
	took := page.Received.Sub(t0)
	t.Logf("outage of %s behind the proxy: paged %s after %v (bound %v = %d × %v + %v + %v + %v): %s",
		flakyRegion, page.DedupKey, took.Round(time.Millisecond), bound, failThreshold, flakyInterval, flakyTimeout, flakyGroupWait, pageSlack, page.Payload.Summary)
	if page.DedupKey != wantKey {
		t.Errorf("first page %s, want %s (the whole region is down)", page.DedupKey, wantKey)
	}
	if took > bound {
		t.Errorf("paged after %v, want within %v", took, bound)
	}
}
