package alert

import (
	"context"
	"log/slog"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Router picks the notifiers for an incident by the config's routing rule
// (config.RoutesFor), the same rule validate warns by.
type Router struct {
	cfg *config.Config
	// warned holds the incident keys already logged as reaching no notifier: once per
	// key and config, so a flapping slow journey does not fill the log.
	warned map[string]bool
}

// NewRouter routes by the routes of cfg.
func NewRouter(cfg *config.Config) *Router {
	return &Router{cfg: cfg, warned: map[string]bool{}}
}

// Deliveries are the notifier lists an incident goes to, one per route it reaches.
func (r *Router) Deliveries(inc *Incident, degradedPolicy string) []notify.Delivery {
	routes := r.cfg.RoutesFor(facets(inc), degradedPolicy)
	out := make([]notify.Delivery, 0, len(routes))
	for _, route := range routes {
		out = append(out, notify.Delivery{Notify: route.Notify, Fallback: route.Fallback, FallbackAfter: route.FallbackAfter})
	}
	return out
}

func facets(inc *Incident) config.Facets {
	return config.Facets{Scope: inc.Scope, Products: inc.Products, Regions: inc.Regions, Priority: inc.Priority,
		Degraded: warningOnly(inc.Condition)}
}

// whyUnrouted explains an incident that reaches no notifier. A degraded one that would
// be routed as an outage lost its pagers to the degraded policy: say so, since the
// config then looks right at a glance.
func (r *Router) whyUnrouted(inc *Incident, degradedPolicy string) string {
	if f := facets(inc); f.Degraded && degradedPolicy != "page" {
		f.Degraded = false
		if len(r.cfg.RoutesFor(f, degradedPolicy)) > 0 {
			return "alerting.degraded: " + degradedPolicy + " keeps degraded incidents from pagers, and every route " +
				"that matches it only pages; route it to a chat, email or webhook notifier, or set alerting.degraded: page"
		}
	}
	return "no route matches"
}

// unrouted notes on the timeline that inc reached no notifier, and logs it at Warn once
// per incident key with the reason (later ones at Debug).
func (e *Engine) unrouted(now time.Time, inc *Incident) {
	why := e.router.whyUnrouted(inc, e.cfg.Alerting.Degraded)
	inc.note(now, "unrouted", why)
	level := slog.LevelDebug
	if !e.router.warned[inc.Key] {
		e.router.warned[inc.Key] = true
		level = slog.LevelWarn
	}
	e.log.Log(context.Background(), level, "the incident reaches no notifier; nothing sent",
		"key", inc.Key, "scope", inc.Scope, "condition", inc.Condition, "reason", why)
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
