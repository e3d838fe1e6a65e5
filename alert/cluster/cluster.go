// Package cluster lets the vantages of a fleet see each other and share their verdicts
// per target, on hashicorp/memberlist (the gossip layer under Alertmanager, Consul and
// Serf). Each vantage gossips which targets it sees firing; every vantage can then ask how
// many live vantages agree, and whether it is alone.
//
// Membership, failure detection and encryption are memberlist's. Verdicts travel two
// ways: each change is broadcast (and relayed) as a small message through memberlist's
// transmit-limited queue, and memberlist's periodic push-pull exchanges full snapshots as
// a backstop for lost broadcasts and for members that join late.
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Options configure one member.
type Options struct {
	Name      string   // the vantage; unique per member
	Bind      string   // host:port; port 0 picks a free one (see Addr)
	Advertise string   // host:port others reach us at; empty: derived from Bind
	Peers     []string // host:port of other members to join
	Secret    []byte   // 16, 24 or 32 bytes: gossip is encrypted (AES); nil: plaintext
	Logger    *slog.Logger

	// Zero values keep memberlist's LAN defaults (gossip 200ms, probe 1s, push-pull 30s).
	GossipInterval   time.Duration
	ProbeInterval    time.Duration
	PushPullInterval time.Duration
	// ReconnectInterval is how often configured peers that are not live are joined
	// again, so that a healed partition heals the cluster too (default 10s).
	ReconnectInterval time.Duration
	// LeaveTimeout bounds how long Close waits for the leave message to go out
	// (default 2s).
	LeaveTimeout time.Duration
}

// Member states.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect" // alive for memberlist, but not heard from for a while
	StateDead    = "dead"
	StateLeft    = "left"
)

// Member is one vantage as this member sees it.
type Member struct {
	Name      string
	Addr      string
	State     string
	LastHeard time.Time
	Self      bool
}

// Cluster is this vantage's membership of the fleet.
type Cluster struct {
	name     string
	logger   *slog.Logger
	ml       *memberlist.Memberlist
	queue    *memberlist.TransmitLimitedQueue
	peers    []string
	probe    time.Duration
	leaveMax time.Duration

	mu         sync.Mutex
	seq        uint64             // our version counter
	local      *record            // our verdicts
	records    map[string]*record // other members' verdicts, by member name
	members    map[string]*memberInfo
	aloneSince time.Time // zero while some peer is live

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type memberInfo struct {
	addr      string
	state     string
	lastHeard time.Time
}

// Start creates the member and joins the peers. Peers that cannot be reached are logged
// and joined again later: vantages start in any order.
func Start(o Options) (*Cluster, error) {
	conf, err := memberlistConfig(o)
	if err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := time.Now()
	seq := uint64(now.UnixMicro()) // a restarted member outranks its previous process
	c := &Cluster{
		name:       o.Name,
		logger:     logger,
		peers:      append([]string(nil), o.Peers...),
		probe:      conf.ProbeInterval,
		leaveMax:   durationOr(o.LeaveTimeout, 2*time.Second),
		seq:        seq,
		local:      newRecord(seq),
		records:    make(map[string]*record),
		members:    make(map[string]*memberInfo),
		aloneSince: now,
		stop:       make(chan struct{}),
	}
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numLive, RetransmitMult: conf.RetransmitMult}
	d := delegate{c: c}
	conf.Delegate, conf.Events, conf.Ping = d, d, d
	conf.Logger = newStdLogger(logger.With("component", "memberlist"))
	c.ml, err = memberlist.Create(conf)
	if err != nil {
		return nil, fmt.Errorf("start cluster member %q on %s: %w", o.Name, o.Bind, err)
	}
	c.join()
	c.done.Add(1)
	go c.reconnect(durationOr(o.ReconnectInterval, 10*time.Second))
	return c, nil
}

func memberlistConfig(o Options) (*memberlist.Config, error) {
	if o.Name == "" {
		return nil, errors.New("cluster: expected a member name, got none")
	}
	switch len(o.Secret) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("cluster secret: expected 16, 24 or 32 bytes, got %d", len(o.Secret))
	}
	conf := memberlist.DefaultLANConfig()
	conf.Name = o.Name
	host, port, err := splitHostPort(o.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster bind: %w", err)
	}
	conf.BindAddr, conf.BindPort = host, port
	conf.AdvertisePort = port
	if o.Advertise != "" {
		if conf.AdvertiseAddr, conf.AdvertisePort, err = splitHostPort(o.Advertise); err != nil {
			return nil, fmt.Errorf("cluster advertise: %w", err)
		}
	}
	if o.Secret != nil {
		conf.SecretKey = append([]byte(nil), o.Secret...)
	}
	tuneIntervals(conf, o)
	return conf, nil
}

// tuneIntervals applies shorter intervals, keeping memberlist's timeouts below them.
func tuneIntervals(conf *memberlist.Config, o Options) {
	if o.GossipInterval > 0 {
		conf.GossipInterval = o.GossipInterval
	}
	if o.ProbeInterval > 0 {
		conf.ProbeInterval = o.ProbeInterval
		conf.ProbeTimeout = min(conf.ProbeTimeout, o.ProbeInterval/2)
	}
	if o.PushPullInterval > 0 {
		conf.PushPullInterval = o.PushPullInterval
	}
}

func splitHostPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("expected host:port, got %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("expected a port 0-65535 in %q, got %q", hostport, p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, int(port), nil
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Addr is the host:port this member gossips on (useful with port 0).
func (c *Cluster) Addr() string {
	return c.ml.LocalNode().Address()
}

// Close leaves the cluster (waiting at most LeaveTimeout for the leave message to go
// out) and stops every goroutine. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.done.Wait()
		// Queued before memberlist's own leave message, so that it rides the same
		// gossip rounds that Leave waits for.
		c.queue.QueueBroadcast(&broadcast{name: "bye\x00" + c.name, msg: encodeBye(bye{member: c.name, version: c.sequence()})})
		leaveErr := c.ml.Leave(c.leaveMax)
		if leaveErr != nil {
			leaveErr = fmt.Errorf("leave cluster within %s: %w", c.leaveMax, leaveErr)
		}
		c.closeErr = errors.Join(leaveErr, c.ml.Shutdown())
	})
	return c.closeErr
}

// join contacts the configured peers; failures are only logged, reconnect retries.
func (c *Cluster) join() {
	if len(c.peers) == 0 {
		return
	}
	n, err := c.ml.Join(c.peers)
	if err != nil {
		c.logger.Warn("cluster: could not join peers", "peers", c.peers, "reached", n, "err", err)
	}
}

// reconnect joins the configured peers again while fewer than them are live.
func (c *Cluster) reconnect(every time.Duration) {
	defer c.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if c.numLive()-1 < len(c.peers) {
				c.join()
			}
		}
	}
}

// SetLocal sets this vantage's verdict per target id (true: firing) and gossips what
// changed. Targets absent from the map count as not firing.
func (c *Cluster) SetLocal(failing map[string]bool) {
	changes := c.setLocal(failing)
	for _, ch := range changes {
		c.queue.QueueBroadcast(newBroadcast(ch.member, ch.target, encodeDelta(ch)))
	}
}

func (c *Cluster) setLocal(failing map[string]bool) []delta {
	c.mu.Lock()
	defer c.mu.Unlock()
	var changed []string
	for t := range c.local.entries {
		if !failing[t] {
			changed = append(changed, t)
		}
	}
	for t, f := range failing {
		if _, was := c.local.entries[t]; f && !was {
			changed = append(changed, t)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	c.seq++
	deltas := make([]delta, 0, len(changed))
	for _, t := range changed {
		v := verdict{version: c.seq, firing: failing[t]}
		if v.firing {
			c.local.entries[t] = v
		} else {
			delete(c.local.entries, t)
		}
		deltas = append(deltas, delta{member: c.name, target: t, verdict: v})
	}
	c.local.floor = c.seq
	return deltas
}

// View returns how many live vantages (this one included) say the target fires, and how
// many live vantages have told us their verdicts at all. A vantage reports every target
// it has verdicts for: the wire carries only firing ids, so a vantage that does not
// probe a target counts as reporting it ok.
func (c *Cluster) View(target string) (failing, reporting int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reporting = 1
	if c.local.firing(target) {
		failing = 1
	}
	for name, m := range c.members {
		r := c.records[name]
		if r == nil || !live(m.state) {
			continue
		}
		reporting++
		if r.firing(target) {
			failing++
		}
	}
	return failing, reporting
}

// Failing reports whether at least quorum live vantages say the target fires; quorum <= 0
// means a majority of the live members (at least 1).
func (c *Cluster) Failing(target string, quorum int) bool {
	if quorum <= 0 {
		quorum = c.numLive()/2 + 1
	}
	failing, _ := c.View(target)
	return failing >= quorum
}

// Alone reports whether no peer is live, and since how long.
func (c *Cluster) Alone() (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aloneSince.IsZero() {
		return false, 0
	}
	return true, time.Since(c.aloneSince)
}

// Members lists every member this one has known, itself first, then the others by name.
// A member alive for memberlist that has not
// answered a probe for three probe rounds is reported suspect.
func (c *Cluster) Members() []Member {
	self := Member{Name: c.name, Addr: c.Addr(), State: StateAlive, LastHeard: time.Now(), Self: true}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []Member{self}
	suspectAfter := 3 * c.probe * time.Duration(max(1, c.livePeersLocked()))
	for name, m := range c.members {
		state := m.state
		if state == StateAlive && time.Since(m.lastHeard) > suspectAfter {
			state = StateSuspect
		}
		out = append(out, Member{Name: name, Addr: m.addr, State: state, LastHeard: m.lastHeard})
	}
	slices.SortFunc(out[1:], func(x, y Member) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func live(state string) bool { return state == StateAlive }

func (c *Cluster) numLive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.livePeersLocked() + 1
}

func (c *Cluster) livePeersLocked() int {
	n := 0
	for _, m := range c.members {
		if live(m.state) {
			n++
		}
	}
	return n
}

func (c *Cluster) memberAlive(name, addr string) {
	if name == c.name {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members[name] = &memberInfo{addr: addr, state: StateAlive, lastHeard: time.Now()}
	c.aloneSince = time.Time{}
}

func (c *Cluster) sequence() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// memberLeaving marks a member that announced its leave; it reports whether that was news.
func (c *Cluster) memberLeaving(b bye) bool {
	if b.member == c.name {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[b.member]
	if !ok || m.state == StateLeft {
		return false
	}
	if r := c.records[b.member]; r != nil && r.floor > b.version {
		return false // from a previous process of a member that has restarted since
	}
	c.goneLocked(b.member, StateLeft)
	return true
}

// memberGone drops a dead or departed member's verdicts: they no longer count, and a
// member that comes back sends fresh ones.
func (c *Cluster) memberGone(name, state string) {
	if name == c.name {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goneLocked(name, state)
}

func (c *Cluster) goneLocked(name, state string) {
	if m, ok := c.members[name]; ok && m.state != StateLeft {
		m.state = state // "left" stays: memberlist reports a departure as a leave event too
	}
	delete(c.records, name)
	if c.livePeersLocked() == 0 && c.aloneSince.IsZero() {
		c.aloneSince = time.Now()
	}
}

func (c *Cluster) heard(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.members[name]; ok && live(m.state) {
		m.lastHeard = time.Now()
	}
}

// applyDelta merges one broadcast change and reports whether it was news.
func (c *Cluster) applyDelta(d delta) bool {
	if d.member == c.name {
		return false // our own verdicts are authoritative here
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.members[d.member]; ok && !live(m.state) {
		return false // relayed late, from a member we know is gone
	}
	r := c.records[d.member]
	if r == nil {
		r = newRecord(0)
		c.records[d.member] = r
	}
	return r.apply(d.target, d.verdict)
}

// encodeState snapshots our verdicts and those of the live members we know, so that a
// push-pull spreads every member's verdicts, not only the two peers' own.
func (c *Cluster) encodeState() []byte {
	c.mu.Lock()
	snap := map[string]*record{c.name: c.local.clone()}
	for name, r := range c.records {
		if m, ok := c.members[name]; ok && live(m.state) {
			snap[name] = r.clone()
		}
	}
	c.mu.Unlock()
	return encodeState(snap)
}

func (c *Cluster) mergeState(records map[string]*record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, in := range records {
		if name == c.name {
			continue
		}
		if m, ok := c.members[name]; ok && !live(m.state) {
			continue // a lagging peer's copy of a member we know is gone
		}
		if r := c.records[name]; r != nil {
			r.merge(in)
		} else {
			c.records[name] = in
		}
	}
}
