package daemon

// A fleet test from the second review: it failed on the code before its fix. (The
// others moved to alert/sim/fleet_rules_test.go; the simulator has no shards.)

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/probetest"
)

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
		testkit.WaitFor(t, 15*time.Second, m.name+" isolated", func() bool { return metric(t, m.base, "picket_cluster_isolated") == "1" })
	}
	const key = "picket/region/eu1"
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	testkit.WaitFor(t, 10*time.Second, "the page", func() bool { return f.pd.Count(key, "trigger") >= 1 })
	time.Sleep(3 * time.Second)
	f.plat.ClearFaults()
	testkit.WaitFor(t, 10*time.Second, "the resolve", func() bool { return f.pd.Count(key, "resolve") >= 1 })
	time.Sleep(2 * time.Second)
	if tr, res := f.pd.Count(key, "trigger"), f.pd.Count(key, "resolve"); tr != 1 || res != 1 {
		t.Errorf("%d triggers and %d resolves from one isolated vantage, want 1 and 1: %s", tr, res, events(f.pd))
	}
	if n := f.pd.Count("picket/isolated/v", "trigger"); n != 1 {
		t.Errorf("vantage v said it was isolated %d times, want once for its two shards", n)
	}
}
