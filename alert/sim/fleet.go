package sim

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/cluster"
	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/config"
)

// FleetSpec makes the sim a fleet: each vantage its own engine, outbox and store, the
// receivers shared, gossip in memory and instant within a partition.
type FleetSpec struct {
	Vantages      int // 3, 5, ...
	Quorum        int // 0: a majority of the live vantages
	AloneAfter    time.Duration
	TakeoverAfter time.Duration
}

func (f *FleetSpec) names() []string {
	names := make([]string, f.Vantages)
	for i := range names {
		names[i] = fmt.Sprintf("v%d", i+1)
	}
	return names
}

func (f *FleetSpec) aloneAfter() time.Duration {
	return orDur(f.AloneAfter, config.DefaultAloneAfter)
}

func (f *FleetSpec) takeoverAfter() time.Duration {
	return orDur(f.TakeoverAfter, config.DefaultTakeoverAfter)
}

// network is the fleet's gossip: which vantages hear each other (partitions), their
// verdicts and page records. What one member says reaches every member of its side at
// once; when sides join again they exchange everything (a push-pull).
type network struct {
	s       *Sim
	spec    *FleetSpec
	names   []string
	side    map[string]int // vantage -> partition side
	members map[string]*member
	// cut: vantage -> peer -> when they stopped hearing each other; a lost peer's last
	// verdicts still count for alone_after (the daemon's retention).
	cut        map[string]map[string]time.Duration
	generation uint64
	settled    uint64 // generation at the last settle round
}

func newNetwork(s *Sim, names []string, spec *FleetSpec) *network {
	n := &network{s: s, spec: spec, names: names, side: map[string]int{}, members: map[string]*member{},
		cut: map[string]map[string]time.Duration{}}
	for _, name := range names {
		n.cut[name] = map[string]time.Duration{}
	}
	return n
}

// member is one vantage's view of the fleet: fleet.Fleet and fleet.PageRecords.
type member struct {
	n          *network
	name       string
	local      fleet.Ballot
	pages      map[string]pageRec
	pageClock  uint64
	aloneSince time.Duration
	alone      bool
}

type pageRec struct {
	cluster.Page
	version uint64
}

var (
	_ fleet.Fleet       = (*member)(nil)
	_ fleet.PageRecords = (*member)(nil)
)

// join starts a vantage's member; it gets its side's records at once (push-pull).
func (n *network) join(name string) *member {
	m := &member{n: n, name: name, pages: map[string]pageRec{}}
	for _, peer := range n.hears(name) {
		for _, p := range peer.pages {
			m.apply(p)
		}
	}
	n.members[name] = m
	n.bump()
	m.updateAlone()
	return m
}

// leave drops a crashed member.
func (n *network) leave(m *member) {
	if n.members[m.name] == m {
		delete(n.members, m.name)
		for _, peer := range n.hears(m.name) {
			n.cut[peer.name][m.name] = n.s.elapsed
		}
		n.bump()
	}
}

// hears lists the running members on name's side, name excluded, by name.
func (n *network) hears(name string) []*member {
	var out []*member
	for _, other := range n.names {
		if m := n.members[other]; m != nil && other != name && n.side[other] == n.side[name] {
			out = append(out, m)
		}
	}
	return out
}

// partition splits the fleet into groups; vantages in no group form one more side.
// No groups: everyone hears everyone again.
func (n *network) partition(groups [][]string) {
	before := maps.Clone(n.side)
	for _, name := range n.names {
		n.side[name] = len(groups)
	}
	for i, g := range groups {
		for _, name := range g {
			n.side[name] = i
		}
	}
	for _, a := range n.names {
		for _, b := range n.names {
			switch {
			case before[a] == before[b] && n.side[a] != n.side[b]:
				n.cut[a][b] = n.s.elapsed
			case n.side[a] == n.side[b]:
				delete(n.cut[a], b)
			}
		}
	}
	// Sides that meet exchange their records.
	for _, name := range n.names {
		if m := n.members[name]; m != nil {
			for _, peer := range n.hears(name) {
				for _, p := range peer.pages {
					m.apply(p)
				}
			}
		}
	}
	n.bump()
	for _, m := range n.members {
		m.updateAlone()
	}
}

func (n *network) bump() { n.generation++ }

// spread is called once per settle round: it notes the generation it settled.
func (n *network) spread() { n.settled = n.generation }

// dirty reports whether something changed since the last settle round.
func (n *network) dirty() bool { return n.generation != n.settled }

// due is the next fleet timer: a member's alone_after, a lost peer's retention.
func (n *network) due() (time.Duration, bool) {
	next, ok := time.Duration(0), false
	take := func(at time.Duration) {
		if at > n.s.elapsed && (!ok || at < next) {
			next, ok = at, true
		}
	}
	after := n.spec.aloneAfter()
	for _, m := range n.members {
		if m.alone {
			take(m.aloneSince + after)
		}
	}
	for _, peers := range n.cut {
		for _, at := range peers {
			take(at + after)
		}
	}
	return next, ok
}

// counts reports whether peer's verdicts count for name: on its side and running, or
// lost less than alone_after ago.
func (n *network) counts(name, peer string) (*member, bool) {
	p := n.members[peer]
	if p == nil {
		return nil, false
	}
	if n.side[peer] == n.side[name] {
		return p, true
	}
	at, ok := n.cut[name][peer]
	return p, ok && n.s.elapsed-at < n.spec.aloneAfter()
}

// updateAlone applies the fleet's rule (fleet.CutOff) to the vantages heard, this one
// included, and notes when this member became alone.
func (m *member) updateAlone() {
	alone := fleet.CutOff(len(m.n.hears(m.name))+1, len(m.n.names))
	switch {
	case !alone:
		m.alone = false
	case !m.alone:
		m.alone, m.aloneSince = true, m.n.s.elapsed
	}
}

func (m *member) SetLocal(b fleet.Ballot) {
	if !m.local.Equal(b) {
		m.local = fleet.Ballot{Abstain: b.Abstain, Verdicts: maps.Clone(b.Verdicts)}
		m.n.bump()
	}
}

func (m *member) Tally() map[string]fleet.Count {
	votes := map[string]fleet.Count{}
	fleet.Add(votes, m.local)
	for _, name := range m.n.names {
		if p, ok := m.n.counts(m.name, name); ok && name != m.name {
			fleet.Add(votes, p.local)
		}
	}
	return votes
}

func (m *member) LiveVantages() int {
	live := 0
	for _, name := range m.n.names {
		p, ok := m.n.counts(m.name, name)
		if name == m.name {
			p, ok = m, true
		}
		if ok && !p.local.Abstain {
			live++
		}
	}
	return live
}

func (m *member) Alone() (bool, time.Duration) {
	m.updateAlone()
	if !m.alone {
		return false, 0
	}
	return true, m.n.s.elapsed - m.aloneSince
}

func (m *member) Generation() uint64 { return m.n.generation }

// Position ranks this vantage among the members on its side that may send.
func (m *member) Position(key string) int {
	var eligible []string
	for _, p := range m.n.hears(m.name) {
		if !p.local.Abstain {
			eligible = append(eligible, p.name)
		}
	}
	return fleet.Rank(key, m.name, eligible)
}

func (m *member) Page(key string) (fleet.Page, bool) {
	p, ok := m.pages[key]
	return fleet.Page{Open: p.Open, Confirmed: p.Confirmed, By: p.By, At: p.At}, ok
}

func (m *member) Name() string { return m.name }

func (m *member) RecordPage(key string, open bool) {
	m.write(cluster.Page{Key: key, Open: open, By: m.name, At: m.n.s.wallMilli()})
}

// ConfirmPage confirms this member's own unconfirmed record, like the cluster's.
func (m *member) ConfirmPage(key string, open bool) {
	cur, ok := m.pages[key]
	if !ok || cur.By != m.name || cur.Open != open || cur.Confirmed {
		return
	}
	next := cur.Page
	next.Confirmed = true
	m.write(next)
}

// write stores a new record of this member and gossips it to its side at once.
func (m *member) write(p cluster.Page) {
	m.pageClock = max(m.pageClock, m.pages[p.Key].version) + 1
	rec := pageRec{Page: p, version: m.pageClock}
	m.pages[p.Key] = rec
	for _, peer := range m.n.hears(m.name) {
		peer.apply(rec)
	}
	m.n.bump()
}

// apply merges a peer's record by the cluster's order.
func (m *member) apply(p pageRec) {
	m.pageClock = max(m.pageClock, p.version)
	if cur, ok := m.pages[p.Key]; ok && !cluster.PageOutranks(p.Page, p.version, cur.Page, cur.version) {
		return
	}
	m.pages[p.Key] = p
}

func (m *member) IsLive(name string) bool {
	return name == m.name || slices.ContainsFunc(m.n.hears(m.name), func(p *member) bool { return p.name == name })
}

func (m *member) Status() alert.FleetStatus {
	st := alert.FleetStatus{Member: m.name, Live: m.LiveVantages()}
	for _, name := range m.n.names {
		state := "dead"
		if m.IsLive(name) {
			state = "alive"
		}
		st.Members = append(st.Members, alert.FleetMember{Name: name, State: state, Self: name == m.name, Failing: []string{}})
	}
	return st
}

// wallMilli is the clock's time as page records carry it.
func (s *Sim) wallMilli() time.Time { return time.UnixMilli(s.clock.Now().UnixMilli()) }
