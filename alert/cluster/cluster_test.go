package cluster

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a real member on a free loopback port with short intervals; it is closed
// when the test ends.
func start(t *testing.T, name string, secret []byte, peers ...*Cluster) *Cluster {
	t.Helper()
	return startTuned(t, name, secret, nil, peers...)
}

// startTuned is start with options changed by tune (nil: none).
func startTuned(t *testing.T, name string, secret []byte, tune func(*Options), peers ...*Cluster) *Cluster {
	t.Helper()
	var addrs []string
	for _, p := range peers {
		addrs = append(addrs, p.Addr())
	}
	logs := &testkit.Buffer{}
	o := Options{
		Name:              name,
		Bind:              "127.0.0.1:0",
		Peers:             addrs,
		Secret:            secret,
		Logger:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		GossipInterval:    20 * time.Millisecond,
		ProbeInterval:     100 * time.Millisecond,
		PushPullInterval:  300 * time.Millisecond,
		ReconnectInterval: 200 * time.Millisecond,
		LeaveTimeout:      time.Second,
	}
	if tune != nil {
		tune(&o)
	}
	c, err := Start(o)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, logs.String())
		}
	})
	return c
}

func livePeers(c *Cluster) []string {
	var names []string
	for _, m := range c.Members() {
		if !m.Self && (m.State == StateAlive || m.State == StateSuspect) {
			names = append(names, m.Name)
		}
	}
	return names
}

func views(target string, cs ...*Cluster) [][2]int {
	var out [][2]int
	for _, c := range cs {
		votes, live := c.Tally()
		out = append(out, [2]int{votes[target], live})
	}
	return out
}

func allView(target string, failing, reporting int, cs ...*Cluster) func() bool {
	return func() bool {
		for _, v := range views(target, cs...) {
			if v != [2]int{failing, reporting} {
				return false
			}
		}
		return true
	}
}

func TestThreeMembersShareVerdicts(t *testing.T) {
	a := start(t, "a", nil)
	b := start(t, "b", nil, a)
	c := start(t, "c", nil, a)
	members := []*Cluster{a, b, c}
	testkit.WaitFor(t, 5*time.Second, "each member to see two live peers", func() bool {
		return len(livePeers(a)) == 2 && len(livePeers(b)) == 2 && len(livePeers(c)) == 2
	})

	began := time.Now()
	a.SetLocal(map[string]bool{"logs/search@eu1": true, "logs/search@us1": false})
	b.SetLocal(map[string]bool{"logs/search@eu1": true})
	c.SetLocal(map[string]bool{"logs/search@eu1": false, "logs/search@us1": false})
	testkit.WaitFor(t, 5*time.Second, "every member to see eu1 down from 2 of 3", allView("logs/search@eu1", 2, 3, members...))
	t.Logf("3 members converged %s after their verdicts were set", time.Since(began))

	for _, m := range members {
		if v := views("logs/search@us1", m)[0]; v != [2]int{0, 3} {
			t.Errorf("%s: expected us1 down from 0 of 3, got %d of %d", m.name, v[0], v[1])
		}
	}

	// A recovery spreads as well.
	b.SetLocal(map[string]bool{"logs/search@eu1": false})
	testkit.WaitFor(t, 5*time.Second, "every member to see eu1 down from 1 of 3", allView("logs/search@eu1", 1, 3, members...))

	// A member that leaves no longer counts; its firing verdict goes with it.
	b.SetLocal(map[string]bool{"logs/search@eu1": true})
	testkit.WaitFor(t, 5*time.Second, "eu1 down from 2 of 3 again", allView("logs/search@eu1", 2, 3, members...))
	if err := a.Close(); err != nil {
		t.Fatalf("close a: %v", err)
	}
	testkit.WaitFor(t, 5*time.Second, "b and c to see eu1 down from 1 of 2", allView("logs/search@eu1", 1, 2, b, c))
	for _, m := range b.Members() {
		if m.Name == "a" && m.State != StateLeft {
			t.Errorf("b: expected a to have left, got %q", m.State)
		}
	}
}

func TestEncryptedClusterRejectsWrongSecret(t *testing.T) {
	secret := []byte("0123456789abcdef")
	a := start(t, "a", secret)
	b := start(t, "b", secret, a)
	testkit.WaitFor(t, 5*time.Second, "a and b to see each other", func() bool {
		return len(livePeers(a)) == 1 && len(livePeers(b)) == 1
	})
	b.SetLocal(map[string]bool{"web/login@eu1": true})
	testkit.WaitFor(t, 5*time.Second, "a to see b's verdict", allView("web/login@eu1", 1, 2, a))

	intruders := map[string][]byte{
		"wrong": []byte("fedcba9876543210"),
		"plain": nil,
	}
	for name, key := range intruders {
		t.Run(name, func(t *testing.T) {
			x := start(t, name, key, a)
			x.SetLocal(map[string]bool{"web/login@eu1": true})
			// Several probe, push-pull and reconnect rounds.
			time.Sleep(time.Second)
			if peers := livePeers(x); len(peers) != 0 {
				t.Errorf("%s: expected to see no live peer, sees %v", name, peers)
			}
			for _, m := range []*Cluster{a, b} {
				if peers := livePeers(m); len(peers) != 1 {
					t.Errorf("%s: expected only one peer, got %v", m.name, peers)
				}
			}
			if v := views("web/login@eu1", a)[0]; v != [2]int{1, 2} {
				t.Errorf("a: expected the intruder's verdict ignored, (1, 2), got %v", v)
			}
		})
	}
}

func TestLivePeersComeAndGo(t *testing.T) {
	a := start(t, "a", nil)
	if peers := livePeers(a); len(peers) != 0 {
		t.Fatalf("a single member: expected no live peer, got %v", peers)
	}
	if v := views("x", a)[0]; v != [2]int{0, 1} {
		t.Fatalf("alone: expected (0, 1), got %v", v)
	}
	a.SetLocal(map[string]bool{"x": true})
	if v := views("x", a)[0]; v != [2]int{1, 1} {
		t.Fatalf("alone: expected x down from 1 of 1, got %v", v)
	}

	b := start(t, "b", nil, a)
	testkit.WaitFor(t, 5*time.Second, "a to see b live once b joined", func() bool { return a.IsLive("b") })
	if err := b.Close(); err != nil {
		t.Fatalf("close b: %v", err)
	}
	testkit.WaitFor(t, 5*time.Second, "a to see no live peer once b left", func() bool { return len(livePeers(a)) == 0 })
}

func TestStartRejectsBadOptions(t *testing.T) {
	cases := map[string]struct {
		o    Options
		want string
	}{
		"no name":      {Options{Bind: "127.0.0.1:0"}, "expected a member name"},
		"short secret": {Options{Name: "a", Bind: "127.0.0.1:0", Secret: []byte("short")}, "expected 16, 24 or 32 bytes, got 5"},
		"bad bind":     {Options{Name: "a", Bind: "127.0.0.1"}, "expected host:port"},
		"bad port":     {Options{Name: "a", Bind: "127.0.0.1:99999"}, "expected a port"},
		"nil transport": {Options{Name: "a", Bind: "127.0.0.1:0", WrapTransport: func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport { return nil }},
			"expected a transport, got nil"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := Start(tc.o)
			if err == nil {
				c.Close()
				t.Fatalf("expected an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("expected an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// crash stops a member without leaving, as a killed process or a cut cable would.
func crash(t *testing.T, c *Cluster) {
	t.Helper()
	c.closeOnce.Do(func() {
		close(c.stop)
		c.done.Wait()
		if err := c.ml.Shutdown(); err != nil {
			t.Errorf("shut down %s: %v", c.name, err)
		}
	})
}

func TestCrashedMemberIsDeadAndDropsOut(t *testing.T) {
	a := start(t, "a", nil)
	b := start(t, "b", nil, a)
	c := start(t, "c", nil, a)
	testkit.WaitFor(t, 5*time.Second, "a to see two live peers", func() bool { return len(livePeers(a)) == 2 })
	c.SetLocal(map[string]bool{"metrics/query@us1": true})
	testkit.WaitFor(t, 5*time.Second, "a and b to see c's verdict", allView("metrics/query@us1", 1, 3, a, b))

	crashed := time.Now()
	crash(t, c)
	testkit.WaitFor(t, 10*time.Second, "a and b to drop the crashed c", allView("metrics/query@us1", 0, 2, a, b))
	t.Logf("a crashed member dropped out after %s", time.Since(crashed))
	for _, m := range a.Members() {
		if m.Name != "c" {
			continue
		}
		if m.State != StateDead {
			t.Errorf("a: expected c dead, got %q", m.State)
		}
		if m.LastHeard.After(crashed) || time.Since(m.LastHeard) > 5*time.Second {
			t.Errorf("a: expected c last heard shortly before the crash at %s, got %s", crashed, m.LastHeard)
		}
	}
}

// With push-pull out of the picture, verdict changes travel by broadcast alone, and a late
// joiner learns third members' verdicts from the one state it pulls when joining.
func TestBroadcastAndJoinStateEachSuffice(t *testing.T) {
	noPushPull := func(o *Options) { o.PushPullInterval = time.Hour }
	a := startTuned(t, "a", nil, noPushPull)
	c := startTuned(t, "c", nil, noPushPull, a)
	testkit.WaitFor(t, 5*time.Second, "a and c to see each other", func() bool { return len(livePeers(a)) == 1 && len(livePeers(c)) == 1 })

	c.SetLocal(map[string]bool{"web/checkout@eu1": true})
	took := testkit.WaitFor(t, 5*time.Second, "a to see c's verdict by broadcast", allView("web/checkout@eu1", 1, 2, a))
	t.Logf("one change reached a peer by broadcast in %s", took)
	testkit.WaitFor(t, 5*time.Second, "c's broadcast queue to drain", func() bool { return c.queue.NumQueued() == 0 && a.queue.NumQueued() == 0 })

	b := startTuned(t, "b", nil, noPushPull, a)
	testkit.WaitFor(t, 5*time.Second, "b to see c's verdict, relayed by a on join", allView("web/checkout@eu1", 1, 3, b))
}
