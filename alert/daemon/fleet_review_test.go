package daemon

// Fleet tests from the second review: each failed on the code before its fix.

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/probetest"
)

// Two vantages page eu1 together; then the second's self-check fails. Its outage view
// must not resolve the fleet's page while the outage goes on.
func TestImpairedOfTwoDoesNotResolveFleetPage(t *testing.T) {
	f := newInProcessFleet(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	members := f.start(t, "takeover_after: 1s", memberSpec{name: "x"}, memberSpec{name: "y", selfCheck: ln.Addr().String()})
	const key = "picket/region/eu1"
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	waitFor(t, 10*time.Second, "the page", func() bool { return f.pd.Count(key, "trigger") >= 1 })
	_ = ln.Close() // y's own network checks now fail
	waitFor(t, 10*time.Second, "y impaired", func() bool { return metric(t, members[1].base, "picket_impaired") == "1" })
	time.Sleep(4 * time.Second)
	if n := f.pd.Count(key, "resolve"); n != 0 {
		t.Errorf("the outage still goes on, yet it was resolved %d times: %s", n, events(f.pd))
	}
}

// splitNet cuts gossip between groups while split is set.
type splitNet struct {
	split atomic.Bool
	mu    sync.Mutex
	group map[string]int // addr -> group
}

type splitTransport struct {
	memberlist.NodeAwareTransport
	n     *splitNet
	group int
}

func (s *splitNet) wrap(group int) WrapGossip {
	return func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		ip, port, err := inner.FinalAdvertiseAddr("", 0)
		if err == nil {
			s.mu.Lock()
			s.group[net.JoinHostPort(ip.String(), strconv.Itoa(port))] = group
			s.mu.Unlock()
		}
		return &splitTransport{NodeAwareTransport: inner, n: s, group: group}
	}
}

func (t *splitTransport) blocked(addr string) bool {
	if !t.n.split.Load() {
		return false
	}
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	g, ok := t.n.group[addr]
	return ok && g != t.group
}

func (t *splitTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.blocked(addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}
func (t *splitTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.blocked(a.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}
func (t *splitTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	if t.blocked(addr) {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialTimeout(addr, d)
}
func (t *splitTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	if t.blocked(a.Addr) {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialAddressTimeout(a, d)
}

// Five vantages; a and b are cut off together from c, d, e. The majority still sees eu1
// down; a and b see it up. Does the minority resolve the majority's page?
func TestMinorityPartitionDoesNotResolveFleetPage(t *testing.T) {
	f := newInProcessFleet(t)
	sn := &splitNet{group: map[string]int{}}
	abBroken := &atomic.Bool{}
	abBroken.Store(true)
	ab := switchable(t, f.plat.URL("eu1"), abBroken)
	broken := brokenPath(t)
	members := f.start(t, "alone_after: 60s, takeover_after: 1s",
		memberSpec{name: "a", eu1URL: ab, wrap: sn.wrap(0)}, memberSpec{name: "b", eu1URL: ab, wrap: sn.wrap(0)},
		memberSpec{name: "c", eu1URL: broken, wrap: sn.wrap(1)}, memberSpec{name: "d", eu1URL: broken, wrap: sn.wrap(1)},
		memberSpec{name: "e", eu1URL: broken, wrap: sn.wrap(1)})
	const key = "picket/region/eu1"
	waitFor(t, 15*time.Second, "the fleet's page", func() bool { return f.pd.Count(key, "trigger") >= 1 })
	time.Sleep(time.Second)
	sn.split.Store(true)
	for _, m := range members[:2] { // both sides settled: each member declares the dead at its own time
		waitFor(t, 20*time.Second, m.name+" to see 3 dead", func() bool { return metric(t, m.base, `picket_cluster_members{state="dead"}`) == "3" })
	}
	abBroken.Store(false) // a and b see eu1 up; c, d, e still see it down
	time.Sleep(5 * time.Second)
	if v := metric(t, members[0].base, "picket_cluster_alone"); v != "1" {
		t.Errorf("a, on the minority side, alone = %q, want 1", v)
	}
	if n := f.pd.Count(key, "resolve"); n != 0 {
		t.Errorf("the minority side resolved the page the majority still sees (%d resolves): %s", n, events(f.pd))
	}
}

// The two shards of one vantage, with no other vantage: alone, then isolated after
// alone_after. How many pages does one outage get?
func TestIsolatedShardsPageOnce(t *testing.T) {
	f := newInProcessFleet(t)
	u, _ := url.Parse(f.pd.BaseURL())
	rp := httputil.NewSingleHostReverseProxy(u)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond) // a paging service that takes its time to answer
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)
	members := f.start(t, "alone_after: 2s, takeover_after: 1s",
		memberSpec{name: "v#0", shard: &config.Shard{Index: 0, Count: 2}, eventsURL: slow.URL},
		memberSpec{name: "v#1", shard: &config.Shard{Index: 1, Count: 2}, eventsURL: slow.URL})
	for _, m := range members {
		waitFor(t, 15*time.Second, m.name+" isolated", func() bool { return metric(t, m.base, "picket_cluster_isolated") == "1" })
	}
	const key = "picket/region/eu1"
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	waitFor(t, 10*time.Second, "the page", func() bool { return f.pd.Count(key, "trigger") >= 1 })
	time.Sleep(3 * time.Second)
	f.plat.ClearFaults()
	waitFor(t, 10*time.Second, "the resolve", func() bool { return f.pd.Count(key, "resolve") >= 1 })
	time.Sleep(2 * time.Second)
	if tr, res := f.pd.Count(key, "trigger"), f.pd.Count(key, "resolve"); tr != 1 || res != 1 {
		t.Errorf("%d triggers and %d resolves from one isolated vantage, want 1 and 1: %s", tr, res, events(f.pd))
	}
	if n := f.pd.Count("picket/isolated/v", "trigger"); n != 1 {
		t.Errorf("vantage v said it was isolated %d times, want once for its two shards", n)
	}
}
