package fleet

import (
	"strings"
	"sync"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/internal/clock"
)

// Gossip is a fleet's membership and shared records as a gossip layer hears them (the
// daemon adapts alert/cluster to it): what was heard, and no rule of the fleet's.
type Gossip interface {
	// Name is this member's name ("fsn1", or "fsn1#0" for a shard).
	Name() string
	// SetLocal gossips this member's keys (Ballot.Keys).
	SetLocal(keys map[string]bool)
	// Tally counts, per key, the members that say it: this one, and the live and
	// retained ones whose keys have arrived in full.
	Tally() map[string]int
	// Members lists the members known, this one included.
	Members() []GossipMember
	// Generation moves whenever a key, the membership or a page record changes.
	Generation() uint64
	IsLive(member string) bool
	// Reported reports whether the member's keys have arrived in full (this one's have).
	Reported(member string) bool
	// Says reports whether the member (this one included) gossips key.
	Says(member, key string) bool
	// Views is each member's gossiped keys, by member name.
	Views() map[string][]string
	Page(key string) (Page, bool)
	// RecordPage records this member's trigger (open) or resolve, not yet confirmed.
	RecordPage(key string, open bool)
	// ConfirmPage confirms this member's own unconfirmed record with the same open.
	ConfirmPage(key string, open bool)
}

// GossipMember is one member as the gossip layer sees it.
type GossipMember struct {
	Name, Addr string
	State      string // StateAlive, StateSuspect, StateDead or StateLeft
	LastHeard  time.Time
	Self       bool
	Reported   bool // its keys have arrived in full
	Retained   bool // dead for less than the retention: its last keys still count
}

// The states of a member, as the status API shows them.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect" // not yet declared dead
	StateDead    = "dead"
	StateLeft    = "left" // departed on purpose: no longer known
)

// GossipFleet is the Fleet (and the PageRecords) over a gossip layer. It counts
// vantages, not members: the shards of one vantage ("fsn1#0", "fsn1#1") each probe part
// of the targets and together give one verdict per target, and they can reach each other
// while cut off from every other vantage.
type GossipFleet struct {
	g       Gossip
	vantage string
	clock   clock.Clock

	mu         sync.Mutex
	aloneSince time.Time // zero while a member of another vantage is live
}

var (
	_ Fleet       = (*GossipFleet)(nil)
	_ PageRecords = (*GossipFleet)(nil)
)

// NewGossipFleet is vantage's fleet over g; clk nil: the real clock.
func NewGossipFleet(g Gossip, vantage string, clk clock.Clock) *GossipFleet {
	clk = clock.Or(clk)
	return &GossipFleet{g: g, vantage: vantage, clock: clk, aloneSince: clk.Now()}
}

func (f *GossipFleet) Name() string                      { return f.g.Name() }
func (f *GossipFleet) SetLocal(b Ballot)                 { f.g.SetLocal(b.Keys()) }
func (f *GossipFleet) Tally() map[string]Count           { return ParseTally(f.g.Tally()) }
func (f *GossipFleet) Generation() uint64                { return f.g.Generation() }
func (f *GossipFleet) Page(key string) (Page, bool)      { return f.g.Page(key) }
func (f *GossipFleet) RecordPage(key string, open bool)  { f.g.RecordPage(key, open) }
func (f *GossipFleet) ConfirmPage(key string, open bool) { f.g.ConfirmPage(key, open) }
func (f *GossipFleet) IsLive(member string) bool         { return f.g.IsLive(member) }

// abstains: the member gives no verdicts (its self-check fails).
func (f *GossipFleet) abstains(member string) bool { return f.g.Says(member, AbstainKey) }

// live: alive (or suspect: not yet declared dead) and its verdicts have arrived.
func live(m GossipMember) bool {
	return (m.State == StateAlive || m.State == StateSuspect) && m.Reported
}

// counts: a member whose verdicts count: live, or dead for less than alone_after (its
// last verdicts stand meanwhile: the fleet believes a loss no faster than it believes
// being alone), and not abstaining. This one included.
func (f *GossipFleet) counts(m GossipMember) bool {
	return (live(m) || m.Retained) && !f.abstains(m.Name)
}

// Position ranks this vantage among the members that may send: live, reported, not
// abstaining.
func (f *GossipFleet) Position(key string) int {
	return f.rank(key, func(m string) bool { return f.g.Reported(m) && !f.abstains(m) })
}

// rank is this member's Rank for key among the live members that eligible accepts.
func (f *GossipFleet) rank(key string, eligible func(member string) bool) int {
	var others []string
	for _, m := range f.g.Members() {
		if !m.Self && f.g.IsLive(m.Name) && eligible(m.Name) {
			others = append(others, m.Name)
		}
	}
	return Rank(key, f.g.Name(), others)
}

// LiveVantages counts the vantages whose verdicts count.
func (f *GossipFleet) LiveVantages() int {
	seen := map[string]bool{}
	for _, m := range f.g.Members() {
		if f.counts(m) {
			seen[vantageOf(m.Name)] = true
		}
	}
	return len(seen)
}

// Alone: cut off from the fleet's majority (CutOff), counting vantages: shards of this
// one do not keep it company; the known ones are the dead too, not the departed.
func (f *GossipFleet) Alone() (bool, time.Duration) {
	known, seen := map[string]bool{f.vantage: true}, map[string]bool{f.vantage: true}
	for _, m := range f.g.Members() {
		if m.State == StateLeft {
			continue
		}
		v := vantageOf(m.Name)
		known[v] = true
		if m.Self || live(m) {
			seen[v] = true
		}
	}
	alone := CutOff(len(seen), len(known))
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !alone:
		f.aloneSince = time.Time{}
		return false, 0
	case f.aloneSince.IsZero():
		f.aloneSince = f.clock.Now()
	}
	return true, f.clock.Now().Sub(f.aloneSince)
}

func vantageOf(member string) string {
	v, _, _ := strings.Cut(member, "#")
	return v
}

func (f *GossipFleet) Status() alert.FleetStatus {
	views := f.g.Views()
	var st alert.FleetStatus
	for _, m := range f.g.Members() {
		if m.Self {
			st.Member = m.Name
		}
		st.Members = append(st.Members, alert.FleetMember{Name: m.Name, Addr: m.Addr, State: m.State, LastHeard: m.LastHeard.UTC(), Self: m.Self, Failing: Shown(views[m.Name])})
	}
	st.Live = f.LiveVantages()
	return st
}
