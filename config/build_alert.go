package config

import (
	"fmt"
	"net/url"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/picket-dev/picket/probe/tmpl"
)

func (b *builder) buildAlerting() {
	b.buildNotifiers()
	b.buildRoutes()
	br := b.f.BlastRadius
	b.cfg.BlastRadius = BlastRadius{
		RegionMinProducts: positiveOr(br.RegionMinProducts, 2),
		ProductMinRegions: positiveOr(br.ProductMinRegions, 2),
		GlobalMinRegions:  positiveOr(br.GlobalMinRegions, 2),
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"region_min_products", br.RegionMinProducts}, {"product_min_regions", br.ProductMinRegions}, {"global_min_regions", br.GlobalMinRegions}} {
		if k.v < 0 {
			b.d.errorf(b.d.at(&b.f.BlastRadius, k.key), "%s must be at least 1", k.key)
		}
	}
	a := b.f.Alerting
	b.cfg.Alerting = Alerting{
		Degraded:         orDefault(a.Degraded, "notify"),
		FallbackAfter:    pickDur(a.FallbackAfter, nil, DefaultFallbackAfter),
		StatusURL:        a.StatusURL,
		OutboxMaxEntries: pickInt(a.OutboxMaxEntries, nil, DefaultOutboxMaxEntries),
	}
	b.cfg.Alerting.GroupWait = b.defaultGroupWait()
	if a.GroupWait != nil {
		b.cfg.Alerting.GroupWait = *a.GroupWait
	}
	switch b.cfg.Alerting.Degraded {
	case "page", "notify", "ignore":
	default:
		b.d.errorf(b.d.at(&b.f.Alerting, "degraded"), "alerting.degraded must be page, notify or ignore, got %q", a.Degraded)
	}
	b.positiveDuration(&b.f.Alerting, "fallback_after", a.FallbackAfter)
	b.atLeast(&b.f.Alerting, "outbox_max_entries", a.OutboxMaxEntries, minOutboxMaxEntries)
	b.buildSilences()
	b.buildSelfCheck()
	if h := b.f.Heartbeat; h != nil {
		if h.URL == "" {
			b.d.errorf(b.d.at(h, ""), "heartbeat.url is required")
		} else {
			b.checkURL(h, "url", h.URL)
		}
		if h.Every <= 0 {
			b.d.errorf(b.d.at(h, ""), "heartbeat.every must be more than 0")
		}
		b.cfg.Heartbeat = h
	}
	if b.f.API.Token != "" {
		b.cfg.APIToken = b.secretValue(&b.f.API, "token", b.f.API.Token)
	}
}

// defaultGroupWait is one round of probing: by then every target of a failing region
// has been probed again, so the first page can say how wide the outage is.
func (b *builder) defaultGroupWait() time.Duration {
	wait := 30 * time.Second
	for _, t := range b.cfg.Targets {
		if t.Interval < wait {
			wait = t.Interval
		}
	}
	return wait
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// secretValue renders a template (usually "{{.secret.NAME}}") with only the secrets in
// reach, and wraps the result so it is never printed.
func (b *builder) secretValue(owner any, key, raw string) Secret {
	t, err := tmpl.Parse(key, raw)
	if err != nil {
		b.d.errorf(b.d.at(owner, key), "%s: %v", key, err)
		return Secret{}
	}
	v, err := t.Render(tmpl.Data{"secret": b.cfg.Secrets.templateData()})
	if err != nil {
		b.d.errorf(b.d.at(owner, key), "%s: %v", key, b.cfg.Secrets.Redact(err.Error()))
		return Secret{}
	}
	return NewSecret(v)
}

func (b *builder) checkURL(owner any, key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		b.d.errorf(b.d.at(owner, key), "%s: want an absolute http:// or https:// URL", key)
	}
}

func (b *builder) buildNotifiers() {
	b.cfg.Notifiers = map[string]*Notifier{}
	node := b.d.value(b.f, "notifiers")
	for _, name := range keysInOrder(node) {
		spec := b.f.Notifiers[name]
		at := keyAt(node, name)
		if spec == nil {
			b.d.errorf(at, "notifier %s: want one of %s", name, notifierKinds)
			continue
		}
		n := &Notifier{Name: name, Timeout: pickDur(spec.Timeout, nil, DefaultNotifierTimeout)}
		b.notifierTimeout(spec)
		kinds := 0
		if pd := spec.PagerDuty; pd != nil {
			kinds++
			n.PagerDuty = &PagerDuty{RoutingKey: b.secretValue(pd, "routing_key", pd.RoutingKey), EventsURL: pd.EventsURL}
			if pd.RoutingKey == "" {
				b.d.errorf(b.d.at(pd, ""), "notifier %s: pagerduty.routing_key is required", name)
			} else if k := n.PagerDuty.RoutingKey.Reveal(); k != "" && len(k) != 32 {
				b.d.errorf(b.d.at(pd, "routing_key"), "notifier %s: a PagerDuty routing key has 32 characters, this one has %d", name, len(k))
			}
			if pd.EventsURL != "" {
				b.checkURL(pd, "events_url", pd.EventsURL)
			}
		}
		kinds += b.buildChannels(name, spec, n)
		if kinds != 1 {
			b.d.errorf(at, "notifier %s: want exactly one of %s (got %d)", name, notifierKinds, kinds)
		}
		n.Rate = b.notifierRate(spec, n.Kind())
		b.cfg.Notifiers[name] = n
	}
}

var validScopes = map[string]bool{"target": true, "region": true, "product": true, "global": true}

func (b *builder) buildRoutes() {
	for _, r := range b.f.Routes {
		if r == nil {
			continue
		}
		route := Route{
			Match:         b.buildMatch(&r.Match),
			Notify:        b.notifierList(r, "notify", r.Notify),
			Fallback:      b.notifierList(r, "fallback", r.Fallback),
			FallbackAfter: pickDur(r.FallbackAfter, b.f.Alerting.FallbackAfter, DefaultFallbackAfter),
			Continue:      r.Continue,
		}
		if len(r.Notify) == 0 {
			b.d.errorf(b.d.at(r, ""), "a route needs notify: with at least one notifier")
		}
		b.positiveDuration(r, "fallback_after", r.FallbackAfter)
		b.cfg.Routes = append(b.cfg.Routes, route)
	}
}

func (b *builder) notifierList(owner any, key string, names []string) []string {
	list := b.d.at(owner, key)
	for i, name := range names {
		if _, ok := b.f.Notifiers[name]; !ok {
			b.d.errorf(item(list, i), "notifier %q is not defined under notifiers:", name)
		}
	}
	return names
}

func item(list *yaml.Node, i int) *yaml.Node {
	if list != nil && list.Kind == yaml.SequenceNode && i < len(list.Content) {
		return list.Content[i]
	}
	return list
}

func (b *builder) buildMatch(m *MatchSpec) Match {
	for i, s := range m.Scope {
		if !validScopes[s] {
			b.d.errorf(item(b.d.at(m, "scope"), i), "scope %q: want target, region, product or global", s)
		}
	}
	products := map[string]bool{}
	for _, p := range b.f.Products {
		if p != nil {
			products[p.Name] = true
		}
	}
	for i, p := range m.Product {
		if !products[p] {
			b.d.errorf(item(b.d.at(m, "product"), i), "product %q is not defined under products:", p)
		}
	}
	for i, r := range m.Region {
		if b.regions[r] == nil {
			b.d.errorf(item(b.d.at(m, "region"), i), "region %q is not defined under regions:", r)
		}
	}
	for i, p := range m.Priority {
		if p < 1 || p > 5 {
			b.d.errorf(item(b.d.at(m, "priority"), i), "priority %d: want 1 to 5", p)
		}
	}
	return Match{Scope: m.Scope, Product: m.Product, Priority: m.Priority, Region: m.Region}
}

func (b *builder) buildSilences() {
	for _, s := range b.f.Silences {
		if s == nil {
			continue
		}
		start, err1 := time.Parse(time.RFC3339, s.Start)
		if err1 != nil {
			b.d.errorf(b.d.at(s, "start"), "silence start %q: want an RFC 3339 time like 2026-01-02T03:04:05Z", s.Start)
		}
		end, err2 := time.Parse(time.RFC3339, s.End)
		if err2 != nil {
			b.d.errorf(b.d.at(s, "end"), "silence end %q: want an RFC 3339 time like 2026-01-02T03:04:05Z", s.End)
		}
		if err1 == nil && err2 == nil && !end.After(start) {
			b.d.errorf(b.d.at(s, "end"), "silence ends (%s) before it starts (%s)", s.End, s.Start)
		}
		b.cfg.Silences = append(b.cfg.Silences, Silence{Comment: s.Comment, Start: start, End: end, Match: b.buildMatch(&s.Match)})
	}
}

func (b *builder) buildSelfCheck() {
	sc := b.f.SelfCheck
	if sc == nil {
		return
	}
	if len(sc.Targets) == 0 {
		b.d.errorf(b.d.at(sc, ""), "self_check.targets: list at least one target that shares nothing with the platform")
	}
	for i, t := range sc.Targets {
		if u, err := url.Parse(t); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp") || u.Host == "" {
			b.d.errorf(item(b.d.at(sc, "targets"), i), "self_check target %q: want http://, https:// or tcp://host:port", t)
		}
	}
	// 0 would stop a running self-check (no period) or fail every round (no time).
	for key, v := range map[string]*time.Duration{"interval": sc.Interval, "timeout": sc.Timeout} {
		if v != nil && *v <= 0 {
			b.d.errorf(b.d.at(sc, key), "self_check.%s must be more than 0", key)
		}
	}
	minOK := sc.MinOK
	if minOK == 0 {
		minOK = len(sc.Targets) - len(sc.Targets)/2 // impaired when most fail
	}
	if minOK < 0 || minOK > len(sc.Targets) {
		b.d.errorf(b.d.at(sc, "min_ok"), "self_check.min_ok must be between 1 and %d", len(sc.Targets))
	}
	b.cfg.SelfCheck = &SelfCheck{
		Targets:  sc.Targets,
		Interval: pickDur(sc.Interval, nil, 30*time.Second),
		Timeout:  pickDur(sc.Timeout, nil, 5*time.Second),
		MinOK:    minOK,
		Notify:   b.notifierList(sc, "notify", sc.Notify),
	}
}

// String shows a notifier without its secrets.
func (n *Notifier) String() string { return fmt.Sprintf("%s (%s)", n.Name, n.Kind()) }

// notifierTimeout refuses a timeout the outbox could not honour sensibly: none at
// all, or one so long that a hung receiver would hold its pages (and their fallback,
// which counts from the first failure) for longer than MaxNotifierTimeout.
func (b *builder) notifierTimeout(spec *NotifierSpec) {
	switch t := spec.Timeout; {
	case t == nil:
	case *t <= 0:
		b.d.errorf(b.d.at(spec, "timeout"), "timeout must be more than 0")
	case *t > MaxNotifierTimeout:
		b.d.errorf(b.d.at(spec, "timeout"), "timeout %s is over the maximum of %s: a hung receiver would hold its pages, and their fallback, that long",
			*t, MaxNotifierTimeout)
	}
}

// notifierRate is the pace of the notifier's destination: its own rate, else its
// kind's default.
func (b *builder) notifierRate(spec *NotifierSpec, kind string) Rate {
	if spec.Rate == "" {
		return DefaultRate(kind)
	}
	r, err := ParseRate(spec.Rate)
	if err != nil {
		b.d.errorf(b.d.at(spec, "rate"), "rate: %v", err)
	}
	return r
}
