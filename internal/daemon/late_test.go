package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// hangingPlatform accepts connections and never answers, until fixed: then it closes
// every connection it holds and its listener, so runs fail at once (refused).
type hangingPlatform struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	once  sync.Once
}

func newHangingPlatform(t *testing.T) *hangingPlatform {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingPlatform{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Add(1)
			go func() { defer h.wg.Done(); _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	t.Cleanup(h.fix)
	return h
}

func (h *hangingPlatform) url() string { return "http://" + h.ln.Addr().String() }

// fix ends the hang: connections held are closed, new ones refused.
func (h *hangingPlatform) fix() {
	h.once.Do(func() {
		_ = h.ln.Close()
		h.mu.Lock()
		for _, c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
}

// TestLateRunsFailReadinessAndWithholdTheHeartbeat: 40 targets whose platform hangs
// (500ms of every 1s), run by a scheduler held to 2 slots, as the fixed pool was: runs
// wait past their interval, so /readyz says 503 with the reason and the heartbeat is
// withheld; /metrics counts the late runs. When the platform answers again (refused, at
// once) the backlog drains, and after three intervals without a late run /readyz is
// ready and the heartbeat beats again.
func TestLateRunsFailReadinessAndWithholdTheHeartbeat(t *testing.T) {
	hung := newHangingPlatform(t)
	hbURL, pings := pinger(t)
	var regions, names strings.Builder
	for i := range 40 {
		fmt.Fprintf(&regions, "  h%d: {vars: {api: %q}}\n", i, hung.url())
		fmt.Fprintf(&names, "h%d, ", i)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`vantage: late-test
listen: 127.0.0.1:0
state_dir: %s
defaults: {interval: 1s, timeout: 500ms, failure_threshold: 1, success_threshold: 1}
heartbeat: {url: %q, every: 100ms}
regions:
%sproducts:
  - name: web
    regions: [%s]
    journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]
`, filepath.Join(dir, "state"), hbURL, regions.String(), strings.TrimSuffix(names.String(), ", "))
	f := &fixture{t: t, dir: dir, path: filepath.Join(dir, "picket.yaml"), addr: make(chan string, 1)}
	if err := os.WriteFile(f.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stop := f.startWith(Options{maxConcurrency: 2})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	var why string
	testkit.WaitFor(t, 5*time.Second, "/readyz to fail while runs wait for a slot", func() bool {
		var code int
		code, why = body(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(why, "late") && !strings.Contains(why, "wait longer than their interval") {
		t.Errorf("/readyz says %q: want the reason (runs late or waiting)", why)
	}
	n := pings.Load()
	time.Sleep(500 * time.Millisecond) // five heartbeat periods
	if m := pings.Load(); m > n+1 {    // (one may have been on its way)
		t.Errorf("%d heartbeats while runs were late: want it withheld", m-n)
	}
	late, overdue := metric(t, base, "picket_scheduler_late_runs_total"), metric(t, base, "picket_scheduler_overdue_runs")
	if late == "" || overdue == "" || late == "0" && overdue == "0" {
		t.Errorf("late runs %q, overdue %q in /metrics: want lateness seen", late, overdue)
	}
	if slots := metric(t, base, "picket_scheduler_slots"); slots != "2" {
		t.Errorf("picket_scheduler_slots %s, want 2", slots)
	}
	t.Logf("while behind: /readyz %q", strings.TrimSpace(why))

	hung.fix()
	fixed := time.Now()
	testkit.WaitFor(t, 8*time.Second, "/readyz ready again once the runs keep their plan", func() bool {
		code, _ := body(t, base+"/readyz")
		return code == http.StatusOK
	})
	t.Logf("ready again %v after the fix", time.Since(fixed).Round(100*time.Millisecond))
	n = pings.Load()
	testkit.WaitFor(t, 2*time.Second, "the heartbeat to beat again", func() bool { return pings.Load() >= n+3 })
}
