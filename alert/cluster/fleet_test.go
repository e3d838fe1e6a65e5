package cluster

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/hashicorp/memberlist"
)

// startThree runs three members that see each other.
func startThree(t *testing.T, tune func(*Options)) (a, b, c *Cluster) {
	t.Helper()
	a = startTuned(t, "a", nil, tune)
	b = startTuned(t, "b", nil, tune, a)
	c = startTuned(t, "c", nil, tune, a)
	testkit.WaitFor(t, 5*time.Second, "each member to see two live peers", func() bool {
		return len(livePeers(a)) == 2 && len(livePeers(b)) == 2 && len(livePeers(c)) == 2
	})
	return a, b, c
}

func tallyIs(want map[string]int, live int, cs ...*Cluster) func() bool {
	return func() bool {
		for _, c := range cs {
			votes, n := c.Tally()
			if n != live || !maps.Equal(votes, want) {
				return false
			}
		}
		return true
	}
}

func TestTallyAndGenerationFollowVerdictsAndDeaths(t *testing.T) {
	a, b, c := startThree(t, nil)
	a.SetLocal(map[string]bool{"x": true, "y": true, "ok": false})
	b.SetLocal(map[string]bool{"x": true})
	c.SetLocal(map[string]bool{"x": true, "z": true})
	testkit.WaitFor(t, 5*time.Second, "every member to tally x 3, y 1, z 1 of 3 live",
		tallyIs(map[string]int{"x": 3, "y": 1, "z": 1}, 3, a, b, c))
	wantViews := map[string][]string{"a": {"x", "y"}, "b": {"x"}, "c": {"x", "z"}}
	for _, m := range []*Cluster{a, b, c} {
		if got := m.Views(); !maps.EqualFunc(got, wantViews, slices.Equal) {
			t.Errorf("%s: expected views %v, got %v", m.name, wantViews, got)
		}
	}

	// Nothing changes once every queue is empty: the generation stays put through
	// several push-pulls of the same states.
	testkit.WaitFor(t, 5*time.Second, "every broadcast queue to drain", func() bool {
		return a.queue.NumQueued() == 0 && b.queue.NumQueued() == 0 && c.queue.NumQueued() == 0
	})
	g := a.Generation()
	time.Sleep(700 * time.Millisecond)
	if got := a.Generation(); got != g {
		t.Fatalf("expected the generation to stay at %d while nothing changed, got %d", g, got)
	}

	b.SetLocal(map[string]bool{"x": false, "y": true})
	testkit.WaitFor(t, 5*time.Second, "a and c to tally b's change",
		tallyIs(map[string]int{"x": 2, "y": 2, "z": 1}, 3, a, c))
	if a.Generation() == g {
		t.Fatalf("expected a remote verdict change to move the generation")
	}

	g = a.Generation()
	crash(t, c)
	testkit.WaitFor(t, 10*time.Second, "a and b to drop the crashed c from the tally",
		tallyIs(map[string]int{"x": 1, "y": 2}, 2, a, b))
	if a.Generation() == g {
		t.Fatalf("expected a member's death to move the generation")
	}
	if a.IsLive("c") || !a.IsLive("b") || !a.IsLive("a") || a.IsLive("nobody") {
		t.Errorf("a: expected a and b live, c and an unknown member not")
	}
	if got := a.Views(); len(got) != 2 || got["c"] != nil {
		t.Errorf("a: expected views of a and b only, got %v", got)
	}
}

// TestLiveMembersAgree: the members agree on who is live, before and after one crashes
// (the fleet ranks its senders among the live members, alert/fleet.Rank).
func TestLiveMembersAgree(t *testing.T) {
	a, b, c := startThree(t, nil)
	for _, m := range []*Cluster{a, b, c} {
		if peers := livePeers(m); len(peers) != 2 {
			t.Fatalf("%s sees %v live, want the two others", m.name, peers)
		}
	}
	crash(t, c)
	testkit.WaitFor(t, 10*time.Second, "a and b to see c dead", func() bool { return !a.IsLive("c") && !b.IsLive("c") })
	if !a.IsLive("b") || !b.IsLive("a") {
		t.Errorf("a and b should still see each other live: %v, %v", livePeers(a), livePeers(b))
	}
}

func pageIs(key string, want func(Page) bool, cs ...*Cluster) func() bool {
	return func() bool {
		for _, c := range cs {
			if p, ok := c.Page(key); !ok || !want(p) {
				return false
			}
		}
		return true
	}
}

func samePage(key string, cs ...*Cluster) func() bool {
	return func() bool {
		first, ok := cs[0].Page(key)
		return ok && pageIs(key, func(p Page) bool { return p == first }, cs...)()
	}
}

func TestPagesConvergeAndLateConfirmationsChangeNothing(t *testing.T) {
	a, b, c := startThree(t, nil)

	// Two members page the same key at once: all three keep the same one record.
	a.RecordPage("web/login", true)
	b.RecordPage("web/login", false)
	testkit.WaitFor(t, 5*time.Second, "a, b and c to hold the same record of web/login", samePage("web/login", a, b, c))
	if p, _ := c.Page("web/login"); p.By != "a" && p.By != "b" {
		t.Fatalf("expected the record of a or b, got %+v", p)
	}

	// A confirmation spreads.
	a.RecordPage("api/search", true)
	a.ConfirmPage("api/search", true)
	testkit.WaitFor(t, 5*time.Second, "b and c to see a's trigger of api/search confirmed",
		pageIs("api/search", func(p Page) bool { return p.By == "a" && p.Open && p.Confirmed }, b, c))

	// b resolves api/search after a paged it; a's late confirmation of its own trigger
	// changes nothing, here or elsewhere.
	a.RecordPage("api/search", true)
	testkit.WaitFor(t, 5*time.Second, "b to see a's new trigger", pageIs("api/search", func(p Page) bool { return !p.Confirmed }, b))
	b.RecordPage("api/search", false)
	testkit.WaitFor(t, 5*time.Second, "every member to see b's resolve",
		pageIs("api/search", func(p Page) bool { return p.By == "b" && !p.Open }, a, b, c))
	g := a.Generation()
	a.ConfirmPage("api/search", true)
	if p, _ := a.Page("api/search"); p.By != "b" || p.Open || p.Confirmed || a.Generation() != g {
		t.Fatalf("a: expected its late confirmation to leave b's resolve alone, got %+v", p)
	}
	time.Sleep(300 * time.Millisecond) // several gossip rounds
	if !pageIs("api/search", func(p Page) bool { return p.By == "b" && !p.Confirmed }, a, b, c)() {
		t.Fatalf("expected b's unconfirmed resolve everywhere after a's late confirmation")
	}
}

// A member that starts after the records were made, their broadcasts long gone and
// push-pull only at join, learns them from its join state, including the record of a
// member that died meanwhile.
func TestLateJoinerLearnsPagesOfLiveAndDeadMembers(t *testing.T) {
	noPushPull := func(o *Options) { o.PushPullInterval = time.Hour }
	a := startTuned(t, "a", nil, noPushPull)
	b := startTuned(t, "b", nil, noPushPull, a)
	testkit.WaitFor(t, 5*time.Second, "a and b to see each other", func() bool { return len(livePeers(a)) == 1 && len(livePeers(b)) == 1 })
	a.RecordPage("k1", true)
	a.ConfirmPage("k1", true)
	b.RecordPage("k2", false)
	testkit.WaitFor(t, 5*time.Second, "a and b to hold both records", func() bool {
		return samePage("k1", a, b)() && samePage("k2", a, b)()
	})
	testkit.WaitFor(t, 5*time.Second, "the broadcast queues to drain", func() bool { return a.queue.NumQueued() == 0 && b.queue.NumQueued() == 0 })
	crash(t, b)
	testkit.WaitFor(t, 10*time.Second, "a to see b dead", func() bool { return !a.IsLive("b") })

	c := startTuned(t, "c", nil, noPushPull, a)
	testkit.WaitFor(t, 5*time.Second, "c to learn both records from a", func() bool {
		return samePage("k1", a, c)() && samePage("k2", a, c)()
	})
	if p, _ := c.Page("k2"); p.By != "b" || p.Open {
		t.Fatalf("c: expected b's resolve of k2, got %+v", p)
	}
}

// cutTransport loses everything both ways while cut is set, as a pulled cable would.
type cutTransport struct {
	memberlist.NodeAwareTransport
	cut   *atomic.Bool
	relay *relay
}

var errCut = errors.New("cut off by the test")

func cutBy(cut *atomic.Bool) func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	return func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		t := &cutTransport{NodeAwareTransport: inner, cut: cut}
		t.relay = newRelay(inner,
			func(*memberlist.Packet) bool { return !cut.Load() },
			func(conn net.Conn) (net.Conn, bool) { return conn, !cut.Load() })
		return t
	}
}

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.cut.Load() {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *cutTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.cut.Load() {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, addr)
}

func (t *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.cut.Load() {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (t *cutTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.cut.Load() {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}

func (t *cutTransport) PacketCh() <-chan *memberlist.Packet { return t.relay.packets }
func (t *cutTransport) StreamCh() <-chan net.Conn           { return t.relay.streams }

func (t *cutTransport) Shutdown() error {
	err := t.NodeAwareTransport.Shutdown()
	t.relay.close()
	return err
}

func TestCutOffMemberSeesNoPeerAndRejoinsWhenHealed(t *testing.T) {
	var cut atomic.Bool
	a := start(t, "a", nil)
	b := start(t, "b", nil, a)
	c := startTuned(t, "c", nil, func(o *Options) { o.WrapTransport = cutBy(&cut) }, a)
	testkit.WaitFor(t, 5*time.Second, "each member to see two live peers", func() bool {
		return len(livePeers(a)) == 2 && len(livePeers(b)) == 2 && len(livePeers(c)) == 2
	})
	c.SetLocal(map[string]bool{"x": true})
	testkit.WaitFor(t, 5*time.Second, "a and b to tally c's verdict", tallyIs(map[string]int{"x": 1}, 3, a, b))

	cut.Store(true)
	took := testkit.WaitFor(t, 10*time.Second, "c seeing no live peer, a and b seeing c dead", func() bool {
		return len(livePeers(c)) == 0 && !a.IsLive("c") && !b.IsLive("c")
	})
	t.Logf("a cut-off member saw no peer and was dead to the others after %s", took)
	if votes, live := a.Tally(); live != 2 || len(votes) != 0 {
		t.Fatalf("a: expected 2 live and c's verdict gone, got %v of %d", votes, live)
	}
	if _, live := c.Tally(); live != 1 {
		t.Fatalf("c: expected itself alone live, got %d", live)
	}

	cut.Store(false)
	took = testkit.WaitFor(t, 15*time.Second, "the three together again, c's verdict back", func() bool {
		return len(livePeers(c)) == 2 && tallyIs(map[string]int{"x": 1}, 3, a, b, c)()
	})
	t.Logf("the cluster healed %s after the cut was mended", took)
}

func TestStatsCountDatagramsAndStreams(t *testing.T) {
	noPushPull := func(o *Options) { o.PushPullInterval = time.Hour }
	a := startTuned(t, "a", nil, noPushPull)
	// Random ids, so that memberlist's compression of the state saves little.
	rng := rand.New(rand.NewPCG(5, 6))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	failing := map[string]bool{}
	for range 2000 {
		id := make([]byte, 30)
		for i := range id {
			id[i] = letters[rng.IntN(len(letters))]
		}
		failing[string(id)] = true
	}
	a.SetLocal(failing)
	state := uint64(len(a.encodeState()))

	// Joining pulls a's state over a stream; by the time Start returns, a handful of
	// datagrams at most (each at most memberlist's 1,400 bytes) has moved besides.
	b := startTuned(t, "b", nil, noPushPull, a)
	beyondDatagrams := func(bytes, packets uint64) uint64 { return bytes - min(bytes, 1400*packets) }
	if got := b.Stats(); beyondDatagrams(got.ReceivedBytes, got.ReceivedPackets) < state/4 {
		t.Fatalf("b: expected a's %d-byte join state (compressed) counted as received, got %+v", state, got)
	}
	t.Logf("a %d-byte state; right after b joined, b received %+v", state, b.Stats())
	// a counts the stream when its own side of the write is done, which can be a moment
	// after b has read it all and returned from Start: wait for it (bounded).
	testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("a's %d-byte state (compressed) counted as sent", state), func() bool {
		got := a.Stats()
		return beyondDatagrams(got.SentBytes, got.SentPackets) >= state/4
	})

	before := [2]Stats{a.Stats(), b.Stats()}
	testkit.WaitFor(t, 5*time.Second, "each member's counts to grow with probes and gossip", func() bool {
		for i, m := range []*Cluster{a, b} {
			now := m.Stats()
			if now.SentPackets <= before[i].SentPackets || now.ReceivedPackets <= before[i].ReceivedPackets ||
				now.SentBytes <= before[i].SentBytes || now.ReceivedBytes <= before[i].ReceivedBytes {
				return false
			}
		}
		return true
	})
}

func TestStartReportsABindPortInUse(t *testing.T) {
	a := start(t, "a", nil)
	b, err := Start(Options{Name: "b", Bind: a.Addr()})
	if err == nil {
		b.Close()
		t.Fatalf("expected binding %s, a's address, to fail", a.Addr())
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("expected an error saying the address is in use, got %v", err)
	}
}
