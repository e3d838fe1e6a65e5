// Package cluster lets the vantages of a fleet see each other and share their verdicts
// per target, on hashicorp/memberlist (the gossip layer under Alertmanager, Consul and
// Serf). Each vantage gossips which targets it sees firing; every vantage can then ask how
// many live vantages say so (Tally), and who is live. The rules (quorum, being alone,
// who sends) are the fleet's (package alert/fleet), not this package's: this one is
// gossip only.
//
// Membership, failure detection and encryption are memberlist's. Verdicts travel two
// ways: each change is broadcast (and relayed) as a small message through memberlist's
// transmit-limited queue, and memberlist's periodic push-pull exchanges full snapshots as
// a backstop for lost broadcasts and for members that join late.
//
// Page records (see Page) travel the same two ways, so that the vantage that sends a
// page for a dedup key (the first in the fleet's rank) knows what another vantage already
// sent.
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
	"sync/atomic"
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
	// Retain keeps a member that died (not one that left) counting in Tally with its
	// last verdicts for this long: members are declared dead one by one and at different
	// times on each member, and a view that lost some of them must not judge alone.
	// 0: a dead member's verdicts go at once.
	Retain time.Duration
	// LeaveTimeout bounds how long Close waits for the leave message to go out
	// (default 2s).
	LeaveTimeout time.Duration
	// Store, if set, keeps the page records across restarts (see PagesBucket); nil: in
	// memory only. It must stay open until Close has returned.
	Store PageStore
	// WrapTransport, if set, wraps the transport (memberlist's UDP and TCP one, bound on
	// Bind, with the counting of Stats) before memberlist uses it: tests drop gossip with
	// it. memberlist shuts the returned transport down on Close.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
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
	// Reported: its verdicts have arrived (a member that just came back has none until
	// its state does, and must not count as saying "ok" meanwhile).
	Reported bool
	// Retained: dead for less than Options.Retain; its last verdicts still count.
	Retained bool
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
	retain   time.Duration

	gen     atomic.Uint64 // see Generation
	traffic counters      // see Stats

	mu        sync.Mutex
	seq       uint64             // our version counter
	local     *record            // our verdicts
	records   map[string]*record // other members' verdicts, by member name
	members   map[string]*memberInfo
	pages     map[string]pageRecord // by dedup key, of every member, dead ones too
	pageClock uint64                // the highest page version seen
	pageLimit int                   // at most this many pages (0: maxPages)
	pageStore PageStore             // nil: pages are not saved
	unsaved   map[string]bool       // page keys changed since the last write (pagestore.go)
	saveWake  chan struct{}         // wakes the writer; holds at most one wake

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type memberInfo struct {
	addr      string
	state     string
	lastHeard time.Time
	diedAt    time.Time // when it was declared dead (Retain)
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
		name:      o.Name,
		logger:    logger,
		peers:     append([]string(nil), o.Peers...),
		probe:     conf.ProbeInterval,
		leaveMax:  durationOr(o.LeaveTimeout, 2*time.Second),
		retain:    o.Retain,
		seq:       seq,
		local:     newRecord(seq),
		records:   make(map[string]*record),
		members:   make(map[string]*memberInfo),
		pages:     make(map[string]pageRecord),
		pageLimit: maxPages,
		pageStore: o.Store,
		unsaved:   make(map[string]bool),
		saveWake:  make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	if c.pageStore != nil {
		// Before memberlist starts: no peer's state may arrive while they load.
		if err := c.loadPages(); err != nil {
			return nil, fmt.Errorf("start cluster member %q: %w", o.Name, err)
		}
	}
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numLive, RetransmitMult: conf.RetransmitMult}
	d := delegate{c: c}
	conf.Delegate, conf.Events, conf.Ping = d, d, d
	conf.Logger = newStdLogger(logger.With("component", "memberlist"))
	if conf.Transport, err = c.transport(conf, o.WrapTransport); err != nil {
		return nil, fmt.Errorf("start cluster member %q on %s: %w", o.Name, o.Bind, err)
	}
	c.ml, err = memberlist.Create(conf)
	if err != nil {
		_ = conf.Transport.Shutdown() // safe if memberlist shut it down already
		return nil, fmt.Errorf("start cluster member %q on %s: %w", o.Name, o.Bind, err)
	}
	if c.pageStore != nil {
		c.done.Add(1)
		go c.savePages()
	}
	c.join()
	c.done.Add(1)
	go c.reconnect(durationOr(o.ReconnectInterval, 10*time.Second))
	return c, nil
}

// transport binds memberlist's network transport, counts its traffic and applies wrap.
// With port 0 it applies the port the kernel picked to conf, as memberlist does when it
// binds itself.
func (c *Cluster) transport(conf *memberlist.Config, wrap func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport) (memberlist.NodeAwareTransport, error) {
	nt, err := newNetTransport(conf)
	if err != nil {
		return nil, err
	}
	if conf.BindPort == 0 {
		conf.BindPort = nt.GetAutoBindPort()
		conf.AdvertisePort = conf.BindPort
	}
	counting := newCountingTransport(nt, &c.traffic)
	if wrap == nil {
		return counting, nil
	}
	t := wrap(counting)
	if t == nil {
		_ = counting.Shutdown()
		return nil, errors.New("WrapTransport: expected a transport, got nil")
	}
	return t, nil
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

// Name is this member's name.
func (c *Cluster) Name() string { return c.name }

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
		c.closeErr = errors.Join(leaveErr, c.ml.Shutdown(), c.saveLast())
	})
	return c.closeErr
}

// saveLast writes the page records that changed since the writer stopped (memberlist
// delivered gossip until its shutdown).
func (c *Cluster) saveLast() error {
	if c.pageStore == nil {
		return nil
	}
	return c.flushPages()
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
			c.expireRetained()
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
	c.gen.Add(1)
	return deltas
}

// Members lists every member this one has known, itself first, then the others by name.
// A member alive for memberlist that has not
// answered a probe for three probe rounds is reported suspect.
func (c *Cluster) Members() []Member {
	self := Member{Name: c.name, Addr: c.Addr(), State: StateAlive, LastHeard: time.Now(), Self: true, Reported: true}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []Member{self}
	suspectAfter := 3 * c.probe * time.Duration(max(1, c.livePeersLocked()))
	for name, m := range c.members {
		state := m.state
		if state == StateAlive && time.Since(m.lastHeard) > suspectAfter {
			state = StateSuspect
		}
		out = append(out, Member{Name: name, Addr: m.addr, State: state, LastHeard: m.lastHeard, Reported: c.reportedLocked(name), Retained: c.retainedLocked(m)})
	}
	slices.SortFunc(out[1:], func(x, y Member) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func isLive(state string) bool { return state == StateAlive }

// retainedLocked: dead for less than Retain, its last verdicts still count.
func (c *Cluster) retainedLocked(m *memberInfo) bool {
	return m.state == StateDead && c.retain > 0 && time.Since(m.diedAt) < c.retain
}

// expireRetained drops the verdicts of members dead for Retain or longer.
func (c *Cluster) expireRetained() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, m := range c.members {
		if _, has := c.records[name]; has && m.state == StateDead && !c.retainedLocked(m) {
			delete(c.records, name)
			c.gen.Add(1)
		}
	}
}

// reportedLocked: a full state of the member's verdicts has arrived (a record made from
// single broadcasts has floor 0: it knows a few targets, not the rest).
func (c *Cluster) reportedLocked(name string) bool {
	r := c.records[name]
	return r != nil && r.floor > 0
}

func (c *Cluster) numLive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.livePeersLocked() + 1
}

func (c *Cluster) livePeersLocked() int {
	n := 0
	for _, m := range c.members {
		if isLive(m.state) {
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
	c.gen.Add(1)
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
	changed := false
	m, ok := c.members[name]
	if ok && m.state != StateLeft && m.state != state {
		m.state = state // "left" stays: memberlist reports a departure as a leave event too
		changed = true
		if state == StateDead {
			m.diedAt = time.Now()
		}
	}
	retain := ok && m.state == StateDead && c.retain > 0
	if _, has := c.records[name]; has && !retain {
		delete(c.records, name)
		changed = true
	}
	if changed {
		c.gen.Add(1)
	}
}

func (c *Cluster) heard(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.members[name]; ok && isLive(m.state) {
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
	if m, ok := c.members[d.member]; ok && !isLive(m.state) {
		return false // relayed late, from a member we know is gone
	}
	r := c.records[d.member]
	if r == nil {
		r = newRecord(0)
		c.records[d.member] = r
	}
	if !r.apply(d.target, d.verdict) {
		return false
	}
	c.gen.Add(1)
	return true
}

// encodeState snapshots our verdicts and those of the live members we know, so that a
// push-pull spreads every member's verdicts, not only the two peers' own, and every page
// record we know.
func (c *Cluster) encodeState() []byte {
	c.mu.Lock()
	snap := map[string]*record{c.name: c.local.clone()}
	for name, r := range c.records {
		if m, ok := c.members[name]; ok && isLive(m.state) {
			snap[name] = r.clone()
		}
	}
	pages := c.pagesLocked()
	c.mu.Unlock()
	return encodeState(clusterState{records: snap, pages: pages})
}

func (c *Cluster) mergeState(st clusterState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := c.mergePagesLocked(st.pages)
	for name, in := range st.records {
		if name == c.name {
			continue
		}
		if m, ok := c.members[name]; ok && !isLive(m.state) {
			continue // a lagging peer's copy of a member we know is gone
		}
		if r := c.records[name]; r != nil {
			changed = r.merge(in) || changed
		} else {
			c.records[name] = in
			changed = true
		}
	}
	if changed {
		c.gen.Add(1)
	}
}

// Tally returns, for every target that at least one live vantage (this one included)
// says fires, how many live vantages say so, and how many vantages are live (this one
// included). A live member whose verdicts have not arrived in full (see Member.Reported)
// counts as saying ok.
func (c *Cluster) Tally() (votes map[string]int, live int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	votes = make(map[string]int, len(c.local.entries))
	countFiring(votes, c.local)
	live = 1
	for name, m := range c.members {
		if !isLive(m.state) && !c.retainedLocked(m) {
			continue
		}
		live++
		if c.reportedLocked(name) {
			countFiring(votes, c.records[name])
		}
	}
	return votes, live
}

func countFiring(votes map[string]int, r *record) {
	for t, v := range r.entries {
		if v.firing {
			votes[t]++
		}
	}
}

// Generation is a counter that moves whenever something that Tally, Members,
// IsLive, Views or Page answer may have changed: a verdict (ours or a peer's), a
// membership change (join, death, leave) or a page record (ours or a peer's). Polling it
// is cheap; equal values mean nothing changed in between.
func (c *Cluster) Generation() uint64 { return c.gen.Load() }

// IsLive reports whether the member is live as this one sees it; this member is.
func (c *Cluster) IsLive(member string) bool {
	if member == c.name {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[member]
	return ok && isLive(m.state)
}

// Reported reports whether the member's verdicts have arrived in full (this one's have).
func (c *Cluster) Reported(member string) bool {
	if member == c.name {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reportedLocked(member)
}

// Says reports whether the member (this one included) says key fires.
func (c *Cluster) Says(member, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if member == c.name {
		return c.local.firing(key)
	}
	r := c.records[member]
	return r != nil && r.firing(key)
}

// Views returns, per live member (this one included) by name, the sorted targets it says
// fire. A live member whose verdicts have not arrived yet has none.
func (c *Cluster) Views() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{c.name: firingTargets(c.local)}
	for name, m := range c.members {
		if isLive(m.state) {
			out[name] = firingTargets(c.records[name])
		}
	}
	return out
}

func firingTargets(r *record) []string {
	targets := []string{}
	if r == nil {
		return targets
	}
	for t, v := range r.entries {
		if v.firing {
			targets = append(targets, t)
		}
	}
	slices.Sort(targets)
	return targets
}
