// Package fleet is the fleet protocol of alerting: how the vantages' shared verdicts
// make a quorum, which vantage sends a page (rank, takeover), what a vantage cut off from
// the fleet's majority may do (alone, isolated), and how the page records settle what
// another vantage already sent (the outbox's hooks). The engine talks to it only through
// alert.Peers, and it sees the engine only through alert.EngineView; the daemon adapts
// alert/cluster (gossip only) to Fleet, the outage simulator its in-memory network.
package fleet

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
)

// Fleet is the cluster of vantages as the engine needs it (the daemon adapts
// alert/cluster to it). Every vantage computes incidents from the same shared verdicts,
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
		case t != nil && !s.Last.At.IsZero() && v.Now().Sub(s.Last.At) > 2*t.Interval+t.Timeout:
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
		// After the incident opened by more than the skew: a resolve of an earlier
		// incident with the same key, made about when this one opened, is not its end.
		if !ok || rec.Open || !rec.Confirmed || rec.By == f.Member(v) || !rec.At.After(inc.Opened.Add(recordSkew)) {
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

// MayTrigger decides whether this vantage sends an incident's first trigger now. It
// returns false while another vantage is expected to send; the incident is then marked
// triggered without a send when the fleet's record shows the page is out (adopted).
func (f *Member) MayTrigger(v alert.EngineView, now time.Time, inc *alert.Incident) (send, adopted bool) {
	// Only an accepted page counts, as in Alertmanager's notification log: a sender whose
	// paging service keeps failing is taken over after the wait below. The record is the
	// fleet's last word on the key: an accepted trigger, however old, means the incident
	// is open at the paging service (a resolve would have replaced it). Also this
	// vantage's own, from before a restart.
	alone, isolated, since := f.alone()
	if rec, ok := f.Fleet.Page(inc.Key); ok && rec.Open && rec.Confirmed && (!alone || !rec.At.Before(now.Add(-since))) {
		// (Cut off, a record from before the cut may be stale: the fleet may have
		// resolved it since; paging again is harmless, the dedup key is the same.)
		inc.PagedBy, inc.PagedAt = rec.By, rec.At
		v.Note(inc, now, "triggered", "paged by vantage "+rec.By)
		return false, true
	}
	if alone && !isolated {
		return false, false // held until alone_after, then paged on this side's evidence
	}
	// Cut off, the rank is among the members on this side: one of them sends.
	pos := f.Fleet.Position(inc.Key)
	if pos == 0 {
		return true, false
	}
	// (Asked at every position, so that each vantage sees who sent first.)
	if underWay := f.takeoverUnderWay(v, inc); underWay || pos > maxTakeoverPosition {
		return false, false
	}
	if now.Before(inc.SendAfter.Add(time.Duration(pos) * f.TakeoverAfter)) {
		return false, false
	}
	v.Note(inc, now, "takeover", fmt.Sprintf("no vantage before this one (position %d) confirmed the page within %s; sending it", pos, time.Duration(pos)*f.TakeoverAfter))
	return true, false
}

// takeoverUnderWay reports whether another live vantage already took the page over: the
// fleet's record of this incident names someone other than the vantage seen sending it
// first. Ranks shift as members come and go, so "the second sender" can name a
// different vantage a minute later; without this each of them took over in turn.
func (f *Member) takeoverUnderWay(v alert.EngineView, inc *alert.Incident) bool {
	rec, ok := f.Fleet.Page(inc.Key)
	if !ok || !rec.Open || rec.At.Before(inc.Opened.Add(-recordSkew)) || rec.By == f.Member(v) {
		return false
	}
	if inc.FirstSender == "" {
		inc.FirstSender = rec.By
		return false
	}
	return rec.By != inc.FirstSender && f.Fleet.IsLive(rec.By)
}

// maxTakeoverPosition: only the second sender takes over. A takeover helps when the
// first sender's own path to the paging service is broken; when the service fails for
// everyone (429s, timeouts), each further takeover only repeats the page (chat got it
// from every vantage). Both keep retrying, and the route's fallback still applies.
const maxTakeoverPosition = 1

// recordSkew is how much earlier than this vantage's incident another vantage may have
// recorded the same incident's page: vantages see a failure up to an interval apart, and
// their clocks differ a little.
const recordSkew = time.Minute

// waitsForFleet: cut off from the majority, an incident the fleet paged is left for the
// fleet to resolve: paged by a vantage not on this side, or before this side was cut off
// (then it was the fleet's page whichever side its sender ended up on, and the majority
// may still see the outage). Only what this side paged while alone is its own to resolve.
func (f *Member) waitsForFleet(now time.Time, inc *alert.Incident) bool {
	alone, since := f.Fleet.Alone()
	if !alone || inc.PagedBy == "" {
		return false
	}
	return !f.Fleet.IsLive(inc.PagedBy) || inc.PagedAt.Before(now.Add(-since))
}

// resolvedBy reports whether the record is an accepted resolve of this incident, not of
// an earlier one with the same key: made after the incident opened, and after this
// vantage's own trigger if it sent one (after a partition, an isolated vantage's later
// trigger may lose to an older resolve in the records' order).
func (f *Member) resolvedBy(v alert.EngineView, rec Page, inc *alert.Incident) bool {
	if rec.Open || !rec.Confirmed || rec.At.Before(inc.Opened.Add(-recordSkew)) {
		return false
	}
	return inc.PagedBy != f.Member(v) || !rec.At.Before(inc.PagedAt)
}

// FirstSender reports whether this vantage sends follow-ups (widened, part of) for key.
func (f *Member) FirstSender(v alert.EngineView, key string) bool {
	if v.Impaired() || f.Holding() {
		return false // the others do not count it among the senders / nothing while held
	}
	return f.Fleet.Position(key) == 0
}

// Resolve sends the resolve of a paged incident, or, when another vantage is first to
// send it, waits for that vantage's record (sendPending).
func (f *Member) Resolve(v alert.EngineView, now time.Time, inc *alert.Incident) {
	if rec, ok := f.Fleet.Page(inc.Key); ok && f.resolvedBy(v, rec, inc) {
		v.Note(inc, now, "resolved", "resolve sent by vantage "+rec.By)
		return
	}
	// Cut off, a vantage resolves only what its side paged: the fleet's pages wait for
	// the fleet.
	if f.waitsForFleet(now, inc) {
		v.Note(inc, now, "resolved", "waiting for the fleet to resolve what it paged")
		f.resolves[inc.Key] = &pendingResolve{inc: inc, since: now}
		return
	}
	if f.FirstSender(v, inc.Key) {
		f.sendRecorded(v, now, inc)
		return
	}
	v.Note(inc, now, "resolved", "waiting for the first sender's resolve")
	f.resolves[inc.Key] = &pendingResolve{inc: inc, since: now}
}

// SendPending drops resolves another vantage has sent, and sends those whose first
// sender stayed silent past this vantage's takeover wait.
func (f *Member) SendPending(v alert.EngineView, now time.Time) {
	if v.Impaired() {
		return // the others do not wait for it
	}
	for key, p := range f.resolves {
		rec, ok := f.Fleet.Page(key)
		switch {
		case f.waitsForFleet(now, p.inc):
			continue
		case v.Incident(key) != nil:
			delete(f.resolves, key) // failing again: the open incident owns the key
		case ok && f.resolvedBy(v, rec, p.inc):
			delete(f.resolves, key)
		case f.FirstSender(v, key) || now.Sub(p.since) >= time.Duration(f.Fleet.Position(key))*f.TakeoverAfter:
			delete(f.resolves, key)
			f.sendRecorded(v, now, p.inc)
		}
	}
}

// sendRecorded sends a resolve and tells the other vantages, so none of them repeats it.
func (f *Member) sendRecorded(v alert.EngineView, now time.Time, inc *alert.Incident) {
	if v.Send(now, inc, notify.ActionResolve, "resolved") {
		f.Sent(v, now, inc, notify.ActionResolve)
	}
}

// Sent records the page in the fleet.
func (f *Member) Sent(v alert.EngineView, now time.Time, inc *alert.Incident, action string) {
	f.Fleet.RecordPage(inc.Key, action == notify.ActionTrigger)
	if action == notify.ActionTrigger {
		inc.PagedBy, inc.PagedAt = f.Member(v), now
	}
}

func (f *Member) Member(v alert.EngineView) string {
	return v.Name()
}

// Note marks pages sent by a vantage that no peer can confirm.
func (f *Member) Note(v alert.EngineView) string {
	if _, isolated, since := f.alone(); isolated {
		return fmt.Sprintf("sent by an isolated vantage (%s has not heard a majority of the fleet for %s)", f.Member(v), since.Round(time.Second))
	}
	return ""
}

// Details is the fleet's part of a notification's evidence.
func (f *Member) Details(v alert.EngineView, inc *alert.Incident) map[string]any {
	live := f.Fleet.LiveVantages()
	seen := map[string]string{}
	for i, id := range inc.Targets {
		if i == alert.MaxDetailTargets {
			break
		}
		seen[id] = f.votesText(id, live)
	}
	_, isolated, _ := f.alone()
	return map[string]any{"sender": f.Member(v), "quorum": f.quorum, "live_vantages": live, "isolated": isolated, "seen_by": seen}
}

func (f *Member) Status(v alert.EngineView) *alert.FleetStatus {
	fs := f.Fleet.Status()
	fs.Quorum, fs.QuorumSetting = f.effectiveQuorum(), f.Quorum
	fs.AloneAfter = f.AloneAfter.String()
	alone, isolated, since := f.alone()
	fs.Alone, fs.Isolated = alone, isolated
	if alone {
		fs.AloneSince = v.Now().Add(-since).UTC()
	}
	return &fs
}

// Snapshot fills the fleet's part of a status snapshot.
func (f *Member) Snapshot(v alert.EngineView, st *alert.Status) {
	st.Fleet = f.Status(v)
	live := f.Fleet.LiveVantages()
	st.Votes = map[string]map[string]string{}
	best := map[[2]string]int{}
	for i := range st.Targets {
		tv := &st.Targets[i]
		tv.Votes = f.votesText(tv.Target, live)
		if tv.Votes == "" {
			continue
		}
		n := f.votes[tv.Target].Down + f.votes[tv.Target].Degraded
		cell := [2]string{tv.Product, tv.Region}
		if n <= best[cell] {
			continue
		}
		best[cell] = n
		if st.Votes[tv.Product] == nil {
			st.Votes[tv.Product] = map[string]string{}
		}
		st.Votes[tv.Product][tv.Region] = tv.Votes
	}
}
