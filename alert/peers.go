package alert

import (
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Peers is the engine's seam to the other vantages: what counts as failing, who sends a
// page, and what another vantage already sent. A lone vantage (Solo) and a vantage of a
// fleet (package alert/fleet) implement it, so the engine's rules read the same for both
// and the outage simulator runs either on one clock. The engine calls it under its lock.
type Peers interface {
	// Sync publishes this vantage's verdicts and takes the others'; hold is true while
	// nothing may open or resolve on this side's word (alone, not yet for alone_after).
	Sync(v EngineView) (hold bool)
	// Moved reports whether the others changed since the last sync.
	Moved() bool
	// Condition is what alerting goes by for a target: "", down or degraded.
	Condition(id string, s *TargetState) string
	// MayTrigger decides whether this vantage sends an incident's first trigger now;
	// adopted means another vantage's accepted page stands for it.
	MayTrigger(v EngineView, now time.Time, inc *Incident) (send, adopted bool)
	// FirstSender reports whether this vantage sends follow-ups (widened, part of).
	FirstSender(v EngineView, key string) bool
	// Holding: follow-ups wait (alone, not yet isolated).
	Holding() bool
	// Resolve sends, or waits for another vantage to send, a paged incident's resolve.
	Resolve(v EngineView, now time.Time, inc *Incident)
	// SendPending sends resolves whose expected sender stayed silent.
	SendPending(v EngineView, now time.Time)
	// Sent tells the others this vantage queued a trigger or a resolve.
	Sent(v EngineView, now time.Time, inc *Incident, action string)
	// Note is added to a trigger's summary ("sent by an isolated vantage"); "" for none.
	Note(v EngineView) string
	// Details is the peers' part of a notification's evidence; nil for none.
	Details(v EngineView, inc *Incident) map[string]any
	// Status is the fleet as this vantage sees it; nil alone.
	Status(v EngineView) *FleetStatus
	// Snapshot fills the peers' part of a status snapshot.
	Snapshot(v EngineView, st *Status)
	// Member is this vantage's name in the fleet's page records; "" alone.
	Member(v EngineView) string
}

// EngineView is what the engine lets its peers read and do: the peers get it only in
// their calls, under the engine's lock, so they never hold the engine's fields.
type EngineView interface {
	// Now is the engine's clock.
	Now() time.Time
	// Name is this vantage's name in a fleet: cluster.member, else the vantage.
	Name() string
	// Impaired reports whether this vantage's self-check fails (SetImpaired).
	Impaired() bool
	// Firing lists the firing targets this instance probes (a shard only its own: a
	// state restored from before a reshard is not a verdict), by id.
	Firing() map[string]*TargetState
	// Target is a target's config; nil when it is gone.
	Target(id string) *config.Target
	// Age is how long ago a state's latest result was applied: on the monotonic clock
	// when this process applied it (a wall-clock step does not age it), else by the
	// persisted time of the result.
	Age(s *TargetState) time.Duration
	// OpenIncidents lists the open incidents, in the engine's order.
	OpenIncidents() []*Incident
	// Incident is the open incident with this dedup key, or nil.
	Incident(key string) *Incident
	// CloseResolved closes and archives an open incident that another vantage resolved.
	CloseResolved(now time.Time, inc *Incident, why string)
	// Send queues a notification of inc; false when nothing could be queued.
	Send(now time.Time, inc *Incident, action, note string) bool
	// Note adds an event to an incident's timeline.
	Note(inc *Incident, at time.Time, kind, text string)
}

// MaxDetailTargets bounds the targets a notification's evidence lists: PagerDuty takes
// 512 KB, an on-call reads 20.
const MaxDetailTargets = maxDetailTargets

// Solo is a lone vantage: its own states decide, and it sends everything itself.
type Solo struct{}

var _ Peers = Solo{}

func (Solo) Sync(EngineView) bool { return false }
func (Solo) Moved() bool          { return false }
func (Solo) Condition(_ string, s *TargetState) string {
	if s.State != StateFiring {
		return ""
	}
	return s.Condition
}
func (Solo) MayTrigger(EngineView, time.Time, *Incident) (bool, bool) { return true, false }
func (Solo) FirstSender(EngineView, string) bool                      { return true }
func (Solo) Holding() bool                                            { return false }
func (Solo) Resolve(v EngineView, now time.Time, inc *Incident) {
	v.Send(now, inc, notify.ActionResolve, "resolved")
}
func (Solo) SendPending(EngineView, time.Time)             {}
func (Solo) Sent(EngineView, time.Time, *Incident, string) {}
func (Solo) Note(EngineView) string                        { return "" }
func (Solo) Details(EngineView, *Incident) map[string]any  { return nil }
func (Solo) Status(EngineView) *FleetStatus                { return nil }
func (Solo) Snapshot(EngineView, *Status)                  {}
func (Solo) Member(EngineView) string                      { return "" }

// engineView is the Engine as its peers see it (EngineView).
type engineView struct{ e *Engine }

func (e *Engine) view() EngineView { return engineView{e} }

var _ EngineView = engineView{}

func (v engineView) Now() time.Time { return v.e.now() }
func (v engineView) Age(s *TargetState) time.Duration {
	return s.seen.orPersisted(s.Last.At).since(v.e.moment())
}
func (v engineView) Impaired() bool { return v.e.impaired }
func (v engineView) Name() string {
	if c := v.e.cfg.Cluster; c != nil {
		return c.Member
	}
	return v.e.cfg.Vantage
}
func (v engineView) Firing() map[string]*TargetState {
	out := map[string]*TargetState{}
	for id, s := range v.e.states {
		if s.State == StateFiring && v.e.probes(id) {
			out[id] = s
		}
	}
	return out
}
func (v engineView) Target(id string) *config.Target                     { return v.e.targets[id] }
func (v engineView) OpenIncidents() []*Incident                          { return v.e.incidents.Open() }
func (v engineView) Incident(key string) *Incident                       { return v.e.incidents.Get(key) }
func (v engineView) Note(inc *Incident, at time.Time, kind, text string) { inc.note(at, kind, text) }
func (v engineView) Send(now time.Time, inc *Incident, action, note string) bool {
	return v.e.send(now, inc, action, note)
}
func (v engineView) CloseResolved(now time.Time, inc *Incident, why string) {
	inc.close(now, why)
	v.e.incidents.forget(inc.Key)
	v.e.saveClosed(inc)
}

// probes reports whether this instance probes the target: a shard votes only for its
// own (a state restored from before a reshard is not a vote).
func (e *Engine) probes(id string) bool {
	sh := e.cfg.Shard
	return sh == nil || config.ShardOf(id, sh.Count) == sh.Index
}

// sendRecorded sends and tells the other vantages, so none of them repeats it.
func (e *Engine) sendRecorded(now time.Time, inc *Incident, action, note string) bool {
	ok := e.send(now, inc, action, note)
	if ok {
		e.peers.Sent(e.view(), now, inc, action)
	}
	return ok
}

// FleetStatus is the fleet as this vantage sees it; nil without a cluster.
func (e *Engine) FleetStatus() *FleetStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peers.Status(e.view())
}
