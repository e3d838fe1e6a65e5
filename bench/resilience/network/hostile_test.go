package network

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/bench"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// Timings of the hostile run. Hostile journeys get a timeout well under their interval
// so each runs several times; healthy ones run every healthyInterval, whose scheduling
// lag is what the hostile ones must not inflate.
const (
	hostileInterval = 2 * time.Second
	hostileTimeout  = 1500 * time.Millisecond
	healthyInterval = 250 * time.Millisecond
	hostileRunFor   = 8 * time.Second
	hostileRegions  = 4 // each hostile and healthy journey runs once per region, at once

	failSlack     = time.Second     // a hostile run must fail within its timeout + this
	maxLagP99     = time.Second     // healthy scheduling lag, 99th percentile
	maxPeakRSSMiB = 300             // generous: the race detector multiplies memory
	maxEndlessRun = int64(64) << 20 // bytes /endless may write per request before the prober stops it
	minHostileRun = 2               // runs of each hostile target at least
)

// hostileKinds: each hostile journey and the reason its failure must give.
var hostileKinds = []struct{ journey, reason string }{
	{"drip", "timeout: no complete answer before the deadline"},
	{"endless-body", "body larger than 1048576 bytes (max_body_bytes); stopped reading"},
	{"redirects", "more than 10 redirects (max_redirects)"},
	{"huge-headers", "server response headers exceeded 262144 bytes"},
	{"tls-stall", "TLS handshake: timed out"},
	{"https-stall", "timeout: no complete answer before the deadline"},
	{"dns-blackhole", "timeout: no complete answer before the deadline"},
	{"tcp-silent", "no line matched `^220 ` before the deadline (timeout)"},
}

type hostileServers struct {
	hostile, healthy *HostileHTTP
	tls, tcp         *TCPSink
	dns              *UDPSink
}

func startHostileServers(t *testing.T) *hostileServers {
	t.Helper()
	var s hostileServers
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s.hostile, err = StartHostileHTTP()
	must(err)
	t.Cleanup(func() { _ = s.hostile.Close() })
	s.healthy, err = StartHostileHTTP() // only its /ok is used
	must(err)
	t.Cleanup(func() { _ = s.healthy.Close() })
	s.tls, err = StartTCPSink()
	must(err)
	t.Cleanup(func() { _ = s.tls.Close() })
	s.tcp, err = StartTCPSink()
	must(err)
	t.Cleanup(func() { _ = s.tcp.Close() })
	s.dns, err = StartUDPSink()
	must(err)
	t.Cleanup(func() { _ = s.dns.Close() })
	return &s
}

func hostileConfig(s *hostileServers) []byte {
	var regions strings.Builder
	for i := 1; i <= hostileRegions; i++ {
		fmt.Fprintf(&regions, "  r%d: {}\n", i)
	}
	h := s.hostile.URL()
	hostile := func(name, step string) string {
		return fmt.Sprintf("      - {name: %s, interval: %v, timeout: %v, steps: [%s]}\n", name, hostileInterval, hostileTimeout, step)
	}
	var journeys strings.Builder
	journeys.WriteString(hostile("drip", fmt.Sprintf(`{name: get, http: {url: "%s%s"}}`, h, PathDrip)))
	journeys.WriteString(hostile("endless-body", fmt.Sprintf(`{name: get, http: {url: "%s%s"}}`, h, PathEndless)))
	journeys.WriteString(hostile("redirects", fmt.Sprintf(`{name: get, http: {url: "%s%s0"}}`, h, PathRedirect)))
	journeys.WriteString(hostile("huge-headers", fmt.Sprintf(`{name: get, http: {url: "%s%s"}}`, h, PathHeaders)))
	journeys.WriteString(hostile("tls-stall", fmt.Sprintf(`{name: handshake, tls: {address: "%s", server_name: stall.test, insecure_skip_verify: true}}`, s.tls.Addr())))
	journeys.WriteString(hostile("https-stall", fmt.Sprintf(`{name: get, http: {url: "https://%s/", tls: {insecure_skip_verify: true}}}`, s.tls.Addr())))
	journeys.WriteString(hostile("dns-blackhole", fmt.Sprintf(`{name: resolve, dns: {server: "%s", name: "{{.region.name}}.blackhole.test", transport: udp}}`, s.dns.Addr())))
	journeys.WriteString(hostile("tcp-silent", fmt.Sprintf(`{name: banner, tcp: {address: "%s", exchange: [{expect: '^220 '}]}}`, s.tcp.Addr())))
	ok := s.healthy.URL() + PathOK
	return []byte(fmt.Sprintf(`vantage: resilience-hostile
defaults: {interval: %v, timeout: %v}
regions:
%sproducts:
  - name: healthy
    journeys:
      - {name: ok-a, steps: [{http: {url: "%s?j=a&r={{.region.name}}"}}]}
      - {name: ok-b, steps: [{http: {url: "%s?j=b&r={{.region.name}}"}}]}
      - {name: ok-c, steps: [{http: {url: "%s?j=c&r={{.region.name}}"}}]}
  - name: hostile
    journeys:
%s`, healthyInterval, healthyInterval, regions.String(), ok, ok, ok, journeys.String()))
}

// hostileRecord collects what the scheduler reported, from its goroutines.
type hostileRecord struct {
	mu          sync.Mutex
	started     map[string]time.Time // by target id: start of the run in flight
	healthyLag  []time.Duration
	hostileLag  []time.Duration
	healthyRuns int
	healthyDown []string
	fails       map[string][]hostileFail // by journey
}

type hostileFail struct {
	target string
	wall   time.Duration // from the scheduler's start to the result
	status probe.Status
	reason string
}

func newHostileRecord() *hostileRecord {
	return &hostileRecord{started: map[string]time.Time{}, fails: map[string][]hostileFail{}}
}

func (r *hostileRecord) onStart(t *config.Target, lag time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started[t.ID] = time.Now()
	if t.Product == "healthy" {
		r.healthyLag = append(r.healthyLag, lag)
	} else {
		r.hostileLag = append(r.hostileLag, lag)
	}
}

func (r *hostileRecord) onResult(t *config.Target, res probe.Result) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.Product == "healthy" {
		r.healthyRuns++
		if !res.Up() {
			r.healthyDown = append(r.healthyDown, t.ID+": "+res.Error)
		}
		return
	}
	r.fails[t.Journey] = append(r.fails[t.Journey], hostileFail{
		target: t.ID, wall: now.Sub(r.started[t.ID]), status: res.Status, reason: res.Error,
	})
}

// TestHostileTargetsFailBoundedNextToHealthyOnes runs every hostile target of issue 6
// item 3 at once, hostileRegions copies of each, in one scheduler with the real runner,
// next to healthy targets: each hostile run fails with its own reason within its
// timeout + 1 s, the process's peak RSS stays under maxPeakRSSMiB, the endless body is
// cut after max_body_bytes, and the healthy targets' scheduling lag stays under
// maxLagP99 at the 99th percentile.
func TestHostileTargetsFailBoundedNextToHealthyOnes(t *testing.T) {
	requireResilience(t)
	s := startHostileServers(t)
	cfg, err := config.Parse("hostile.yaml", hostileConfig(s))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	rec := newHostileRecord()
	runner := probe.NewRunner()
	defer runner.Close()
	sched := probe.NewScheduler(probe.SchedulerOptions{
		Run: runner.Run, Concurrency: cfg.Concurrency, OnStart: rec.onStart, OnResult: rec.onResult,
	})
	sched.SetTargets(cfg.Targets)

	debug.FreeOSMemory() // what earlier tests left behind is not this test's memory
	hwmReset := ResetPeakRSS()
	baseline, _ := bench.StatusKiB("VmRSS")
	sampler := StartRSSSampler(20 * time.Millisecond)
	// Cancelled, not a deadline: a deadline would reach the runs in flight as theirs,
	// and a run cut by it would look like a timeout of its own.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := time.AfterFunc(hostileRunFor, cancel)
	defer stop.Stop()
	began := time.Now()
	_ = sched.Run(ctx) // returns once ctx ends and every run in flight has stopped
	elapsed := time.Since(began)
	peak, samples := sampler.Stop()
	hwm, _ := bench.StatusKiB("VmHWM")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	t.Logf("%d targets (%d hostile, %d healthy) for %v, concurrency %d",
		len(cfg.Targets), len(hostileKinds)*hostileRegions, len(cfg.Targets)-len(hostileKinds)*hostileRegions, elapsed.Round(time.Millisecond), cfg.Concurrency)
	checkHostileFailures(t, rec)
	checkHealthy(t, rec)
	checkMemory(t, s, baseline, peak, hwm, hwmReset, samples)
	if s.tls.Accepted() == 0 || s.tcp.Accepted() == 0 || s.dns.Received() == 0 {
		t.Errorf("a sink saw nothing: tls %d, tcp %d connections, dns %d questions", s.tls.Accepted(), s.tcp.Accepted(), s.dns.Received())
	}
}

func checkHostileFailures(t *testing.T, rec *hostileRecord) {
	t.Helper()
	limit := hostileTimeout + failSlack
	t.Logf("%-14s %5s %9s %9s %9s  reason (first)", "hostile", "runs", "min", "p50", "max")
	for _, k := range hostileKinds {
		fails := rec.fails[k.journey]
		var walls []time.Duration
		for _, f := range fails {
			walls = append(walls, f.wall)
			if f.status != probe.StatusDown || !strings.Contains(f.reason, k.reason) {
				t.Errorf("%s: %s %q, want down with %q", f.target, f.status, f.reason, k.reason)
			}
			if f.wall > limit {
				t.Errorf("%s: failed after %v, want within timeout %v + %v", f.target, f.wall, hostileTimeout, failSlack)
			}
		}
		if len(fails) < minHostileRun*hostileRegions {
			t.Errorf("%s: %d runs, want at least %d", k.journey, len(fails), minHostileRun*hostileRegions)
		}
		first := ""
		if len(fails) > 0 {
			first = fails[0].reason
		}
		t.Logf("%-14s %5d %9v %9v %9v  %s", k.journey, len(fails),
			quantile(walls, 0).Round(time.Millisecond), quantile(walls, 0.5).Round(time.Millisecond),
			quantile(walls, 1).Round(time.Millisecond), first)
	}
}

func checkHealthy(t *testing.T, rec *hostileRecord) {
	t.Helper()
	p50, p99, worst := quantile(rec.healthyLag, 0.5), quantile(rec.healthyLag, 0.99), quantile(rec.healthyLag, 1)
	t.Logf("healthy: %d runs, %d down; scheduling lag p50 %v, p99 %v, max %v (hostile runs' lag p99 %v)",
		rec.healthyRuns, len(rec.healthyDown), p50.Round(time.Microsecond), p99.Round(time.Microsecond),
		worst.Round(time.Microsecond), quantile(rec.hostileLag, 0.99).Round(time.Microsecond))
	if p99 >= maxLagP99 {
		t.Errorf("healthy targets' scheduling lag p99 %v, want under %v", p99, maxLagP99)
	}
	wantRuns := int(hostileRunFor/healthyInterval) * 3 * hostileRegions / 2 // half the schedule at least
	if rec.healthyRuns < wantRuns {
		t.Errorf("healthy targets ran %d times, want at least %d: their schedules were held up", rec.healthyRuns, wantRuns)
	}
	// A healthy run that fails next to hostile ones means they took something it needed.
	for _, d := range rec.healthyDown {
		t.Errorf("healthy run failed: %s", d)
	}
}

func checkMemory(t *testing.T, s *hostileServers, baseline, peak, hwm int64, hwmReset bool, samples int) {
	t.Helper()
	hwmNote := "VmHWM reset at start"
	if !hwmReset {
		hwmNote = "VmHWM not resettable: process lifetime peak"
	}
	t.Logf("memory: VmRSS %.1f MiB before, peak sampled %.1f MiB (+%.1f, %d samples), VmHWM %.1f MiB (%s)",
		mib(baseline), mib(peak), mib(peak-baseline), samples, mib(hwm), hwmNote)
	if mib(peak) >= maxPeakRSSMiB {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", mib(peak), maxPeakRSSMiB)
	}
	if hwmReset && mib(hwm) >= maxPeakRSSMiB {
		t.Errorf("VmHWM %.1f MiB, want under %d MiB", mib(hwm), maxPeakRSSMiB)
	}
	reqs, bytes := s.hostile.EndlessServed()
	if reqs == 0 {
		t.Fatal("the endless body was never asked for")
	}
	t.Logf("endless body: %d requests, %.1f MiB written in all, %.1f MiB per request (claimed: %d GiB each)",
		reqs, float64(bytes)/(1<<20), float64(bytes)/float64(reqs)/(1<<20), EndlessLength>>30)
	if bytes/reqs > maxEndlessRun {
		t.Errorf("the server wrote %d bytes per endless request: the prober kept reading past max_body_bytes", bytes/reqs)
	}
}
