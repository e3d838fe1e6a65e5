package notify

import (
	"fmt"
	"time"
)

// Rate is how many requests a destination takes: at most Events in any window of Per
// (PagerDuty documents 120 events per minute per integration key; Slack one message
// per second per webhook). The zero Rate does not pace.
type Rate struct {
	Events int
	Per    time.Duration
}

// Paced reports whether r limits anything.
func (r Rate) Paced() bool { return r.Events > 0 && r.Per > 0 }

func (r Rate) String() string {
	if !r.Paced() {
		return "unpaced"
	}
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.Events)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.Events)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.Events)
	}
	return fmt.Sprintf("%d/%s", r.Events, r.Per)
}

// Limits are what a notifier says about its destination, for the outbox.
type Limits struct {
	// Timeout bounds one attempt; 0: the outbox's AttemptTimeout. The outbox honours
	// it, longer or shorter than its own: a receiver that answers 202 after 15 s to a
	// notifier configured for 40 s must not be cut at 10 s and sent the page again.
	Timeout time.Duration
	// Rate paces every notifier with the same destination (Identifier) together.
	Rate Rate
}

// Limited is implemented by a notifier that states its Limits.
type Limited interface {
	Limits() Limits
}

// limitsOf is n's Limits, or none.
func limitsOf(n Notifier) Limits {
	if l, ok := n.(Limited); ok {
		return l.Limits()
	}
	return Limits{}
}
