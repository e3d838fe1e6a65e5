// Package probe runs journeys against targets: one file per protocol, a journey runner
// that strings steps together, and the scheduler. It knows nothing of alerting.
package probe

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/probe/expect"
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
	// CertWarning is set when cert_min_days finds the certificate valid but too close to
	// expiry: a warning that leaves Status as it is.
	CertWarning *CertWarning
	BodyBytes   int64
	// Screenshot is the file name of the PNG a failed browser step left in the
	// screenshot folder ("" for none); Info["screenshot"] has its path.
	Screenshot string
	// Info holds facts of non-HTTP steps for output: rcode and answers, TLS version and
	// cipher, gRPC health status, packet loss and round trips.
	Info map[string]string
	// Wire is what the step saw of the protocol, for the series blackbox_exporter has.
	Wire Wire
}

// Wire is what one attempt of a step saw of the protocol: the facts blackbox_exporter
// exports as probe_http_version, probe_http_ssl, probe_http_redirects,
// probe_tls_version_info, probe_dns_*_rrs and probe_grpc_status_code. A value, so that
// keeping it costs a probe no allocation; zero values are "not seen".
type Wire struct {
	HTTPVersion float64 // of the final answer: 1, 1.1, 2; 0 without an answer
	HTTPSSL     bool    // the final answer came over TLS
	Redirects   int     // redirects followed to the final answer
	TLSVersion  string  // "1.2", "1.3"; empty without a completed handshake
	// The record counts of a dns step's answer (all 0 without an answer).
	DNSAnswers, DNSAuthority, DNSAdditional int
	// GRPCCode is the gRPC status code of a grpc step's health call (0 OK; 14
	// Unavailable when no connection; 4 DeadlineExceeded), as grpc-go's codes number them.
	GRPCCode int
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
	// CertWarnings are the steps' certificates near expiry (cert_min_days), in step
	// order. They are warnings, not failures: they change neither Status nor Error.
	CertWarnings []CertWarning
}

// CertWarning is a certificate that is still valid but expires sooner than a step's
// cert_min_days asks. An expired or otherwise invalid certificate is a failure instead.
type CertWarning struct {
	Step     string
	NotAfter time.Time // the leaf certificate's expiry
	DaysLeft int       // whole days left when the step ran
	MinDays  int       // what cert_min_days asks
	Subject  string    // the leaf's common name
	Issuer   string    // its issuer's common name
}

// Message says the warning in one line, like a failure reason:
// "step get: certificate expires in 5 days (2026-12-08), want at least 14".
func (w CertWarning) Message() string {
	return fmt.Sprintf("step %s: certificate expires in %s (%s), want at least %d", w.Step, expect.Days(w.DaysLeft),
		w.NotAfter.UTC().Format(time.DateOnly), w.MinDays)
}

// EarliestCertWarning is the warning of the certificate that expires first, nil when
// the run has none.
func (r *Result) EarliestCertWarning() *CertWarning {
	var first *CertWarning
	for i := range r.CertWarnings {
		if w := &r.CertWarnings[i]; first == nil || w.NotAfter.Before(first.NotAfter) {
			first = w
		}
	}
	return first
}

// Screenshot is the failed step's screenshot file name, "" when it has none.
func (r *Result) Screenshot() string {
	for i := range r.Steps {
		if s := &r.Steps[i]; s.Name == r.FailedStep && s.Status != StatusUp {
			return s.Screenshot
		}
	}
	return ""
}

// Up reports whether the run counts as passing (degraded is a pass with a warning).
func (r *Result) Up() bool { return r.Status == StatusUp || r.Status == StatusDegraded }
