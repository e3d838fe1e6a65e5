// Package probe runs journeys against targets: one file per protocol, a journey runner
// that strings steps together, and the scheduler. It knows nothing of alerting.
package probe

import (
	"time"
)

// Status is the outcome of one run.
type Status string

const (
	StatusUp       Status = "up"
	StatusDegraded Status = "degraded"
	StatusDown     Status = "down"
)

// Phases are the timings of one request, summed over redirects. Names follow
// blackbox_exporter's phases where they mean the same thing.
type Phases struct {
	DNS        time.Duration // resolve
	Connect    time.Duration
	TLS        time.Duration
	Processing time.Duration // request written -> first response byte
	Transfer   time.Duration // first byte -> body read
	TTFB       time.Duration // request start -> first response byte
}

// StepResult is what one step of a journey did.
type StepResult struct {
	Name       string
	Kind       string
	Status     Status // up or down
	HTTPStatus int
	Duration   time.Duration // of the last attempt
	Phases     Phases
	Error      string
	// Attempts is how many times a polled step ran; PollWait is how long it took until
	// its expectations held (the freshness of a write-then-read journey).
	Attempts   int
	PollWait   time.Duration
	CertExpiry time.Time // earliest expiry in the peer chain, zero without TLS
	BodyBytes  int64
	// Info holds facts of non-HTTP steps for output: rcode and answers, TLS version and
	// cipher, gRPC health status, packet loss and round trips.
	Info map[string]string
}

// Result is one run of a target.
type Result struct {
	Target     string
	Product    string
	Journey    string
	Region     string
	RunID      string
	Started    time.Time
	Duration   time.Duration
	Status     Status
	Error      string // the first failure, with the step that failed
	FailedStep string
	Tries      int // 1 + the retries it took
	Steps      []StepResult
}

// Up reports whether the run counts as passing (degraded is a pass with a warning).
func (r *Result) Up() bool { return r.Status == StatusUp || r.Status == StatusDegraded }
