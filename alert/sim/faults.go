package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/picket-dev/picket/probe"
)

// Selector picks targets: a region ("*" every region) and a product, "product/journey"
// or "*".
type Selector struct{ Region, Product string }

func (s Selector) String() string { return s.Product + "@" + s.Region }

// matches reports whether the target id product/journey@region is selected.
func (s Selector) matches(id string) bool {
	product, journey, region := splitID(id)
	if s.Region != "*" && s.Region != region {
		return false
	}
	switch {
	case s.Product == "*":
		return true
	case strings.Contains(s.Product, "/"):
		return s.Product == product+"/"+journey
	default:
		return s.Product == product
	}
}

// covers reports whether s selects every target o selects.
func (s Selector) covers(o Selector) bool {
	if s.Region != "*" && s.Region != o.Region {
		return false
	}
	switch {
	case s.Product == "*" || s.Product == o.Product:
		return true
	case o.Product == "*" || strings.Contains(s.Product, "/"):
		return false
	default:
		return strings.HasPrefix(o.Product, s.Product+"/")
	}
}

// platformFault is one scripted condition of the platform: from From on (virtual time),
// the selected targets answer with Pattern, one letter per run, repeated: U up,
// D down, G degraded (slow). Later faults override earlier ones where both select.
type platformFault struct {
	Sel     Selector
	Pattern string
	From    time.Duration
	Why     string // the failure reason the probes report
}

// Fault patterns.
const (
	PatternDown     = "D"
	PatternUp       = "U"
	PatternDegraded = "G"
)

// statusOf is what the target answers at virtual time at, on its run-th run since
// each fault began (a flap pattern advances per interval).
func statusOf(faults []platformFault, id string, at, interval time.Duration) (probe.Status, string) {
	for i := len(faults) - 1; i >= 0; i-- {
		f := faults[i]
		if at < f.From || !f.Sel.matches(id) {
			continue
		}
		n := int((at - f.From) / interval)
		switch f.Pattern[n%len(f.Pattern)] {
		case 'D':
			return probe.StatusDown, f.Why
		case 'G':
			return probe.StatusDegraded, ""
		default:
			return probe.StatusUp, ""
		}
	}
	return probe.StatusUp, ""
}

// PatternPlatform, in a path fault, mends the path: the vantage sees the platform as
// it is again.
const PatternPlatform = ""

// pathStatus is what one vantage's own path makes a target answer (FailFrom, HealFrom);
// ok false: the path is fine, the platform answers.
func pathStatus(faults []platformFault, id string, at, interval time.Duration) (probe.Status, string, bool) {
	for i := len(faults) - 1; i >= 0; i-- {
		f := faults[i]
		if at < f.From || !f.Sel.matches(id) {
			continue
		}
		if f.Pattern == PatternPlatform {
			return "", "", false
		}
		status, why := statusOf(faults[i:i+1], id, at, interval)
		return status, why, true
	}
	return "", "", false
}

// addFault adds f and drops the faults it hides for good (same or narrower selector,
// already begun), so that a long walk keeps a short list.
func addFault(faults []platformFault, f platformFault) []platformFault {
	keep := faults[:0]
	for _, old := range faults {
		if f.Sel.covers(old.Sel) && old.From <= f.From {
			continue
		}
		keep = append(keep, old)
	}
	return append(keep, f)
}

// result builds one probe result as a journey run would report it.
func result(id string, status probe.Status, why string, started time.Time) probe.Result {
	product, journey, region := splitID(id)
	r := probe.Result{Target: id, Product: product, Journey: journey, Region: region,
		RunID: fmt.Sprintf("%s-%d", id, started.UnixNano()), Started: started, Status: status, Tries: 1,
		Duration: 120 * time.Millisecond}
	switch status {
	case probe.StatusDown:
		r.Error = "step get: " + why
		r.FailedStep = "get"
		r.Duration = 5 * time.Second
	case probe.StatusDegraded:
		r.Duration = 4 * time.Second
	}
	return r
}

// splitID takes product, journey and region out of "product/journey@region".
func splitID(id string) (product, journey, region string) {
	pj, region, _ := strings.Cut(id, "@")
	product, journey, _ = strings.Cut(pj, "/")
	return product, journey, region
}
