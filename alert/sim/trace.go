package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Trace sizes: enough to see how it came to be, short enough to read in a test log.
const (
	traceSteps     = 12
	traceEvents    = 30
	traceSent      = 20
	traceTimelines = 3
	traceTimeline  = 25
)

// trace is a compact account of the last things that happened: the script's last
// steps, what the engines queued, what the receivers got, and the engine's timeline of
// the incidents the subject (a target, a key, "key at receiver") is about.
func (s *Sim) trace(subject string) string {
	var b strings.Builder
	b.WriteString("  script:\n")
	for _, h := range tail(s.history, traceSteps) {
		fmt.Fprintf(&b, "    %s\n", h)
	}
	b.WriteString("  queued by the engines:\n")
	for _, sn := range tail(s.sent, traceSent) {
		fmt.Fprintf(&b, "    %s\n", sn)
	}
	b.WriteString("  receivers:\n")
	for _, ev := range tail(s.events(), traceEvents) {
		fmt.Fprintf(&b, "    %s\n", ev)
	}
	for _, key := range s.keysOf(subject) {
		s.writeTimeline(&b, key)
	}
	return b.String()
}

// events merges every receiver's log by virtual time.
func (s *Sim) events() []Event {
	var all []Event
	for _, r := range s.Receivers() {
		all = append(all, r.Events()...)
	}
	slices.SortStableFunc(all, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	return all
}

// keysOf finds the incident keys a violation's subject is about.
func (s *Sim) keysOf(subject string) []string {
	if key, _, _ := strings.Cut(subject, " at "); strings.HasPrefix(key, "picket/") {
		return []string{key}
	}
	var keys []string
	for _, v := range s.vantages {
		if v.down {
			continue
		}
		for _, inc := range v.engine.OpenIncidents() {
			if slices.Contains(inc.Targets, subject) && !slices.Contains(keys, inc.Key) {
				keys = append(keys, inc.Key)
			}
		}
	}
	return tail(keys, traceTimelines)
}

// writeTimeline prints an incident's timeline from every live vantage.
func (s *Sim) writeTimeline(b *strings.Builder, key string) {
	for _, v := range s.vantages {
		if v.down {
			continue
		}
		inc, ok, err := v.engine.FindIncident(key)
		if err != nil || !ok {
			fmt.Fprintf(b, "  %s on %s: no incident\n", key, v.name)
			continue
		}
		state := "open"
		if !inc.Open() {
			state = "closed"
		}
		fmt.Fprintf(b, "  %s on %s (%s; %s; targets %v):\n", key, v.name, state, incidentState(inc), inc.Targets)
		for _, ev := range tail(inc.Timeline, traceTimeline) {
			fmt.Fprintf(b, "    %s %-9s %s\n", ev.At.UTC().Format("15:04:05"), ev.Kind, ev.Text)
		}
	}
}

func tail[T any](xs []T, n int) []T {
	if len(xs) > n {
		return xs[len(xs)-n:]
	}
	return xs
}
