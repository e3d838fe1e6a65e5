package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/probe/probetest"
)

// The fleet tests run several `picket run` processes on loopback, gossiping to each
// other, against one simulated platform and one Events API receiver.

const (
	fleetTakeover = 2 * time.Second
	fleetGossip   = "gossip_interval: 50ms, probe_interval: 200ms, push_pull_interval: 1s"
	regionKey     = "picket/region/eu1"
)

// vantage is one picket process of a fleet.
type vantage struct {
	name   string // member name (vantage, or vantage#shard)
	child  *child
	base   string // http://listen
	gossip string // cluster bind
	broken *atomic.Bool
}

type fleetSpec struct {
	members []string // "name" or "name#index/count" for a shard
	quorum  int
	proxied map[string]bool // vantages whose path to eu1 goes through a breakable proxy
}

type fleetEnv struct {
	*env
	vantages []*vantage
}

func startFleet(t *testing.T, spec fleetSpec) *fleetEnv {
	t.Helper()
	fe := &fleetEnv{env: newEnv(t)}
	if err := os.WriteFile(filepath.Join(fe.dir, "gossip_key"), []byte("ZmxlZXQtdGVzdC1nb3NzaXAta2V5LTMyYnl0ZXMhISE=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every port at once, each listener held until all are chosen: a port freed early
	// is not handed out again for another use in the same fleet.
	ports := distinctPorts(t, 2*len(spec.members))
	binds, listens := ports[:len(spec.members)], ports[len(spec.members):]
	for i, m := range spec.members {
		name, shard, _ := strings.Cut(m, "#")
		v := &vantage{name: name, gossip: binds[i], broken: &atomic.Bool{}}
		if shard != "" {
			v.name = name + "#" + strings.Split(shard, "/")[0]
		}
		fe.listen = listens[i]
		v.base = "http://" + fe.listen
		var peers []string
		for j, b := range binds {
			if j != i {
				peers = append(peers, b)
			}
		}
		extra := fmt.Sprintf("alerting: {group_wait: 1s}\ncluster: {bind: %s, peers: [%s], secret: \"{{.secret.gossip}}\", quorum: %d, alone_after: 3s, takeover_after: %s, notify: [pd], %s}\n",
			v.gossip, strings.Join(peers, ", "), spec.quorum, fleetTakeover, fleetGossip)
		cfg := fe.config(strings.ReplaceAll(v.name, "#", "-")+".yaml", "interval: 1s, timeout: 800ms, failure_threshold: 2, success_threshold: 2", extra)
		pairs := []string{"vantage: cmd-test", "vantage: " + name, filepath.Join(fe.dir, "state"), filepath.Join(fe.dir, "state-"+v.name),
			"pd: {file: pd_key}", "pd: {file: pd_key}\n  gossip: {file: gossip_key}",
			"degraded_after: 1500ms", "degraded_after: 600ms", "within: 1s", "within: 500ms"}
		if spec.proxied[name] {
			pairs = append(pairs, fmt.Sprintf("%q", fe.plat.URL("eu1")), fmt.Sprintf("%q", breakableProxy(t, fe.plat.URL("eu1"), v.broken)))
		}
		shorten(t, cfg, pairs...)
		args := []string{"run", "-c", cfg, "--log-format", "text", "--log-level", "info"}
		if shard != "" {
			args = append(args, "--shard", shard)
		}
		v.child = startChild(t, args...)
		fe.vantages = append(fe.vantages, v)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, v := range fe.vantages {
				t.Logf("log of %s:\n%s", v.name, tail(v.child.logs(), 60))
			}
			t.Logf("events: %s", eventList(fe.pd.Events()))
		}
	})
	for _, v := range fe.vantages {
		testkit.WaitFor(t, 15*time.Second, v.name+" to be ready", func() bool {
			resp, err := http.Get(v.base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	fe.waitAlive(t, len(spec.members), fe.vantages...)
	return fe
}

// distinctPorts returns n distinct loopback addresses that are free now.
func distinctPorts(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// breakableProxy forwards to target until broken is set, then answers 502 itself: one
// vantage's network path to one region fails while the region is fine.
func breakableProxy(t *testing.T, target string, broken *atomic.Bool) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the region's faults are the test's, not news
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "test proxy: path to the region is broken", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

func eventList(evs []pdtest.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s from %s: %s", ev.Action, ev.DedupKey, ev.Payload.Source, ev.Payload.Summary)
	}
	return b.String()
}

func getJSON(t *testing.T, u string, v any) bool {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(v) == nil
}

func (fe *fleetEnv) cluster(t *testing.T, v *vantage) alert.FleetStatus {
	t.Helper()
	var fs alert.FleetStatus
	if !getJSON(t, v.base+"/api/v1/cluster", &fs) {
		t.Fatalf("GET %s/api/v1/cluster failed", v.base)
	}
	return fs
}

// waitAlive waits until each of vs sees n members alive.
func (fe *fleetEnv) waitAlive(t *testing.T, n int, vs ...*vantage) {
	t.Helper()
	for _, v := range vs {
		testkit.WaitFor(t, 20*time.Second, fmt.Sprintf("%s to see %d members alive", v.name, n), func() bool {
			alive := 0
			for _, m := range fe.cluster(t, v).Members {
				if m.State == "alive" {
					alive++
				}
			}
			return alive == n
		})
	}
}

func (fe *fleetEnv) status(t *testing.T, v *vantage) alert.Status {
	t.Helper()
	var st alert.Status
	if !getJSON(t, v.base+"/api/v1/status", &st) {
		t.Fatalf("GET %s/api/v1/status failed", v.base)
	}
	return st
}

// count counts accepted events of one dedup key and action.
func (fe *fleetEnv) count(key, action string) int { return fe.pd.Count(key, action) }

// quietFor asserts that nothing reaches the receiver for d.
func (fe *fleetEnv) quietFor(t *testing.T, d time.Duration, why string) {
	t.Helper()
	before := len(fe.pd.Events())
	time.Sleep(d)
	if evs := fe.pd.Events(); len(evs) != before {
		t.Fatalf("%s, yet the receiver got: %s", why, eventList(evs[before:]))
	}
}

func (fe *fleetEnv) stop(t *testing.T, v *vantage) {
	t.Helper()
	if v.child.cmd.ProcessState != nil {
		return
	}
	_ = v.child.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- v.child.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s exit after SIGTERM: %v", v.name, err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not stop within 15s of SIGTERM", v.name)
	}
}

func TestFleetOfThreeQuorumOnePageTakeover(t *testing.T) {
	fe := startFleet(t, fleetSpec{members: []string{"v1", "v2", "v3"}, quorum: 2, proxied: map[string]bool{"v1": true}})
	v1, v2 := fe.vantages[0], fe.vantages[1]
	time.Sleep(1500 * time.Millisecond) // every target ran once, healthy
	if evs := fe.pd.Events(); len(evs) != 0 {
		t.Fatalf("a healthy fleet paged: %s", eventList(evs))
	}

	// Only v1's path to eu1 breaks: v1 sees eu1 down, the others do not; under quorum 2
	// nothing is paged, and every vantage shows "down from 1 of 3".
	v1.broken.Store(true)
	for _, v := range fe.vantages {
		testkit.WaitFor(t, 10*time.Second, v.name+" to show eu1 down from 1 of 3", func() bool {
			return fe.status(t, v).Votes["metrics"]["eu1"] == "down from 1 of 3"
		})
	}
	if _, page := get(t, v2.base+"/"); !strings.Contains(page, "down from 1 of 3") {
		t.Error("the status page of v2 does not show \"down from 1 of 3\"")
	}
	fe.quietFor(t, 2*fleetTakeover+time.Second, "one vantage of three saw eu1 down")
	v1.broken.Store(false)
	testkit.WaitFor(t, 10*time.Second, "v1 to see eu1 up again", func() bool { return len(fe.status(t, v2).Votes) == 0 })

	// The whole region goes down for everyone: one page, from one vantage.
	fe.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	testkit.WaitFor(t, 10*time.Second, "the region page", func() bool { return fe.count(regionKey, "trigger") >= 1 })
	fe.quietFor(t, 2*fleetTakeover+time.Second, "the region was paged")
	if n := fe.count(regionKey, "trigger"); n != 1 {
		t.Fatalf("region paged %d times, want 1: %s", n, eventList(fe.pd.Events()))
	}
	var sender *vantage
	for _, ev := range fe.pd.Events() {
		for _, v := range fe.vantages {
			if ev.DedupKey == regionKey && ev.Payload.Source == v.name {
				sender = v
			}
		}
	}
	if sender == nil {
		t.Fatalf("no vantage is the source of the page: %s", eventList(fe.pd.Events()))
	}
	for _, v := range fe.vantages {
		if v == sender {
			continue
		}
		testkit.WaitFor(t, 5*time.Second, v.name+" to know the page is out", func() bool {
			for _, inc := range fe.status(t, v).Incidents {
				if inc.Key == regionKey && inc.Triggered && inc.PagedBy == sender.name {
					return true
				}
			}
			return false
		})
	}

	// The sender dies mid-incident (SIGKILL: no goodbye). The others see it silent, say
	// so once, and one of them sends the one resolve when the region recovers.
	if err := sender.child.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sender.child.cmd.Wait()
	var rest []*vantage
	for _, v := range fe.vantages {
		if v != sender {
			rest = append(rest, v)
		}
	}
	noticeKey := "picket/vantage/" + sender.name
	testkit.WaitFor(t, 20*time.Second, "the notice that "+sender.name+" is silent", func() bool { return fe.count(noticeKey, "trigger") >= 1 })
	fe.plat.ClearFaults()
	testkit.WaitFor(t, 20*time.Second, "the region resolve", func() bool { return fe.count(regionKey, "resolve") >= 1 })
	fe.quietFor(t, 2*fleetTakeover+time.Second, "the region was resolved")
	if tr, res := fe.count(regionKey, "trigger"), fe.count(regionKey, "resolve"); tr != 1 || res != 1 {
		t.Errorf("region: %d triggers and %d resolves, want 1 and 1: %s", tr, res, eventList(fe.pd.Events()))
	}
	if n := fe.count(noticeKey, "trigger"); n != 1 {
		t.Errorf("%s silent: noticed %d times, want 1", sender.name, n)
	}
	for _, ev := range fe.pd.Events() {
		if ev.DedupKey == noticeKey && !strings.Contains(ev.Payload.Summary, "silent since") {
			t.Errorf("notice summary %q", ev.Payload.Summary)
		}
	}
	for _, v := range rest {
		fe.stop(t, v)
		if strings.Contains(v.child.logs(), testAPIKey) || strings.Contains(v.child.logs(), "fleet-test-gossip") {
			t.Errorf("a secret in the log of %s", v.name)
		}
	}
}

func TestFleetOfFiveWithShards(t *testing.T) {
	// Vantage a runs as two shards; b, c, d whole: five processes, four vantages; the
	// default quorum is a majority of the live vantages (3 of 4).
	fe := startFleet(t, fleetSpec{members: []string{"a#0/2", "a#1/2", "b", "c", "d"}, proxied: map[string]bool{"b": true}})
	a0, a1, b := fe.vantages[0], fe.vantages[1], fe.vantages[2]
	time.Sleep(1500 * time.Millisecond)

	// The shards of a cover every target exactly once.
	probed := map[string][]string{}
	for _, v := range []*vantage{a0, a1} {
		st := fe.status(t, v)
		if len(st.Targets) != 12 {
			t.Fatalf("%s judges %d targets, want all 12", v.name, len(st.Targets))
		}
		for _, tv := range st.Targets {
			if !tv.LastAt.IsZero() {
				probed[tv.Target] = append(probed[tv.Target], v.name)
			}
		}
	}
	if len(probed) != 12 {
		t.Errorf("the shards of a probed %d targets, want 12: %v", len(probed), probed)
	}
	for id, by := range probed {
		if len(by) != 1 {
			t.Errorf("%s probed by %v", id, by)
		}
	}
	if fs := fe.cluster(t, b); fs.Live != 4 || fs.Quorum != 3 || len(fs.Members) != 5 {
		t.Errorf("b's fleet view: live %d quorum %d members %d, want 4, 3, 5", fs.Live, fs.Quorum, len(fs.Members))
	}

	b.broken.Store(true)
	testkit.WaitFor(t, 10*time.Second, "a#0 to show eu1 down from 1 of 4", func() bool {
		return fe.status(t, a0).Votes["metrics"]["eu1"] == "down from 1 of 4"
	})
	fe.quietFor(t, 2*fleetTakeover, "one vantage of four saw eu1 down")
	b.broken.Store(false)

	fe.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	testkit.WaitFor(t, 15*time.Second, "the region page", func() bool { return fe.count(regionKey, "trigger") >= 1 })
	fe.quietFor(t, 2*fleetTakeover+time.Second, "the region was paged")
	fe.plat.ClearFaults()
	testkit.WaitFor(t, 15*time.Second, "the region resolve", func() bool { return fe.count(regionKey, "resolve") >= 1 })
	fe.quietFor(t, 2*fleetTakeover+time.Second, "the region was resolved")
	if tr, res := fe.count(regionKey, "trigger"), fe.count(regionKey, "resolve"); tr != 1 || res != 1 {
		t.Errorf("region: %d triggers and %d resolves, want 1 and 1", tr, res)
	}
	if n := len(fe.pd.Events()); n != 2 {
		t.Errorf("%d events, want the trigger and the resolve: %s", n, eventList(fe.pd.Events()))
	}
	for _, v := range fe.vantages {
		fe.stop(t, v)
	}
	// Graceful stops are departures, not silences: no vantage notice.
	for _, ev := range fe.pd.Events() {
		if strings.HasPrefix(ev.DedupKey, "picket/vantage/") {
			t.Errorf("a stopped vantage was reported silent: %s", ev.Payload.Summary)
		}
	}
}
