package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
)

// hungServer accepts connections on addr and never answers: each one is held until the
// prober gives up and closes it (the prober closes first, so TIME_WAIT is on its side).
func hungServer(t testing.TB, addr string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), &accepted
}

// hungConfig is n targets (one journey in n regions) against the hung servers, round
// robin, plus one target, healthy/get@ok, against healthyURL.
func hungConfig(t testing.TB, n int, hung []string, healthyURL, timing string) *config.Config {
	t.Helper()
	var regions, names strings.Builder
	for i := range n {
		fmt.Fprintf(&regions, "  h%d: {vars: {api: %q}}\n", i, "http://"+hung[i%len(hung)])
		fmt.Fprintf(&names, "h%d, ", i)
	}
	yaml := fmt.Sprintf(`defaults: {%s}
regions:
%s  ok: {vars: {api: %q}}
products:
  - name: hung
    regions: [%s]
    journeys: [{name: get, steps: [{http: {url: "{{.region.api}}/"}}]}]
  - name: healthy
    regions: [ok]
    journeys: [{name: get, steps: [{http: {url: "{{.region.api}}/"}, expect: {status: [200]}}]}]
`, timing, regions.String(), healthyURL, strings.TrimSuffix(names.String(), ", "))
	cfg, err := config.Parse("hung.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSchedulerHungTargetsDoNotDelayOthers: 256 targets that hang for their whole
// timeout (2s every 3s: about 170 runs in flight) and one target whose platform answers
// 503 at once. Its runs must keep their plan and its verdicts arrive on time, with the
// config's default concurrency: a fixed pool of 64 slots made it wait behind the hung
// runs, its lag growing by seconds every interval.
func TestSchedulerHungTargetsDoNotDelayOthers(t *testing.T) {
	hungA, acceptedA := hungServer(t, "127.0.0.1:0")
	hungB, acceptedB := hungServer(t, "127.0.0.2:0")
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable) // a quick, definite verdict: down
	}))
	defer healthy.Close()
	cfg := hungConfig(t, 256, []string{hungA, hungB}, healthy.URL, "interval: 3s, timeout: 2s")
	const watched = "healthy/get@ok"

	runner := NewRunner()
	defer runner.Close()
	var mu sync.Mutex
	var lags []time.Duration
	var verdicts []Status
	s := NewScheduler(SchedulerOptions{
		Run:         runner.Run,
		Concurrency: cfg.Concurrency,
		OnStart: func(tg *config.Target, lag time.Duration) {
			if tg.ID == watched {
				mu.Lock()
				lags = append(lags, lag)
				mu.Unlock()
			}
		},
		OnResult: func(tg *config.Target, r Result) {
			if tg.ID == watched {
				mu.Lock()
				verdicts = append(verdicts, r.Status)
				mu.Unlock()
			}
		},
	})
	s.SetTargets(cfg.Targets)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	_ = s.Run(ctx)

	mu.Lock()
	defer mu.Unlock()
	if hung := acceptedA.Load() + acceptedB.Load(); hung < 256 {
		t.Fatalf("only %d connections reached the hung servers: the test did not hang every target", hung)
	}
	// 12s at 3s: 4 runs (the first within its spread offset), each answered at once.
	if len(lags) < 3 || len(verdicts) < 3 {
		t.Errorf("%s started %d runs and got %d verdicts in 12s at a 3s interval, want at least 3 each", watched, len(lags), len(verdicts))
	}
	for i, lag := range lags {
		if lag > time.Second {
			t.Errorf("%s run %d started %v after its plan while the other targets hung (lags %v)", watched, i+1, lag.Round(time.Millisecond), lags)
			break
		}
	}
	for _, v := range verdicts {
		if v != StatusDown {
			t.Errorf("%s verdict %s, want down (its platform answers 503)", watched, v)
		}
	}
	st := s.Stats()
	t.Logf("%s lags %v; scheduler %+v", watched, lags, st)
}
