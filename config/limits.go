package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Notifier limits and the outbox bound.
const (
	DefaultNotifierTimeout = 10 * time.Second
	// MaxNotifierTimeout bounds a notifier's timeout: its attempts are honoured for
	// that long (a receiver that answers 202 after 15 s must not be cut at 10 s and
	// paged again), but a hung receiver must not hold a page for longer.
	MaxNotifierTimeout = 2 * time.Minute
	maxRateEvents      = 10000
	maxRatePeriod      = time.Hour

	DefaultOutboxMaxEntries = 10000
	// minOutboxMaxEntries keeps a bound from shedding the pages of an ordinary day.
	minOutboxMaxEntries = 100
)

// Rate is a notifier destination's pace: at most Events requests in any window of Per.
// The zero Rate is unlimited.
type Rate struct {
	Events int
	Per    time.Duration
}

// DefaultRate is a kind's pace when the notifier sets none: PagerDuty's documented
// 120 events per minute per integration key, and as much for Opsgenie (whose limits
// depend on the plan: set rate to yours); Slack's one message per second per webhook
// or channel (60 a minute, never in a burst), and as much for a Teams channel;
// Exchange Online's 30 messages a minute for mail; 600 a minute for a webhook.
func DefaultRate(kind string) Rate {
	switch kind {
	case "pagerduty", "opsgenie":
		return Rate{Events: 120, Per: time.Minute}
	case "email":
		return Rate{Events: 30, Per: time.Minute}
	case "slack", "teams":
		return Rate{Events: 1, Per: time.Second}
	case "webhook":
		return Rate{Events: 600, Per: time.Minute}
	}
	return Rate{}
}

// ParseRate reads EVENTS/PERIOD, the period being s, m, h or a Go duration ("120/m",
// "1/s", "10/30s"), or "unlimited".
func ParseRate(s string) (Rate, error) {
	if strings.TrimSpace(s) == "unlimited" {
		return Rate{}, nil
	}
	events, period, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(strings.TrimSpace(events))
	if !ok || err != nil || n < 1 || n > maxRateEvents {
		return Rate{}, fmt.Errorf("want EVENTS/PERIOD with 1 to %d events, such as 120/m, or unlimited; got %q", maxRateEvents, s)
	}
	per, err := ratePeriod(strings.TrimSpace(period))
	if err != nil || per < time.Second || per > maxRatePeriod {
		return Rate{}, fmt.Errorf("want a period of s, m, h or a duration from 1s to 1h, such as 120/m or 10/30s; got %q", s)
	}
	return Rate{Events: n, Per: per}, nil
}

func ratePeriod(p string) (time.Duration, error) {
	switch p {
	case "s":
		return time.Second, nil
	case "m":
		return time.Minute, nil
	case "h":
		return time.Hour, nil
	}
	return time.ParseDuration(p)
}

func (r Rate) String() string {
	switch {
	case r.Events <= 0 || r.Per <= 0:
		return "unlimited"
	case r.Per == time.Second:
		return fmt.Sprintf("%d/s", r.Events)
	case r.Per == time.Minute:
		return fmt.Sprintf("%d/m", r.Events)
	case r.Per == time.Hour:
		return fmt.Sprintf("%d/h", r.Events)
	}
	return fmt.Sprintf("%d/%s", r.Events, r.Per)
}
