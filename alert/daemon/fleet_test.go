package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/probe/probetest"
)

// cuttable wraps a member's gossip transport; while cut, nothing goes out or comes in:
// the member's network to its peers is gone, its network to the platform is not.
type cuttable struct {
	memberlist.NodeAwareTransport
	cut     *atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func newCuttable(inner memberlist.NodeAwareTransport, cut *atomic.Bool) *cuttable {
	c := &cuttable{NodeAwareTransport: inner, cut: cut, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), done: make(chan struct{})}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-c.done:
				return
			case p := <-inner.PacketCh():
				if c.cut.Load() {
					continue
				}
				select {
				case c.packets <- p:
				case <-c.done:
					return
				}
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-c.done:
				return
			case conn := <-inner.StreamCh():
				if c.cut.Load() {
					_ = conn.Close()
					continue
				}
				select {
				case c.streams <- conn:
				case <-c.done:
					_ = conn.Close()
					return
				}
			}
		}
	}()
	return c
}

var errCut = errors.New("test: gossip cut off")

func (c *cuttable) PacketCh() <-chan *memberlist.Packet { return c.packets }
func (c *cuttable) StreamCh() <-chan net.Conn           { return c.streams }

func (c *cuttable) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil // lost on the way, as UDP is
	}
	return c.NodeAwareTransport.WriteTo(b, addr)
}

func (c *cuttable) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NodeAwareTransport.WriteToAddress(b, addr)
}

func (c *cuttable) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (c *cuttable) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}

func (c *cuttable) Shutdown() error {
	err := c.NodeAwareTransport.Shutdown()
	c.once.Do(func() { close(c.done) })
	c.wg.Wait()
	return err
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// member is one in-process daemon of a fleet.
type member struct {
	name string
	base string
	stop func() error
}

// TestPartitionedVantagePagesAloneAndOthersReportItSilent: three vantages; c's gossip is
// cut off. a and b page the region outage once; c, alone for alone_after with a healthy
// self-check, pages on its own evidence and says it is isolated; a or b reports c silent
// once. When the cut heals, c is back, and the recovery is resolved once.
func TestPartitionedVantagePagesAloneAndOthersReportItSilent(t *testing.T) {
	plat, err := probetest.Start(probetest.Options{Regions: []string{"eu1", "us1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plat.Close() })
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	selfCheck, err := net.Listen("tcp", "127.0.0.1:0") // "the internet", as c sees it: reachable
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = selfCheck.Close() })
	dir := t.TempDir()
	names := []string{"a", "b", "c"}
	binds := map[string]string{}
	for _, n := range names {
		binds[n] = freeAddr(t)
	}
	cut := &atomic.Bool{}
	var members []*member
	for _, n := range names {
		var peers []string
		for _, o := range names {
			if o != n {
				peers = append(peers, binds[o])
			}
		}
		cfg := fmt.Sprintf(`vantage: %s
listen: 127.0.0.1:0
state_dir: %s
defaults: {interval: 300ms, timeout: 250ms, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 0s}
regions:
  eu1: {vars: {api: %q}}
  us1: {vars: {api: %q}}
products:
  - name: metrics
    journeys: [{name: query, steps: [{http: {url: "{{.region.api}}/v1/query?q=up"}, expect: {json: {status: ok}}}]}]
  - name: web
    journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]
notifiers:
  pd: {pagerduty: {routing_key: "daemontestroutingkey000000000001", events_url: %q}}
routes:
  - notify: [pd]
self_check: {targets: ["tcp://%s"], interval: 200ms}
cluster: {bind: %s, peers: [%s], alone_after: 2s, takeover_after: 1s, notify: [pd],
  gossip_interval: 50ms, probe_interval: 200ms, push_pull_interval: 1s}
`, n, filepath.Join(dir, "state-"+n), plat.URL("eu1"), plat.URL("us1"), pd.BaseURL(), selfCheck.Addr(), binds[n], strings.Join(peers, ", "))
		path := filepath.Join(dir, n+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		o := Options{ConfigPath: path}
		if n == "c" {
			o.WrapGossip = func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
				return newCuttable(inner, cut)
			}
		}
		members = append(members, startMember(t, n, o))
	}
	a, b, c := members[0], members[1], members[2]
	defer func() {
		for _, m := range members {
			if err := m.stop(); err != nil {
				t.Errorf("%s: %v", m.name, err)
			}
		}
	}()
	for _, m := range members {
		waitFor(t, 15*time.Second, m.name+" to see 3 members alive", func() bool {
			return metric(t, m.base, `picket_cluster_members{state="alive"}`) == "3"
		})
	}

	cut.Store(true)
	for _, m := range []*member{a, b} {
		waitFor(t, 15*time.Second, m.name+" to see c dead", func() bool {
			return metric(t, m.base, `picket_cluster_members{state="dead"}`) == "1"
		})
	}
	waitFor(t, 15*time.Second, "c to be alone", func() bool { return metric(t, c.base, "picket_cluster_alone") == "1" })

	plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	const key = "picket/region/eu1"
	fromFleet := func() int { return countFrom(pd, key, "trigger", "a", "b") }
	waitFor(t, 10*time.Second, "the fleet's page", func() bool { return fromFleet() >= 1 })
	waitFor(t, 10*time.Second, "c's own page", func() bool { return countFrom(pd, key, "trigger", "c") >= 1 })
	waitFor(t, 10*time.Second, "the notice that c is silent", func() bool { return pd.Count("picket/vantage/c", "trigger") >= 1 })
	time.Sleep(2500 * time.Millisecond) // two takeover waits: nothing more may come
	if n := fromFleet(); n != 1 {
		t.Errorf("a and b paged the region %d times, want 1", n)
	}
	if n := countFrom(pd, key, "trigger", "c"); n != 1 {
		t.Errorf("c paged the region %d times, want 1", n)
	}
	for _, ev := range pd.Events() {
		if ev.DedupKey == key && ev.Payload.Source == "c" && !strings.Contains(ev.Payload.Summary, "sent by an isolated vantage") {
			t.Errorf("c's page does not say it is isolated: %q", ev.Payload.Summary)
		}
		if ev.DedupKey == key && ev.Payload.Source != "c" && strings.Contains(ev.Payload.Summary, "isolated") {
			t.Errorf("the fleet's page says isolated: %q", ev.Payload.Summary)
		}
		if ev.DedupKey == "picket/vantage/c" && (ev.Payload.Source == "c" || !strings.Contains(ev.Payload.Summary, "[VANTAGE c] silent since")) {
			t.Errorf("vantage notice from %s: %q", ev.Payload.Source, ev.Payload.Summary)
		}
	}
	if n := pd.Count("picket/vantage/c", "trigger"); n != 1 {
		t.Errorf("c reported silent %d times, want 1", n)
	}
	if n := pd.Count("picket/vantage/a", "trigger") + pd.Count("picket/vantage/b", "trigger"); n != 0 {
		t.Errorf("the isolated vantage reported its peers silent (%d notices)", n)
	}
	if v := metric(t, c.base, "picket_cluster_isolated"); v != "1" {
		t.Errorf("picket_cluster_isolated of c = %q, want 1", v)
	}

	// The cut heals: c rejoins (its reconnect loop), the notice resolves; then the
	// region recovers and the fleet resolves it once.
	cut.Store(false)
	waitFor(t, 30*time.Second, "the notice that c is back", func() bool { return pd.Count("picket/vantage/c", "resolve") >= 1 })
	plat.ClearFaults()
	waitFor(t, 10*time.Second, "the region resolve", func() bool { return pd.Count(key, "resolve") >= 1 })
	time.Sleep(2500 * time.Millisecond)
	if n := pd.Count(key, "resolve"); n != 1 {
		t.Errorf("region resolved %d times, want 1: %+v", n, pd.Events())
	}
}

func startMember(t *testing.T, name string, o Options) *member {
	t.Helper()
	addr := make(chan string, 1)
	o.OnListen = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, o) }()
	select {
	case a := <-addr:
		var once sync.Once
		var err error
		return &member{name: name, base: "http://" + a, stop: func() error {
			once.Do(func() { cancel(); err = <-errc })
			return err
		}}
	case err := <-errc:
		cancel()
		t.Fatalf("%s did not start: %v", name, err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("%s did not listen within 10s", name)
	}
	return nil
}

// metric reads one unlabelled or fully labelled series from /metrics ("" if absent).
func metric(t *testing.T, base, series string) string {
	t.Helper()
	_, m := body(t, base+"/metrics")
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func countFrom(pd *pdtest.Receiver, key, action string, sources ...string) int {
	n := 0
	for _, ev := range pd.Events() {
		if ev.DedupKey != key || ev.Action != action {
			continue
		}
		for _, s := range sources {
			if ev.Payload.Source == s {
				n++
			}
		}
	}
	return n
}
