package bench

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	flagTargets     = flag.Int("scale.targets", envInt("PICKET_SCALE_TARGETS"), "targets for TestScale (0: skip it); env PICKET_SCALE_TARGETS")
	flagDuration    = flag.Duration("scale.duration", envDuration("PICKET_SCALE_DURATION", 60*time.Second), "how long TestScale runs the scheduler; env PICKET_SCALE_DURATION")
	flagInterval    = flag.Duration("scale.interval", 10*time.Second, "every target's interval")
	flagConcurrency = flag.Int("scale.concurrency", 256, "the scheduler's concurrency")
	flagOut         = flag.String("scale.out", "", "write the report as JSON to this file")
	flagCPUProfile  = flag.String("scale.cpuprofile", "", "write a CPU profile of the run (not of setup) to this file")
)

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// TestScale is the scale run itself: figures, not pass/fail, so it runs only when asked
// (-scale.targets=N or PICKET_SCALE_TARGETS=N). It fails only when the harness cannot run.
func TestScale(t *testing.T) {
	if *flagTargets == 0 {
		t.Skip("set -scale.targets=N or PICKET_SCALE_TARGETS=N to run")
	}
	o := Options{Targets: *flagTargets, Duration: *flagDuration, Interval: *flagInterval, Concurrency: *flagConcurrency}
	if *flagCPUProfile != "" {
		f, err := os.Create(*flagCPUProfile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		o.CPUProfile = f
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", Table([]*Report{rep}))
	for _, e := range rep.Errors {
		t.Logf("failure x%d: %s", e.Count, e.Error)
	}
	if *flagOut != "" {
		writeJSON(t, *flagOut, rep)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestScaleHarnessSmall runs the whole harness briefly so that `make test` keeps it
// working: 200 targets at a 1 s interval for 3 s against a server child on 127.0.0.1.
func TestScaleHarnessSmall(t *testing.T) {
	o := Options{Targets: 200, Duration: 3 * time.Second, Interval: time.Second, Timeout: 500 * time.Millisecond,
		Concurrency: 64, Hosts: []string{"127.0.0.1"}}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", Table([]*Report{rep}))
	if rep.Failures != 0 || len(rep.Errors) != 0 {
		t.Errorf("%d failures, want 0: %+v", rep.Failures, rep.Errors)
	}
	if rep.Skipped != 0 {
		t.Errorf("%d runs skipped, want 0", rep.Skipped)
	}
	// Each target runs about 3 times (each at its offset in the second, on a regular plan).
	if rep.Results < 500 || rep.Results > 700 {
		t.Errorf("%d results in 3s of 200 targets at 1s, want about 600", rep.Results)
	}
	if rep.Servers.Requests < rep.Results {
		t.Errorf("servers saw %d requests, fewer than the %d results", rep.Servers.Requests, rep.Results)
	}
	if rep.Runs < rep.Results || rep.Lag.Count != rep.Runs {
		t.Errorf("runs %d, lag samples %d, results %d: every run should report its lag", rep.Runs, rep.Lag.Count, rep.Results)
	}
	if rep.Lag.P99 >= 1000 {
		t.Errorf("lag p99 %.1f ms, want under 1s", rep.Lag.P99)
	}
	if rep.CPUCores <= 0 || rep.PeakRSS <= 0 || rep.MaxGoroutines <= 0 || len(rep.Samples) < 2 {
		t.Errorf("missing figures: cores %.2f, rss %.1f, goroutines %d, %d samples", rep.CPUCores, rep.PeakRSS, rep.MaxGoroutines, len(rep.Samples))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	h.record(-time.Millisecond) // a negative lag counts as 0
	cases := []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}}
	for _, c := range cases {
		got := h.quantile(c.q)
		if diff := got - c.want; diff < -c.want/30 || diff > c.want/30 {
			t.Errorf("q%.2f = %s, want %s within 3.3%%", c.q, got, c.want)
		}
	}
	if s := h.summary(); s.Count != 1001 || s.Max != 1000 {
		t.Errorf("summary %+v, want count 1001, max 1000 ms", s)
	}
	var empty histogram
	if q := empty.quantile(0.99); q != 0 {
		t.Errorf("empty histogram p99 %s, want 0", q)
	}
}

func TestHistogramExactBelow64us(t *testing.T) {
	var h histogram
	h.record(7 * time.Microsecond)
	h.record(63 * time.Microsecond)
	if p50, p100 := h.quantile(0.5), h.quantile(1); p50 != 7*time.Microsecond || p100 != 63*time.Microsecond {
		t.Errorf("p50 %s p100 %s, want 7µs and 63µs", p50, p100)
	}
}

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	prevHi := int64(-1)
	for b := range nBuckets - 1 {
		lo, hi := bucketBounds(b)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d is [%d, %d], previous ended at %d", b, lo, hi, prevHi)
		}
		if bucketOf(lo) != b || bucketOf(hi) != b {
			t.Fatalf("bucket %d [%d, %d]: bucketOf gives %d and %d", b, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
	}
}

func TestLayout(t *testing.T) {
	cases := []struct {
		n, regions, journeys int
		ok                   bool
	}{
		{1, 1, 1, true}, {100, 1, 100, true}, {200, 2, 100, true}, {50000, 500, 100, true},
		{0, 0, 0, false}, {150, 0, 0, false},
	}
	for _, c := range cases {
		r, j, err := layout(c.n)
		if (err == nil) != c.ok || r != c.regions || j != c.journeys {
			t.Errorf("layout(%d) = %d, %d, %v; want %d, %d, ok %v", c.n, r, j, err, c.regions, c.journeys, c.ok)
		}
	}
}

func TestScaleTargetsSpreadOverServers(t *testing.T) {
	urls := []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}
	targets, err := scaleTargets(300, urls, 10*time.Second, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	perURL := map[string]int{}
	for _, tg := range targets {
		if tg.Interval != 10*time.Second || tg.Timeout != 5*time.Second || len(tg.Steps) != 1 {
			t.Fatalf("%s: interval %s timeout %s, %d steps", tg.ID, tg.Interval, tg.Timeout, len(tg.Steps))
		}
		data := tg.TemplateData(map[string]string{}, map[string]string{})
		u, err := tg.Steps[0].HTTP.URL.Render(data)
		if err != nil {
			t.Fatal(err)
		}
		perURL[u[:len("http://127.0.0.1:1")]]++
	}
	for _, u := range urls {
		if perURL[u] != 100 {
			t.Errorf("%s has %d targets, want 100 (%v)", u, perURL[u], perURL)
		}
	}
}

func TestDefaultHosts(t *testing.T) {
	cases := []struct {
		perSec float64
		want   int
	}{{100, 1}, {1000, 5}, {5000, 22}}
	for _, c := range cases {
		hosts := DefaultHosts(c.perSec)
		if len(hosts) != c.want || hosts[0] != "127.0.0.2" {
			t.Errorf("DefaultHosts(%g) = %d hosts from %v, want %d from 127.0.0.2", c.perSec, len(hosts), hosts[0], c.want)
		}
	}
}

func TestTableHasARowPerReport(t *testing.T) {
	reps := []*Report{{Targets: 1000, ProbesPerS: 99.5, ExpectedPerS: 100, Lag: Quantiles{P50: 0.123, P99: 150}}, {Targets: 10000}}
	out := Table(reps)
	lines := len(strings.Split(strings.TrimSpace(out), "\n"))
	if lines != 4 {
		t.Fatalf("table has %d lines, want header, rule and 2 rows:\n%s", lines, out)
	}
	for _, want := range []string{"| 1000 | 100 (100) | 0.12 ms |", "150 ms", "| 10000 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestDaemonScaleHarnessSmall runs the daemon-level harness briefly so that `make test`
// keeps it working: 200 targets at 1 s for 3 s, the daemon in a child process.
func TestDaemonScaleHarnessSmall(t *testing.T) {
	heap := filepath.Join(t.TempDir(), "heap.pprof")
	rep, err := RunDaemon(context.Background(), DaemonOptions{Targets: 200, Duration: 3 * time.Second, Interval: time.Second,
		Timeout: 500 * time.Millisecond, Hosts: []string{"127.0.0.1"}, ScrapeEvery: time.Second, StatusEvery: time.Second, HeapProfile: heap})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", DaemonTable([]*DaemonReport{rep}))
	if rep.Runs["up"] < 400 || rep.Runs["down"]+rep.Runs["degraded"] != 0 {
		t.Errorf("runs %v in 3s of 200 targets at 1s, want about 600 up and none down", rep.Runs)
	}
	if rep.Gaps.Targets != 200 || rep.Gaps.Deviation.Count < 200 {
		t.Errorf("the servers saw %d targets and %d gaps, want 200 and at least 200", rep.Gaps.Targets, rep.Gaps.Deviation.Count)
	}
	if rep.PeakRSS <= 0 || rep.SteadyRSS <= 0 || rep.EndAnon <= 0 || rep.Threads <= 0 || rep.Cores <= 0 || rep.Scrapes < 2 || rep.StatusReads < 1 || rep.PlanDeviationP99MS <= 0 {
		t.Errorf("missing figures: %+v", rep)
	}
	if fi, err := os.Stat(heap); err != nil || fi.Size() == 0 {
		t.Errorf("no heap profile: %v", err)
	}
}
