package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/probe/probetest"
)

// outside is a self-check target that answers: "the internet" is reachable. It counts
// the connections, one per self-check round.
type outside struct {
	addr    string
	accepts atomic.Int32
}

func newOutside(t *testing.T) *outside {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	o := &outside{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.accepts.Add(1)
			_ = c.Close()
		}
	}()
	return o
}

// pinger is a heartbeat receiver that counts its pings.
func pinger(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// sumMetric adds up every series of a metric in /metrics.
func sumMetric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, m := body(t, base+"/metrics")
	sum := 0.0
	for _, line := range strings.Split(m, "\n") {
		if rest, ok := strings.CutPrefix(line, name+"{"); ok {
			if _, v, ok := strings.Cut(rest, "} "); ok {
				n, _ := strconv.ParseFloat(v, 64)
				sum += n
			}
		}
	}
	return sum
}

// TestDaemonKeepsTimeByItsClock: with Options.Clock a fake clock that starts in 2020 and
// moves only when told, the scheduler, the engine's group wait, the outbox, the
// heartbeat, the self-check and the health check all go by it, and the page carries its
// time.
func TestDaemonKeepsTimeByItsClock(t *testing.T) {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	hbURL, pings := pinger(t)
	out := newOutside(t)
	// Without confirmation runs: with them the page would not wait out the group wait
	// (TestConfirmationPagesTheRegionWithinItsFirstRound), and the group wait by the
	// fake clock is what this test times.
	f := newFixture(t, fmt.Sprintf("heartbeat: {url: %q, every: 1m}\nself_check: {targets: [\"tcp://%s\"], interval: 30s, timeout: 1s, notify: [ops]}\nconfirm: {enabled: false}\n", hbURL, out.addr))
	f.edit("interval: 300ms", "interval: 30s", "group_wait: 0s", "group_wait: 1m")
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	base, stop := f.startWith(Options{Clock: fake})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	testkit.WaitFor(t, 5*time.Second, "the first heartbeat and self-check round", func() bool { return pings.Load() == 1 && out.accepts.Load() == 1 })
	const key = "picket/region/eu1"
	// Every target runs first within its interval (30s): by then the 4 runs are done
	// and eu1 fires, so the incident opens at 30s and its group wait ends at 1m30s.
	fake.Set(start.Add(30 * time.Second))
	testkit.WaitFor(t, 5*time.Second, "the first run of every target by 30s", func() bool { return sumMetric(t, base, "picket_probe_runs_total") >= 4 })
	testkit.WaitFor(t, 5*time.Second, "both eu1 targets firing at 30s", func() bool {
		return metric(t, base, `picket_target_state{journey="query",product="metrics",region="eu1",vantage="daemon-test"}`) == "2" &&
			metric(t, base, `picket_target_state{journey="home",product="web",region="eu1",vantage="daemon-test"}`) == "2"
	})
	testkit.WaitFor(t, 5*time.Second, "the self-check round at 30s", func() bool { return out.accepts.Load() == 2 })
	fake.Set(start.Add(time.Minute))
	// Healthy by the fake clock: the last run started 30s ago, within 3 intervals.
	testkit.WaitFor(t, 5*time.Second, "the heartbeat at 1m", func() bool { return pings.Load() == 2 })
	testkit.WaitFor(t, 5*time.Second, "the self-check round at 1m", func() bool { return out.accepts.Load() == 3 })
	if n := f.pd.Count(key, "trigger"); n != 0 {
		t.Fatalf("paged at 1m of the fake clock, before the group wait (1m from 30s) was over")
	}
	fake.Set(start.Add(90 * time.Second))
	testkit.WaitFor(t, 5*time.Second, "the page at 1m30s", func() bool { return f.pd.Count(key, "trigger") == 1 })
	for _, ev := range f.pd.Events() {
		if ev.DedupKey == key && ev.Payload.Timestamp != "2020-01-01T00:01:30Z" {
			t.Errorf("the page's timestamp is %q, want the fake clock's 2020-01-01T00:01:30Z", ev.Payload.Timestamp)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "the self-check round at 1m30s", func() bool { return out.accepts.Load() == 4 })
	if code, why := body(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz by the fake clock: %d %s", code, why)
	}
	if n := pings.Load(); n != 2 {
		t.Errorf("heartbeats by 1m30s: %d, want 2 (at 0 and 1m)", n)
	}
}

// TestFleetIsAloneByItsClock: a vantage with no peer is alone from its start; on a fake
// clock it is isolated after alone_after of that clock (an hour here, none of it waited
// for), and its [ISOLATED] notice carries that clock's time.
func TestFleetIsAloneByItsClock(t *testing.T) {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	f := newFixture(t, fmt.Sprintf("cluster: {bind: %s, insecure: true, notify: [ops], alone_after: 1h, gossip_interval: 50ms, probe_interval: 200ms, push_pull_interval: 1s}\n", freeLoopbackAddr(t)))
	_, stop := f.startWith(Options{Clock: fake})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	const key = "picket/isolated/daemon-test"
	fake.Set(start.Add(time.Hour))
	// The fleet's watch ticks every second of the clock: step it a second at a time (its
	// ticker may have been made after the jump) until the notice comes.
	testkit.WaitFor(t, 10*time.Second, "the isolated notice after an hour of the fake clock", func() bool {
		fake.Advance(time.Second)
		return f.pd.Count(key, "trigger") == 1
	})
	for _, ev := range f.pd.Events() {
		if ev.DedupKey != key {
			continue
		}
		if !strings.HasPrefix(ev.Payload.Timestamp, "2020-01-01T01:0") || !strings.Contains(ev.Payload.Summary, "for 1h") {
			t.Errorf("isolated notice at %s: %q; want the fake clock's time, an hour after its start", ev.Payload.Timestamp, ev.Payload.Summary)
		}
	}
}
