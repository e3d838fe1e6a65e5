package alert

import (
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
	Runs        int        `json:"runs"`
	Fingerprint string     `json:"fingerprint"`
	// Cert is the latest result's certificate warning, apart from State (cert.go).
	Cert *CertWarning `json:"cert,omitempty"`
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
	from := s.State
	if from == "" {
		from = StateOK
		s.State = StateOK
	}
	s.Runs++
	s.Last = LastResult{Status: string(r.Status), Error: r.Error, FailedStep: r.FailedStep, At: r.Started, Duration: r.Duration, Tries: r.Tries}
	cond := condition(r, degradedPolicy)
	if cond != "" {
		s.LastError = r.Error
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
		case s.Failures >= t.FailureThreshold:
			s.State = StateFiring
		default:
			s.State = StatePending
		}
	} else {
		s.Failures = 0
		switch s.State {
		case StateFiring:
			s.Successes++
			if s.Successes >= t.SuccessThreshold {
				s.State = StateOK
				s.Condition = ""
				s.Successes = 0
			}
		default:
			s.State = StateOK
			s.Condition = ""
		}
	}
	if s.State == from {
		return Transition{}, false
	}
	s.Since = r.Started
	reason := r.Error
	if s.State == StateOK {
		reason = "recovered"
	}
	return Transition{Target: s.Target, From: from, To: s.State, At: r.Started, Reason: reason}, true
}
