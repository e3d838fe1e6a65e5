package alert

import (
	"slices"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Router picks the notifiers for an incident from the config's routes.
type Router struct {
	routes    []config.Route
	notifiers map[string]*config.Notifier
}

// NewRouter compiles the routes of cfg.
func NewRouter(cfg *config.Config) *Router {
	return &Router{routes: cfg.Routes, notifiers: cfg.Notifiers}
}

// Deliveries are the notifier lists an incident goes to: every matching route until one
// without continue: true (Alertmanager's rule: first match wins unless told to go on).
// A degraded or certificate incident under the "notify" policy goes to chat and
// webhooks only, never to a pager.
func (r *Router) Deliveries(inc *Incident, degradedPolicy string) []notify.Delivery {
	var out []notify.Delivery
	for _, route := range r.routes {
		if !matches(route.Match, inc.Scope, inc.Products, inc.Regions, inc.Priority) {
			continue
		}
		d := notify.Delivery{Notify: route.Notify, Fallback: route.Fallback, FallbackAfter: route.FallbackAfter}
		if warningOnly(inc.Condition) && degradedPolicy != "page" {
			d.Notify = r.withoutPagers(d.Notify)
			d.Fallback = r.withoutPagers(d.Fallback)
		}
		if len(d.Notify) > 0 {
			out = append(out, d)
		}
		if !route.Continue {
			break
		}
	}
	return out
}

func (r *Router) withoutPagers(names []string) []string {
	var out []string
	for _, n := range names {
		if nf := r.notifiers[n]; nf != nil && nf.PagerDuty == nil {
			out = append(out, n)
		}
	}
	return out
}

// matches: every non-empty list of m must hold one of the incident's values.
func matches(m config.Match, scope string, products, regions []string, priority int) bool {
	if len(m.Scope) > 0 && !slices.Contains(m.Scope, scope) {
		return false
	}
	if len(m.Product) > 0 && !anyIn(m.Product, products) {
		return false
	}
	if len(m.Region) > 0 && !anyIn(m.Region, regions) {
		return false
	}
	if len(m.Priority) > 0 && !slices.Contains(m.Priority, priority) {
		return false
	}
	return true
}

func anyIn(want, have []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// Severity from scope and priority: a region or the whole platform down is critical;
// a product down everywhere is critical for the most important products.
func Severity(inc *Incident) string {
	if warningOnly(inc.Condition) {
		return notify.SeverityWarning
	}
	switch inc.Scope {
	case ScopeGlobal, ScopeRegion:
		return notify.SeverityCritical
	case ScopeProduct:
		if inc.Priority <= 1 {
			return notify.SeverityCritical
		}
		return notify.SeverityError
	}
	if inc.Priority <= 1 {
		return notify.SeverityError
	}
	return notify.SeverityWarning
}

// Silence is a window in which matching incidents are recorded but not sent.
type Silence struct {
	ID      string       `json:"id"`
	Comment string       `json:"comment"`
	Start   time.Time    `json:"start"`
	End     time.Time    `json:"end"`
	Match   config.Match `json:"match"`
	Creator string       `json:"creator,omitempty"`
}

// Active reports whether the silence is in force at now.
func (s Silence) Active(now time.Time) bool { return !now.Before(s.Start) && now.Before(s.End) }

// silencedBy finds the silence that mutes inc: a silence mutes only what it covers, so
// an incident is muted when each of its targets is covered by an active silence whose
// scope list (if any) holds the incident's scope. A silence of one region never mutes a
// GLOBAL page of which another region is part. It returns the silence that covers the
// first target (the one the timeline names), or nil.
func silencedBy(silences []Silence, inc *Incident, now time.Time) *Silence {
	var first *Silence
	for _, target := range inc.Targets {
		s := coveringSilence(silences, inc, target, now)
		if s == nil {
			return nil
		}
		if first == nil {
			first = s
		}
	}
	return first
}

// coveringSilence is the first active silence covering one target of inc.
func coveringSilence(silences []Silence, inc *Incident, target string, now time.Time) *Silence {
	product, region := splitTarget(target)
	for i := range silences {
		s := &silences[i]
		if s.Active(now) && matches(s.Match, inc.Scope, []string{product}, []string{region}, inc.Priority) {
			return s
		}
	}
	return nil
}
