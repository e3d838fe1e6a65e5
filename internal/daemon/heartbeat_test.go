package daemon

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe/probetest"
)

// reload asks the daemon at base to reload its config, which must be accepted.
func reload(t *testing.T, base string) {
	t.Helper()
	resp, err := postReload(base)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
}

// TestSelfCheckFollowsReload: the self-check reads self_check: at every round and a
// reload wakes it (interval 1h here: no round but the first comes on its own). Fixing
// the targets, lowering min_ok or removing self_check releases an impaired vantage: the
// notice is resolved and the held page goes out; adding a failing self_check, or a
// notifier to an impaired one, sends the notice at once and pages stay held.
func TestSelfCheckFollowsReload(t *testing.T) {
	dead := freeLoopbackAddr(t) // nothing listens there: "the internet" is gone
	up := newOutside(t)
	sc := func(targets, more string) string {
		return fmt.Sprintf("self_check: {targets: [%s], interval: 1h, timeout: 500ms%s}\n", targets, more)
	}
	deadT, upT := fmt.Sprintf("%q", "tcp://"+dead), fmt.Sprintf("%q", "tcp://"+up.addr)
	const impairedKey, pageKey = "picket/impaired/daemon-test", "picket/region/eu1"
	for _, tc := range []struct {
		name          string
		before, after string // self_check: lines; "" none
		release       bool   // the reload releases (else: the vantage is impaired after it)
	}{
		{"fixed targets release the held page", sc(deadT, ", notify: [ops]"), sc(upT, ", notify: [ops]"), true},
		{"lower min_ok releases the held page", sc(deadT+", "+upT, ", min_ok: 2, notify: [ops]"), sc(deadT+", "+upT, ", min_ok: 1, notify: [ops]"), true},
		{"removed self_check releases the held page", sc(deadT, ", notify: [ops]"), "", true},
		{"added self_check impairs at once", "", sc(deadT, ", notify: [ops]"), false},
		{"a notifier added while impaired gets the notice", sc(deadT, ""), sc(deadT, ", notify: [ops]"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tokenConfig+tc.before)
			base, stop := f.start()
			defer func() {
				if err := stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
			}()
			if tc.before != "" {
				testkit.WaitFor(t, 5*time.Second, "impaired", func() bool { return metric(t, base, "picket_impaired") == "1" })
			}
			if tc.release {
				f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
				waitHeld(t, f, base)
			}
			raw, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.before == "" {
				err = os.WriteFile(f.path, append(raw, tc.after...), 0o600)
			} else {
				f.edit(tc.before, tc.after)
			}
			if err != nil {
				t.Fatal(err)
			}
			reload(t, base)
			if tc.release {
				testkit.WaitFor(t, 5*time.Second, "the impaired notice's resolve", func() bool { return f.pd.Count(impairedKey, "resolve") == 1 })
				testkit.WaitFor(t, 5*time.Second, "the released page", func() bool { return f.pd.Count(pageKey, "trigger") == 1 })
				if v := metric(t, base, "picket_impaired"); v != "0" {
					t.Errorf("picket_impaired after the release: %q", v)
				}
				return
			}
			testkit.WaitFor(t, 5*time.Second, "the impaired notice", func() bool { return f.pd.Count(impairedKey, "trigger") == 1 })
			f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
			waitHeld(t, f, base)
		})
	}
}

// waitHeld waits until both eu1 targets fire and checks that their page is held.
func waitHeld(t *testing.T, f *fixture, base string) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, "both eu1 targets firing", func() bool {
		return metric(t, base, `picket_target_state{journey="query",product="metrics",region="eu1",vantage="daemon-test"}`) == "2" &&
			metric(t, base, `picket_target_state{journey="home",product="web",region="eu1",vantage="daemon-test"}`) == "2"
	})
	for _, ev := range f.pd.Events() {
		if ev.DedupKey != "picket/impaired/daemon-test" {
			t.Fatalf("a page went out while impaired: %s %s", ev.Action, ev.DedupKey)
		}
	}
}

// TestHeartbeatFollowsReload: a reload that changes the heartbeat's url and every
// takes effect at once; one that removes it stops the pings.
func TestHeartbeatFollowsReload(t *testing.T) {
	urlA, pingsA := pinger(t)
	urlB, pingsB := pinger(t)
	lineA, lineB := fmt.Sprintf("heartbeat: {url: %q, every: 1h}\n", urlA), fmt.Sprintf("heartbeat: {url: %q, every: 100ms}\n", urlB)
	f := newFixture(t, tokenConfig+lineA)
	base, stop := f.start()
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	testkit.WaitFor(t, 5*time.Second, "the first ping", func() bool { return pingsA.Load() == 1 })
	f.edit(lineA, lineB)
	reload(t, base)
	testkit.WaitFor(t, 5*time.Second, "pings to the new url every 100ms", func() bool { return pingsB.Load() >= 3 })
	if n := pingsA.Load(); n != 1 {
		t.Errorf("the old url was pinged %d times, want only the first", n)
	}
	f.edit(lineB, "")
	reload(t, base)
	n := pingsB.Load()
	time.Sleep(500 * time.Millisecond) // five periods: nothing more may come
	if m := pingsB.Load(); m > n+1 {   // (one may have been on its way)
		t.Errorf("%d pings after the heartbeat was removed", m-n)
	}
}

// TestImpairedNoticeIsResolvedAfterRestart: a vantage stopped while impaired, whose
// self-check is fixed meanwhile, starts again with its pages held until its first round
// ends; then it resolves the notice it sent before the restart (same dedup key, no new
// trigger) and sends the held page, and the state dir no longer says it is impaired.
func TestImpairedNoticeIsResolvedAfterRestart(t *testing.T) {
	dead := freeLoopbackAddr(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select { // answers once released: the first round after the restart is slow
		case <-release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	const impairedKey, pageKey = "picket/impaired/daemon-test", "picket/region/eu1"
	f := newFixture(t, fmt.Sprintf("self_check: {targets: [%q], interval: 100ms, timeout: 5s, notify: [ops]}\n", "tcp://"+dead))
	base, stop := f.start()
	testkit.WaitFor(t, 5*time.Second, "the impaired notice", func() bool { return f.pd.Count(impairedKey, "trigger") == 1 })
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	waitHeld(t, f, base)
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// The operator fixes the self-check and starts the vantage again.
	f.edit(fmt.Sprintf("%q", "tcp://"+dead), fmt.Sprintf("%q", slow.URL))
	base, stop = f.start()
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if v := metric(t, base, "picket_impaired"); v != "1" {
		t.Fatalf("picket_impaired after the restart, before the first round ended: %q, want 1", v)
	}
	// (The targets' states were restored firing: no transition to wait for, but runs.)
	testkit.WaitFor(t, 5*time.Second, "two rounds of runs after the restart", func() bool { return sumMetric(t, base, "picket_probe_runs_total") >= 8 })
	for _, ev := range f.pd.Events() {
		if ev.DedupKey != impairedKey {
			t.Fatalf("a page went out after the restart, before the self-check's first round: %s %s", ev.Action, ev.DedupKey)
		}
	}
	close(release)
	testkit.WaitFor(t, 5*time.Second, "the resolve of the notice sent before the restart", func() bool { return f.pd.Count(impairedKey, "resolve") == 1 })
	testkit.WaitFor(t, 5*time.Second, "the held page", func() bool { return f.pd.Count(pageKey, "trigger") == 1 })
	if n := f.pd.Count(impairedKey, "trigger"); n != 1 {
		t.Errorf("%d impaired triggers, want the one from before the restart", n)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	st, err := store.Open(filepath.Join(f.dir, "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var rec impairment
	if found, err := st.Get(bucketMeta, keyImpaired, &rec); err != nil || found {
		t.Errorf("the state dir still says impaired (%v): %+v", err, rec)
	}
}
