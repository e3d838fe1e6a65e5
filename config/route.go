package config

import "slices"

// Facets are what routes and silences match an incident on.
type Facets struct {
	Scope    string // target, region, product or global
	Products []string
	Regions  []string
	Priority int
	Degraded bool // slow, not down
}

// Matches reports whether every non-empty list of m holds one of the incident's values.
func (m Match) Matches(f Facets) bool {
	if len(m.Scope) > 0 && !slices.Contains(m.Scope, f.Scope) {
		return false
	}
	if len(m.Product) > 0 && !anyIn(m.Product, f.Products) {
		return false
	}
	if len(m.Region) > 0 && !anyIn(m.Region, f.Regions) {
		return false
	}
	if len(m.Priority) > 0 && !slices.Contains(m.Priority, f.Priority) {
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

// RoutesFor is the routing rule: every route matching f, in order, until one without
// continue: true (Alertmanager's rule: first match wins unless told to go on). Under a
// degraded policy other than page, a degraded incident goes to chat and webhooks only,
// never to a pager; a route left with no notifier delivers nothing (a fallback alone
// is never tried) and is left out. The routes returned carry those lists.
//
// The router sends by this rule and Load warns by it, so the two cannot disagree.
func (c *Config) RoutesFor(f Facets, degradedPolicy string) []Route {
	var out []Route
	for _, route := range c.Routes {
		if !route.Match.Matches(f) {
			continue
		}
		if f.Degraded && degradedPolicy != "page" {
			route.Notify = c.withoutPagers(route.Notify)
			route.Fallback = c.withoutPagers(route.Fallback)
		}
		if len(route.Notify) > 0 {
			out = append(out, route)
		}
		if !route.Continue {
			break
		}
	}
	return out
}

func (c *Config) withoutPagers(names []string) []string {
	var out []string
	for _, n := range names {
		if nf := c.Notifiers[n]; nf != nil && !nf.IsPager() {
			out = append(out, n)
		}
	}
	return out
}
