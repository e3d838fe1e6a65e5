package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/hashicorp/memberlist"

	"github.com/picket-dev/picket/alert/cluster"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/probetest"
)

// The fleet's rules are scripted in the simulator (alert/sim/fleet_rules_test.go, in
// virtual time, named after the tests that were here). What stays needs real memberlist
// daemons: the partition and takeover end to end, the [VANTAGE x] and [ISOLATED x]
// notices (sent by checkMembers, not the engine) and shards: the simulator models neither.

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
		forwardUnlessCut(inner.PacketCh(), c.packets, cut, c.done, func(*memberlist.Packet) {})
	}()
	go func() {
		defer c.wg.Done()
		forwardUnlessCut(inner.StreamCh(), c.streams, cut, c.done, func(conn net.Conn) { _ = conn.Close() })
	}()
	return c
}

// forwardUnlessCut passes what comes in on to out until done, dropping (with drop) what
// comes in while cut is set or cannot be passed on before done.
func forwardUnlessCut[T any](in <-chan T, out chan<- T, cut *atomic.Bool, done <-chan struct{}, drop func(T)) {
	for {
		select {
		case <-done:
			return
		case v := <-in:
			if cut.Load() {
				drop(v)
				continue
			}
			select {
			case out <- v:
			case <-done:
				drop(v)
				return
			}
		}
	}
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

// member is one in-process daemon of a fleet.
type member struct {
	name string
	base string
	stop func() error
}

// inProcessFleet starts one daemon per name in this process, gossiping on loopback;
// eventsURL and wrap give each member its receiver and transport (nil: the defaults).
type inProcessFleet struct {
	plat      *probetest.Platform
	pd        *pdtest.Receiver
	selfCheck string // tcp:// target that answers: "the internet" is reachable
	dir       string
}

func newInProcessFleet(t *testing.T) *inProcessFleet {
	t.Helper()
	f := newFixtureOn(t, probetest.Options{Regions: []string{"eu1", "us1"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return &inProcessFleet{plat: f.plat, pd: f.pd, selfCheck: ln.Addr().String(), dir: f.dir}
}

type memberSpec struct {
	name      string
	eventsURL string // "": the fleet's receiver
	wrap      WrapGossip
	shard     *config.Shard // set: name is "vantage#index"
}

func (f *inProcessFleet) start(t *testing.T, cluster string, specs ...memberSpec) []*member {
	t.Helper()
	binds := map[string]string{}
	var held []net.Listener // held until all are chosen: no port is handed out twice
	for _, s := range specs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		binds[s.name] = ln.Addr().String()
	}
	for _, ln := range held {
		_ = ln.Close()
	}
	var members []*member
	t.Cleanup(func() {
		for _, m := range members {
			if err := m.stop(); err != nil {
				t.Errorf("%s: %v", m.name, err)
			}
		}
	})
	for _, s := range specs {
		var peers []string
		for _, o := range specs {
			if o.name != s.name {
				peers = append(peers, binds[o.name])
			}
		}
		events := cmp.Or(s.eventsURL, f.pd.BaseURL())
		vantage, _, _ := strings.Cut(s.name, "#")
		cfg := testConfig(vantage, filepath.Join(f.dir, "state-"+s.name), f.plat, events) + fmt.Sprintf(`routes:
  - notify: [pd]
self_check: {targets: ["tcp://%s"], interval: 200ms}
cluster: {bind: %s, peers: [%s], insecure: true, notify: [pd], gossip_interval: 50ms, probe_interval: 200ms, push_pull_interval: 1s, %s}
`, f.selfCheck, binds[s.name], strings.Join(peers, ", "), cluster)
		path := filepath.Join(f.dir, s.name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		members = append(members, startMember(t, s.name, Options{ConfigPath: path, WrapGossip: s.wrap, Shard: s.shard}))
	}
	for _, m := range members {
		testkit.WaitFor(t, 15*time.Second, fmt.Sprintf("%s to see %d members alive", m.name, len(specs)), func() bool {
			return metric(t, m.base, `picket_cluster_members{state="alive"}`) == strconv.Itoa(len(specs))
		})
	}
	return members
}

// TestPartitionedVantagePagesAloneAndOthersReportItSilent: three vantages; c's gossip is
// cut off. a and b page the region outage once; c, alone for alone_after with a healthy
// self-check, pages on its own evidence and says it is isolated; a or b reports c silent
// once. When the cut heals, c is back, and the recovery is resolved once.
func TestPartitionedVantagePagesAloneAndOthersReportItSilent(t *testing.T) {
	f := newInProcessFleet(t)
	plat, pd := f.plat, f.pd
	cut := &atomic.Bool{}
	members := f.start(t, "alone_after: 2s, takeover_after: 1s", memberSpec{name: "a"}, memberSpec{name: "b"},
		memberSpec{name: "c", wrap: func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			return newCuttable(inner, cut)
		}})
	a, b, c := members[0], members[1], members[2]
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() { // when each notice came tells which wait was too short
			t.Logf("the receiver got:%s", eventsSince(pd, start))
		}
	})
	cut.Store(true)
	for _, m := range []*member{a, b} {
		testkit.WaitFor(t, 15*time.Second, m.name+" to see c dead", func() bool {
			return metric(t, m.base, `picket_cluster_members{state="dead"}`) == "1"
		})
	}
	testkit.WaitFor(t, 15*time.Second, "c to be alone", func() bool { return metric(t, c.base, "picket_cluster_alone") == "1" })

	plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	const key = "picket/region/eu1"
	fromFleet := func() int { return countFrom(pd, key, "trigger", "a", "b") }
	testkit.WaitFor(t, 10*time.Second, "the fleet's page", func() bool { return fromFleet() >= 1 })
	testkit.WaitFor(t, 10*time.Second, "c's own page", func() bool { return countFrom(pd, key, "trigger", "c") >= 1 })
	testkit.WaitFor(t, 10*time.Second, "the notice that c is silent", func() bool { return pd.Count("picket/vantage/c", "trigger") >= 1 })
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
	testkit.WaitFor(t, 5*time.Second, "c's notice that it is isolated", func() bool { return pd.Count("picket/isolated/c", "trigger") >= 1 })

	// The cut heals: c rejoins (its reconnect loop), the notice resolves; then the
	// region recovers and the fleet resolves it once.
	cut.Store(false)
	testkit.WaitFor(t, 30*time.Second, "the notice that c is back", func() bool { return pd.Count("picket/vantage/c", "resolve") >= 1 })
	testkit.WaitFor(t, 10*time.Second, "c's notice that it hears the fleet again", func() bool { return pd.Count("picket/isolated/c", "resolve") >= 1 })
	plat.ClearFaults()
	testkit.WaitFor(t, 10*time.Second, "the region resolve", func() bool { return pd.Count(key, "resolve") >= 1 })
	time.Sleep(2500 * time.Millisecond)
	if n := pd.Count(key, "resolve"); n != 1 {
		t.Errorf("region resolved %d times, want 1: %s", n, events(pd))
	}
	for _, k := range []string{"picket/isolated/c", "picket/vantage/c"} {
		if tr, res := pd.Count(k, "trigger"), pd.Count(k, "resolve"); tr != 1 || res != 1 {
			t.Errorf("%s: %d triggers and %d resolves, want 1 and 1", k, tr, res)
		}
	}
	for _, k := range []string{"picket/isolated/a", "picket/isolated/b"} {
		if n := pd.Count(k, "trigger"); n != 0 {
			t.Errorf("%s: a vantage of the majority said it was isolated", k)
		}
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

// TestSenderThatCannotDeliverIsTakenOver: the first sender's paging service fails (its
// receiver answers 500 forever), so its page is never confirmed; the second vantage
// sends after takeover_after, once, and the resolve likewise.
func TestSenderThatCannotDeliverIsTakenOver(t *testing.T) {
	f := newInProcessFleet(t)
	broken, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broken.Close() })
	broken.SetFault(pdtest.Fault{Status: 500})
	const key = "picket/region/eu1"
	// The sender for a key is the member first by FNV-1a of key+"\x00"+name (the
	// cluster's documented rendezvous order); name the broken one so that it is first.
	first, second := "x", "y"
	if rendezvous(key, first) > rendezvous(key, second) {
		first, second = second, first
	}
	members := f.start(t, "takeover_after: 1s", memberSpec{name: first, eventsURL: broken.BaseURL()}, memberSpec{name: second})
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	testkit.WaitFor(t, 10*time.Second, "the first sender to try", func() bool { return broken.Requests() >= 1 })
	testkit.WaitFor(t, 10*time.Second, "the takeover page", func() bool { return f.pd.Count(key, "trigger") >= 1 })
	f.plat.ClearFaults()
	testkit.WaitFor(t, 10*time.Second, "the takeover resolve", func() bool { return f.pd.Count(key, "resolve") >= 1 })
	time.Sleep(2500 * time.Millisecond)
	// Resolves carry no source: only the second vantage reaches this receiver anyway.
	if tr, res := countFrom(f.pd, key, "trigger", second), f.pd.Count(key, "resolve"); tr != 1 || res != 1 {
		t.Errorf("%s sent %d triggers and %d resolves, want 1 and 1: %s", second, tr, res, events(f.pd))
	}
	if n := f.pd.Count(key, "trigger"); n != 1 {
		t.Errorf("%d triggers reached the receiver, want 1: %s", n, events(f.pd))
	}
	_, timeline := body(t, members[1].base+"/api/v1/incidents/picket~region~eu1/timeline")
	if !strings.Contains(timeline, "takeover") {
		t.Errorf("%s's timeline does not record the takeover:\n%s", second, timeline)
	}
}

func rendezvous(key, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key + "\x00" + name))
	return h.Sum64()
}

// events lists what a receiver accepted, one short line each.
func events(pd *pdtest.Receiver) string {
	var b strings.Builder
	for _, ev := range pd.Events() {
		fmt.Fprintf(&b, "\n  %s %s from %q: %s", ev.Action, ev.DedupKey, ev.Payload.Source, ev.Payload.Summary)
	}
	return b.String()
}

func cutter(cut *atomic.Bool) WrapGossip {
	return func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return newCuttable(inner, cut)
	}
}

// TestBackNoticeWhenSubjectRanksFirst: the vantage that comes back may rank first for
// its own notice's key; the notice that it is back is still sent, once.
func TestBackNoticeWhenSubjectRanksFirst(t *testing.T) {
	names := []string{"a", "b", "c"}
	subject := ""
	for _, n := range names { // the one that ranks first for its own key
		first := true
		for _, o := range names {
			if o != n && rendezvous("picket/vantage/"+n, o) < rendezvous("picket/vantage/"+n, n) {
				first = false
			}
		}
		if first {
			subject = n
			break
		}
	}
	if subject == "" {
		t.Skip("no name ranks first for its own key")
	}
	f := newInProcessFleet(t)
	cut := &atomic.Bool{}
	var specs []memberSpec
	for _, n := range names {
		spec := memberSpec{name: n}
		if n == subject {
			spec.wrap = cutter(cut)
		}
		specs = append(specs, spec)
	}
	f.start(t, "alone_after: 2s, takeover_after: 1s", specs...)
	key := "picket/vantage/" + subject
	cut.Store(true)
	testkit.WaitFor(t, 15*time.Second, "the notice that "+subject+" is silent", func() bool { return f.pd.Count(key, "trigger") >= 1 })
	cut.Store(false)
	testkit.WaitFor(t, 20*time.Second, "the notice that "+subject+" is back", func() bool { return f.pd.Count(key, "resolve") >= 1 })
	time.Sleep(1500 * time.Millisecond)
	if tr, res := f.pd.Count(key, "trigger"), f.pd.Count(key, "resolve"); tr != 1 || res != 1 {
		t.Errorf("%s: %d silent and %d back notices, want 1 and 1: %s", subject, tr, res, events(f.pd))
	}
}

// TestShardsOfOneVantageAreStillAlone: the shards of a vantage reach each other but no
// other vantage: that is alone (they must wait alone_after, not page at once with a
// quorum of one vantage); a member of another vantage ends it. Shards count once.
func TestShardsOfOneVantageAreStillAlone(t *testing.T) {
	start := func(name string, peers ...*cluster.Cluster) *cluster.Cluster {
		var addrs []string
		for _, p := range peers {
			addrs = append(addrs, p.Addr())
		}
		c, err := cluster.Start(cluster.Options{Name: name, Bind: "127.0.0.1:0", Peers: addrs,
			GossipInterval: 50 * time.Millisecond, ProbeInterval: 200 * time.Millisecond, PushPullInterval: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	s0 := start("v#0")
	s1 := start("v#1", s0)
	f := newFleet(s0, "v", nil)
	testkit.WaitFor(t, 10*time.Second, "the shards to see each other", func() bool { return s0.IsLive("v#1") && s1.IsLive("v#0") })
	if alone, _ := f.Alone(); !alone {
		t.Error("two shards of one vantage are not alone")
	}
	if n := f.LiveVantages(); n != 1 {
		t.Errorf("live vantages %d, want 1", n)
	}
	start("w", s0)
	testkit.WaitFor(t, 10*time.Second, "w to count", func() bool { return f.LiveVantages() == 2 })
	if alone, _ := f.Alone(); alone {
		t.Error("alone with another vantage live")
	}
}

// eventsSince lists what a receiver accepted, each with when it came after start.
func eventsSince(pd *pdtest.Receiver, start time.Time) string {
	var b strings.Builder
	for _, ev := range pd.Events() {
		fmt.Fprintf(&b, "\n  +%v %s %s from %q: %s", ev.Received.Sub(start).Round(time.Millisecond), ev.Action, ev.DedupKey, ev.Payload.Source, ev.Payload.Summary)
	}
	return b.String()
}

// TestPeerDeadForLessThanAloneAfterIsNotReportedSilent: a cut-off vantage's view loses
// its peers one by one (memberlist declares each dead at its own time); in between it
// is not alone yet and must not report the first one lost as silent. So no vantage
// reports a peer silent before the peer has been dead for alone_after (while its
// verdicts still count); after that, one does.
func TestPeerDeadForLessThanAloneAfterIsNotReportedSilent(t *testing.T) {
	const retain = 3 * time.Second
	cut := &atomic.Bool{}
	start := func(name string, wrap WrapGossip, peers ...*cluster.Cluster) *cluster.Cluster {
		var addrs []string
		for _, p := range peers {
			addrs = append(addrs, p.Addr())
		}
		c, err := cluster.Start(cluster.Options{Name: name, Bind: "127.0.0.1:0", Peers: addrs, Retain: retain, WrapTransport: wrap,
			GossipInterval: 50 * time.Millisecond, ProbeInterval: 200 * time.Millisecond, PushPullInterval: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	x := start("x", nil)
	y := start("y", nil, x)
	start("z", cutter(cut), x, y)
	var watchers []*daemon
	for _, c := range []*cluster.Cluster{x, y} {
		watchers = append(watchers, &daemon{log: slog.New(slog.DiscardHandler), cluster: c, fleet: newFleet(c, c.Name(), nil),
			cfg: &config.Config{Vantage: c.Name(), Cluster: &config.Cluster{Member: c.Name(), AloneAfter: retain}}})
	}
	testkit.WaitFor(t, 10*time.Second, "x and y to hear all, and each other's verdicts", func() bool {
		return x.IsLive("z") && y.IsLive("z") && x.Reported("y") && y.Reported("x")
	})
	cut.Store(true)
	testkit.WaitFor(t, 15*time.Second, "x and y to see z dead", func() bool { return !x.IsLive("z") && !y.IsLive("z") })
	reported := func() bool {
		for _, d := range watchers {
			d.checkMembers()
		}
		p, ok := x.Page("picket/vantage/z")
		q, ok2 := y.Page("picket/vantage/z")
		return (ok && p.Open) || (ok2 && q.Open)
	}
	if reported() {
		t.Fatal("z was reported silent as soon as it was declared dead, before alone_after")
	}
	testkit.WaitFor(t, retain+5*time.Second, "the notice that z is silent, after alone_after", reported)
}
