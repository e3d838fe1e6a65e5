// Package notify tells the outside world about incidents: one Notifier per channel
// (PagerDuty, Slack, a generic webhook), and a durable outbox that retries with backoff
// and falls back to other notifiers. It knows nothing of probes: only the Notification
// it is handed.
package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Actions of a notification (PagerDuty's event_action where it has one).
const (
	ActionTrigger = "trigger"
	ActionResolve = "resolve"
)

// Severities, PagerDuty's names.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Notification is one thing to tell: an incident opened (trigger, also used to update an
// open incident's details) or closed (resolve). It carries no secret.
type Notification struct {
	ID        string         `json:"id"`     // unique per notification; the outbox key stem
	Action    string         `json:"action"` // trigger | resolve
	DedupKey  string         `json:"dedup_key"`
	Scope     string         `json:"scope"`              // target | region | product | global | impaired | test
	Subject   string         `json:"subject"`            // region, product or target id; "" for global
	Priority  int            `json:"priority,omitempty"` // the incident's: 1 most important, 0 unknown (a notice)
	Summary   string         `json:"summary"`            // scope first: "[REGION eu1] ..."
	Severity  string         `json:"severity"`
	Source    string         `json:"source"`    // the vantage
	Component string         `json:"component"` // the product, when one
	Group     string         `json:"group"`     // the region, when one
	Class     string         `json:"class"`     // the journey, when one
	Details   map[string]any `json:"details"`   // evidence: targets, since, last errors, timings
	Links     []Link         `json:"links,omitempty"`
	Images    []Image        `json:"images,omitempty"` // shown by receivers that take images (PagerDuty: HTTPS only)
	Created   time.Time      `json:"created"`
	// Opened is when the incident opened (zero for notices): a fleet tells a resolve of
	// this incident from one of an earlier incident with the same key.
	Opened time.Time `json:"opened,omitzero"`
}

// Link points the on-call at more (the status page, the incident's timeline).
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Image is a picture of the failure (a browser step's screenshot), linked.
type Image struct {
	Src  string `json:"src"`
	Href string `json:"href,omitempty"`
	Alt  string `json:"alt,omitempty"`
}

// Notifier delivers notifications to one channel. Notify returns nil only when the
// receiver accepted the notification. An error wrapped with Permanent is not retried
// (a 400: the same request will fail the same way); any other error is retried.
type Notifier interface {
	Name() string
	Kind() string
	Notify(ctx context.Context, n Notification) error
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or what it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfterError asks the outbox to wait at least After before the next try (HTTP 429
// or 503 with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait a failure asked for, or 0.
func RetryAfter(err error) time.Duration {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After
	}
	return 0
}
