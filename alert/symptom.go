package alert

import (
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// Symptoms: what a customer meets, in plain words, judged from a run's evidence.
const (
	SymptomNotLoading = "not loading"                      // no answer: refused, reset, timed out
	SymptomErrors     = "errors"                           // an answer, but an error or the wrong one
	SymptomSlow       = "slow"                             // it works, slower than degraded_after
	SymptomUnreadable = "writes accepted but not readable" // a write passed; reading it back did not, within the poll
)

// symptomOf classifies a run for the drafted customer update, and measures the
// freshness lag where the journey polls: how long written data took to become
// readable (a passing run), or the time it was not readable within (the poll's
// within: a failing read-back).
func symptomOf(t *config.Target, r *probe.Result) (symptom string, freshness time.Duration) {
	for _, s := range r.Steps {
		freshness = max(freshness, s.PollWait)
	}
	switch r.Status {
	case probe.StatusDegraded:
		return SymptomSlow, freshness
	case probe.StatusDown:
	default:
		return "", freshness
	}
	i := len(r.Steps) - 1
	if i < 0 {
		return SymptomNotLoading, 0
	}
	failed := r.Steps[i]
	if i > 0 && i < len(t.Steps) && t.Steps[i].Poll != nil {
		return SymptomUnreadable, t.Steps[i].Poll.Within
	}
	if !answered(failed) {
		return SymptomNotLoading, 0
	}
	return SymptomErrors, 0
}

// answerFacts are the facts a step of another kind than http records only once the
// other side answered (a DNS rcode, a TLS handshake, a gRPC status, a TCP line).
var answerFacts = []string{"rcode", "tls_version", "grpc_status", "lines"}

// answered: the failed step got an answer (a wrong one), rather than none at all.
func answered(s probe.StepResult) bool {
	if s.Kind == "http" || s.HTTPStatus != 0 {
		return s.HTTPStatus != 0
	}
	if s.Kind == "icmp" {
		return s.Info["received"] != "" && s.Info["received"] != "0"
	}
	for _, k := range answerFacts {
		if s.Info[k] != "" {
			return true
		}
	}
	return false
}
