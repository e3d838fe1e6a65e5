package alert

import (
	"time"

	"github.com/picket-dev/picket/alert/notify"
)

// peers is the engine's seam to the other vantages: what counts as failing, who sends a
// page, and what another vantage already sent. A lone vantage (solo) and a vantage of a
// fleet (*fleetState) implement it, so the engine's rules read the same for both and the
// outage simulator runs either on one clock.
type peers interface {
	// sync publishes this vantage's verdicts and takes the others'; hold is true while
	// nothing may open or resolve on this side's word (alone, not yet for alone_after).
	sync(e *Engine) (hold bool)
	// moved reports whether the others changed since the last sync.
	moved() bool
	// condition is what alerting goes by for a target: "", down or degraded.
	condition(id string, s *TargetState) string
	// mayTrigger decides whether this vantage sends an incident's first trigger now;
	// adopted means another vantage's accepted page stands for it.
	mayTrigger(e *Engine, now time.Time, inc *Incident) (send, adopted bool)
	// firstSender reports whether this vantage sends follow-ups (widened, part of).
	firstSender(e *Engine, key string) bool
	// holding: follow-ups wait (alone, not yet isolated).
	holding() bool
	// resolve sends, or waits for another vantage to send, a paged incident's resolve.
	resolve(e *Engine, now time.Time, inc *Incident)
	// sendPending sends resolves whose expected sender stayed silent.
	sendPending(e *Engine, now time.Time)
	// sent tells the others this vantage queued a trigger or a resolve.
	sent(e *Engine, now time.Time, inc *Incident, action string)
	// note is added to a trigger's summary ("sent by an isolated vantage"); "" for none.
	note(e *Engine) string
	// details is the peers' part of a notification's evidence; nil for none.
	details(e *Engine, inc *Incident) map[string]any
	// status is the fleet as this vantage sees it; nil alone.
	status(e *Engine) *FleetStatus
	// snapshot fills the peers' part of a status snapshot.
	snapshot(e *Engine, st *Status)
	// member is this vantage's name in the fleet's page records; "" alone.
	member(e *Engine) string
}

// solo is a lone vantage: its own states decide, and it sends everything itself.
type solo struct{}

var (
	_ peers = solo{}
	_ peers = (*fleetState)(nil)
)

func (solo) sync(*Engine) bool { return false }
func (solo) moved() bool       { return false }
func (solo) condition(_ string, s *TargetState) string {
	if s.State != StateFiring {
		return ""
	}
	return s.Condition
}
func (solo) mayTrigger(*Engine, time.Time, *Incident) (bool, bool) { return true, false }
func (solo) firstSender(*Engine, string) bool                      { return true }
func (solo) holding() bool                                         { return false }
func (solo) resolve(e *Engine, now time.Time, inc *Incident) {
	e.send(now, inc, notify.ActionResolve, "resolved")
}
func (solo) sendPending(*Engine, time.Time)             {}
func (solo) sent(*Engine, time.Time, *Incident, string) {}
func (solo) note(*Engine) string                        { return "" }
func (solo) details(*Engine, *Incident) map[string]any  { return nil }
func (solo) status(*Engine) *FleetStatus                { return nil }
func (solo) snapshot(*Engine, *Status)                  {}
func (solo) member(*Engine) string                      { return "" }
