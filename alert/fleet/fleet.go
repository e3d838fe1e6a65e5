// Package fleet is the fleet protocol of alerting: how the vantages' shared verdicts
// make a quorum, which vantage sends a page (rank, takeover), what a vantage cut off from
// the fleet's majority may do (alone, isolated), and how the page records settle what
// another vantage already sent (the outbox's hooks). The engine talks to it only through
// alert.Peers, and it sees the engine only through alert.EngineView. GossipFleet is
// Fleet over a gossip layer (the daemon adapts alert/cluster to Gossip); the outage
// simulator implements Fleet with its in-memory network.
package fleet

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/alert"
)

// Fleet is the cluster of vantages as the protocol needs it (GossipFleet, or the
// simulator's network). Every vantage computes incidents from the same shared verdicts,
// so they agree on what to page; Position and the page records decide who sends.
type Fleet interface {
	// SetLocal gossips this vantage's ballot.
	SetLocal(b Ballot)
	// Tally counts, per target, the verdicts of the vantages that count (see Ballot).
	Tally() map[string]Count
	// LiveVantages counts live vantages, this one included (shards of one vantage count once).
	LiveVantages() int
	Alone() (bool, time.Duration)
	// Generation moves whenever a verdict, the membership or a page record changes.
	Generation() uint64
	// Position is this vantage's rank as sender for a dedup key; 0 sends.
	Position(key string) int
	Page(key string) (Page, bool)
	// RecordPage tells the fleet this vantage queued a trigger (open) or a resolve.
	RecordPage(key string, open bool)
	IsLive(member string) bool
	Status() alert.FleetStatus
}

// Page is what the fleet knows of one dedup key at the paging service.
type Page struct {
	Open, Confirmed bool
	By              string
	At              time.Time
}

// Options are the cluster: settings the fleet protocol applies.
type Options struct {
	Fleet         Fleet
	Quorum        int // 0: a majority of the live vantages
	AloneAfter    time.Duration
	TakeoverAfter time.Duration
}

// Two slacks of time, for two different comparisons with another vantage's page record
// (its At, on that vantage's clock):
const (
	// openingSpread: how much earlier than this vantage's incident opened another vantage
	// may have opened (and paged) the same incident. Each vantage opens it at its own
	// probe round, failure threshold and group wait, so openings of one outage lie up
	// to an interval or two apart; the clocks' difference is small beside that. A
	// record older than this is of an earlier incident with the same key.
	openingSpread = time.Minute
	// clockSlack: how far apart two vantages' clocks may be. It compares two instants,
	// not two observations: a resolve another vantage had accepted more than this after
	// this vantage made a trigger came after the trigger (so the trigger is obsolete).
	// With the opening spread here, a trigger made up to a minute before the fleet's
	// resolve would still go out and reopen the resolved incident; with the clock slack
	// there, another vantage's page of this very incident would pass for an earlier
	// incident's. So they stay two.
	clockSlack = 500 * time.Millisecond
)

// pendingResolve is a resolve this vantage is not first to send: it waits for the
// sender's record and sends itself only when none comes.
type pendingResolve struct {
	inc   *alert.Incident
	since time.Time
}

// Member is one vantage's part of the fleet protocol: the engine's alert.Peers.
type Member struct {
	Options
	generation uint64
	votes      map[string]Count
	quorum     int
	held       bool // alone, not yet isolated: incidents stand still
	resolves   map[string]*pendingResolve
	failing    map[string]string // each target's condition by quorum when last judged
}

var _ alert.Peers = (*Member)(nil)

// New is this vantage's part of a fleet, for alert.EngineOptions.Peers.
func New(o Options) *Member {
	return &Member{Options: o, resolves: map[string]*pendingResolve{}}
}

// alone reports whether no peer is live, and whether that has lasted alone_after (then
// this vantage pages on its own evidence).
func (f *Member) alone() (alone, isolated bool, since time.Duration) {
	alone, since = f.Fleet.Alone()
	return alone, alone && since >= f.AloneAfter, since
}

// Holding: alone but not yet for alone_after. Most often that is this vantage's own
// network, so nothing changes on its word: no incident opens or resolves, nothing is sent.
func (f *Member) Holding() bool {
	alone, isolated, _ := f.alone()
	return alone && !isolated
}

// effectiveQuorum: alone, a vantage has only its own evidence; otherwise the setting (at
// most the live vantages: a fleet that lost some still pages), or a majority of them.
func (f *Member) effectiveQuorum() int {
	if alone, _ := f.Fleet.Alone(); alone {
		return 1
	}
	live := f.Fleet.LiveVantages()
	if f.Quorum > 0 {
		return max(1, min(f.Quorum, live))
	}
	return live/2 + 1
}

// Sync gossips the local verdicts and takes the fleet's: which targets fail by quorum.
func (f *Member) Sync(v alert.EngineView) (hold bool) {
	f.Fleet.SetLocal(ballot(v))
	f.generation = f.Fleet.Generation()
	f.votes = f.Fleet.Tally()
	f.quorum = f.effectiveQuorum()
	f.held = f.Holding()
	if alone, _ := f.Fleet.Alone(); !alone {
		f.closeResolved(v)
	}
	return f.held
}

// ballot is this vantage's verdicts on its firing targets. An impaired vantage's
// verdicts say more about its own network than about the platform: it abstains, so that
// it cannot make up a quorum.
func ballot(v alert.EngineView) Ballot {
	b := Ballot{Verdicts: map[string]Verdict{}}
	if v.Impaired() {
		b.Abstain = true
		return b
	}
	for id, s := range v.Firing() {
		switch t := v.Target(id); {
		case t != nil && !s.Last.At.IsZero() && v.Age(s) > 2*t.Interval+t.Timeout:
			b.Verdicts[id] = Stale
		case s.Condition == alert.ConditionDegraded:
			b.Verdicts[id] = Degraded
		default:
			b.Verdicts[id] = Down
		}
	}
	return b
}

// closeResolved closes the paged incidents that the fleet resolved while this vantage
// was away (crashed, or on the other side of a partition): their key is closed at the
// paging service, and an incident still open here would neither page again nor match
// the others' incidents (a widening sent for it reopened the closed key next to the
// fleet's new incident). What still fails opens a new incident at this reconcile, which
// adopts the fleet's page of it or is paged anew.
func (f *Member) closeResolved(v alert.EngineView) {
	now := v.Now()
	for _, inc := range v.OpenIncidents() {
		if !inc.Triggered {
			continue
		}
		rec, ok := f.Fleet.Page(inc.Key)
		// After the incident opened by more than the spread: a resolve of an earlier
		// incident with the same key, made about when this one opened, is not its end.
		if !ok || rec.Open || !rec.Confirmed || rec.By == f.Member(v) || !rec.At.After(inc.Opened.Add(openingSpread)) {
			continue
		}
		if inc.PagedBy == f.Member(v) && rec.At.Before(inc.PagedAt) {
			continue // this vantage paged it again after that resolve
		}
		v.CloseResolved(now, inc, "resolved by vantage "+rec.By+" while this vantage was away")
	}
}

// Condition is the target's condition by quorum: "" (not failing), down or degraded.
func (f *Member) Condition(id string, _ *alert.TargetState) string {
	c := f.votes[id]
	down, degraded, stale := c.Down, c.Degraded, c.Stale
	was := f.failing[id]
	cond := ""
	switch {
	case down >= f.quorum:
		cond = alert.ConditionDown
	case down+degraded >= f.quorum:
		cond = alert.ConditionDegraded
	case was != "" && down+degraded > 0 && down+degraded+stale >= f.quorum:
		cond = was // stale votes keep a failure standing, never start one
	}
	if f.failing == nil {
		f.failing = map[string]string{}
	}
	if cond == "" {
		delete(f.failing, id)
	} else {
		f.failing[id] = cond
	}
	return cond
}

// votesText says how many vantages see a target failing: "down from 2 of 3".
func (f *Member) votesText(id string, live int) string {
	down, degraded := f.votes[id].Down, f.votes[id].Degraded
	switch {
	case down > 0 && down >= degraded:
		return fmt.Sprintf("down from %d of %d", down, live)
	case down+degraded > 0:
		return fmt.Sprintf("degraded from %d of %d", down+degraded, live)
	}
	return ""
}

// Moved reports whether the fleet changed since the last reconcile, or this vantage
// started or stopped holding.
func (f *Member) Moved() bool {
	return f.Fleet.Generation() != f.generation || f.Holding() != f.held
}
