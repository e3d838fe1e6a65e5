package alert

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// State is a target's alert state.
type State string

const (
	StateOK      State = "ok"
	StatePending State = "pending"
	StateFiring  State = "firing"
)

// Conditions a firing target can be in.
const (
	ConditionDown     = "down"
	ConditionDegraded = "degraded"
)

// LastResult is the part of a result that alerting keeps.
type LastResult struct {
	Status     string        `json:"status"`
	Error      string        `json:"error,omitempty"`
	FailedStep string        `json:"failed_step,omitempty"`
	At         time.Time     `json:"at"`
	Duration   time.Duration `json:"duration"`
	Tries      int           `json:"tries"`
	// Symptom is what a customer met, in plain words (symptom.go); Freshness the
	// measured freshness lag of a polled read-back. For the drafted customer update.
	Symptom   string        `json:"symptom,omitempty"`
	Freshness time.Duration `json:"freshness,omitempty"`
}

// TargetState is the alert state of one target; it is persisted, so that a restart
// neither forgets a firing target nor re-counts its threshold.
type TargetState struct {
	Target      string     `json:"target"`
	Product     string     `json:"product"`
	Journey     string     `json:"journey"`
	Region      string     `json:"region"`
	State       State      `json:"state"`
	Condition   string     `json:"condition,omitempty"` // while pending or firing
	Failures    int        `json:"failures"`            // consecutive failing runs
	Successes   int        `json:"successes"`           // consecutive passing runs while firing
	Since       time.Time  `json:"since"`               // the current state began
	FailingFrom time.Time  `json:"failing_from,omitempty"`
	Last        LastResult `json:"last"`
	LastError   string     `json:"last_error,omitempty"` // the last failure's reason, kept after recovery
	// LastScreenshot is the last failure's screenshot (a browser step's PNG in the
	// state folder's screenshots/), kept after recovery; "" when it left none.
	LastScreenshot string `json:"last_screenshot,omitempty"`
	Runs           int    `json:"runs"`
	Fingerprint    string `json:"fingerprint"`
	// Recent holds the last runs' outcomes, newest in bit 0 (1: failed), for the
	// failure window and flap detection; RecentLen counts the bits in use.
	Recent    uint64 `json:"recent,omitempty"`
	RecentLen int    `json:"recent_len,omitempty"`
	// Flapping: the target fired again within the window of recovering. It stays
	// firing until a whole window of runs passes, so a flap pages once, resolves once.
	Flapping bool `json:"flapping,omitempty"`
	// RecoveredAt is when it last went firing → ok (zero: never). A time, not a run
	// count: runs are not saved on every run, times survive a restart.
	RecoveredAt time.Time `json:"recovered_at,omitzero"`
	// recovered is RecoveredAt with this process's monotonic reading, when it recovered
	// while this process ran: a wall-clock step must not make a flap look old (or new).
	recovered moment
	// seen is when this process applied its latest result (Last.At with the monotonic
	// reading): how old a verdict is must not jump with the wall clock.
	seen moment
	// Cert is the latest result's certificate warning, apart from State (cert.go).
	Cert *CertWarning `json:"cert,omitempty"`
}

// record pushes one outcome into the recent runs.
func (s *TargetState) record(failed bool) {
	s.Recent <<= 1
	if failed {
		s.Recent |= 1
	}
	s.RecentLen = min(s.RecentLen+1, config.MaxWindowRuns)
}

// windowFailures counts failures among the last n runs.
func (s *TargetState) windowFailures(n int) int {
	count := 0
	for i := 0; i < min(n, s.RecentLen); i++ {
		if s.Recent&(1<<i) != 0 {
			count++
		}
	}
	return count
}

// windowFires: the failure window holds enough failures to fire.
func (s *TargetState) windowFires(w config.Window) bool {
	return w.Failures > 0 && s.windowFailures(w.Runs) >= w.Failures
}

// Transition is one change of state, for the timeline and the logs.
type Transition struct {
	Target string    `json:"target"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// condition classifies a result under the degraded policy: "" when it passes.
func condition(r *probe.Result, degradedPolicy string) string {
	switch r.Status {
	case probe.StatusDown:
		return ConditionDown
	case probe.StatusDegraded:
		if degradedPolicy == "ignore" {
			return ""
		}
		return ConditionDegraded
	}
	return ""
}

// Apply moves the state by one result, with the target's thresholds. It returns the
// transition when the state changed.
func (s *TargetState) Apply(t *config.Target, r *probe.Result, degradedPolicy string) (Transition, bool) {
	return s.applyAt(t, r, degradedPolicy, wallMoment(r.Started))
}

// applyAt is Apply with the moment the result is judged at (the engine's clock, with
// its monotonic reading).
func (s *TargetState) applyAt(t *config.Target, r *probe.Result, degradedPolicy string, now moment) (Transition, bool) {
	now.wall = r.Started // persisted times are the results' own
	s.seen = now
	from := s.State
	if from == "" {
		from = StateOK
		s.State = StateOK
	}
	s.Runs++
	s.Last = LastResult{Status: string(r.Status), Error: r.Error, FailedStep: r.FailedStep, At: r.Started, Duration: r.Duration, Tries: r.Tries}
	s.Last.Symptom, s.Last.Freshness = symptomOf(t, r)
	cond := condition(r, degradedPolicy)
	s.record(cond != "")
	if cond != "" {
		s.fail(t, r, cond, now)
	} else {
		s.pass(t, r, now)
	}
	if s.State == from {
		return Transition{}, false
	}
	s.Since = r.Started
	reason := r.Error
	switch {
	case s.State == StateOK:
		reason = "recovered"
	case s.State == StateFiring && s.Flapping:
		reason = fmt.Sprintf("flapping (failing again within %d runs of recovering): %s", t.FailureWindow.Runs, r.Error)
	}
	return Transition{Target: s.Target, From: from, To: s.State, At: r.Started, Reason: reason}, true
}

// fail counts a failing run: the target fires after failure_threshold failures in a
// row, or failure_window failures of its last runs. Firing again soon after recovering
// is flapping.
func (s *TargetState) fail(t *config.Target, r *probe.Result, cond string, now moment) {
	s.LastError = r.Error
	s.LastScreenshot = r.Screenshot()
	s.Successes = 0
	s.Failures++
	if s.Failures == 1 {
		s.FailingFrom = r.Started
	}
	// Down outranks degraded: a firing target escalates, never de-escalates while failing.
	if s.Condition != ConditionDown {
		s.Condition = cond
	}
	switch {
	case s.State == StateFiring:
	case s.Failures >= t.FailureThreshold || s.windowFires(t.FailureWindow):
		s.State = StateFiring
		window := time.Duration(t.FailureWindow.Runs) * t.Interval
		if !s.RecoveredAt.IsZero() && s.recovered.orPersisted(s.RecoveredAt).since(now) <= window && t.FailureWindow.Failures > 0 {
			s.Flapping = true
		}
	default:
		s.State = StatePending
	}
}

// pass counts a passing run: a firing target recovers after success_threshold passes
// in a row; a flapping one only after a whole window of passes, so that it resolves
// once, when it is stable.
func (s *TargetState) pass(t *config.Target, r *probe.Result, now moment) {
	s.Failures = 0
	if s.State != StateFiring {
		s.State, s.Condition = StateOK, ""
		return
	}
	s.Successes++
	need := t.SuccessThreshold
	if s.Flapping {
		need = max(need, t.FailureWindow.Runs)
	}
	if s.Successes < need {
		return
	}
	s.State, s.Condition, s.Successes, s.Flapping = StateOK, "", 0, false
	s.RecoveredAt, s.recovered = r.Started, now
}
