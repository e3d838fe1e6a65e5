// Package sim is Picket's outage simulator: it drives the real alerting core (engine,
// router, outbox, bbolt store) in virtual time against a simulated platform and
// in-process receivers, so that hours of an outage run in milliseconds and the same
// seed gives the same run. Scenario tests script it (Sim.At(...).Fail(...)); seeded
// random walks (Walk) generate platforms, faults, silences, reloads, restarts, receiver
// faults and clock steps, and check the invariants (invariants.go) after every step.
package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/config"
)

// Platform is the simulated platform and the alerting config that watches it. It is
// turned into a real config.Config through YAML (Config), so that everything the core
// sees went through config.Parse like a file would.
type Platform struct {
	Regions  []string
	Products []Product
	// Defaults: 0 takes the value in brackets.
	Interval         time.Duration // [30s]
	FailureThreshold int           // [2]
	SuccessThreshold int           // [2]
	GroupWait        time.Duration // [one interval, the config's own default]; <0: 0s
	Degraded         string        // page | notify | ignore [notify]
	BlastRadius      config.BlastRadius
	FallbackAfter    time.Duration // [2m]
	Notifiers        []Notifier
	Routes           []Route
	Silences         []ConfigSilence
}

// Product is what customers buy; its journeys run in Regions (nil: every region).
type Product struct {
	Name     string
	Priority int
	Regions  []string
	Journeys []Journey
}

// Journey is one critical user journey. Edit is a version: changing it changes the
// journey's definition (and so its fingerprint), like an edited config would.
type Journey struct {
	Name     string
	Interval time.Duration // 0: the platform's
	Edit     int
}

// Notifier is a config notifier entry; Receiver names the in-process receiver that is
// its destination (several notifier names may point at one receiver: a rename).
type Notifier struct {
	Name     string
	Kind     string // pagerduty | slack | webhook
	Receiver string
}

// Route is a config route.
type Route struct {
	Match    config.Match
	Notify   []string
	Fallback []string
	Continue bool
}

// ConfigSilence is a silence of the config file (wall-clock window).
type ConfigSilence struct {
	Comment    string
	Start, End time.Time
	Match      config.Match
}

// Clone deep-copies p, so a reload can edit a copy.
func (p Platform) Clone() Platform {
	c := p
	c.Regions = slices.Clone(p.Regions)
	c.Products = make([]Product, len(p.Products))
	for i, pr := range p.Products {
		pr.Regions = slices.Clone(pr.Regions)
		pr.Journeys = slices.Clone(pr.Journeys)
		c.Products[i] = pr
	}
	c.Notifiers = slices.Clone(p.Notifiers)
	c.Routes = make([]Route, len(p.Routes))
	for i, r := range p.Routes {
		r.Notify, r.Fallback = slices.Clone(r.Notify), slices.Clone(r.Fallback)
		c.Routes[i] = r
	}
	c.Silences = slices.Clone(p.Silences)
	return c
}

// TargetIDs lists every target of the platform, sorted.
func (p Platform) TargetIDs() []string {
	var ids []string
	for _, pr := range p.Products {
		regions := pr.Regions
		if len(regions) == 0 {
			regions = p.Regions
		}
		for _, j := range pr.Journeys {
			for _, r := range regions {
				ids = append(ids, pr.Name+"/"+j.Name+"@"+r)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// notifierKind is the kind of the named notifier entry ("" when there is none).
func (p Platform) notifierKind(name string) string {
	for _, n := range p.Notifiers {
		if n.Name == name {
			return n.Kind
		}
	}
	return ""
}

// YAML renders the platform as a Picket config file, in a fixed order.
func (p Platform) YAML() string { return p.yaml("sim") }

func (p Platform) yaml(vantage string) string {
	var b strings.Builder
	interval := orDur(p.Interval, 30*time.Second)
	fmt.Fprintf(&b, "vantage: %s\n", vantage)
	fmt.Fprintf(&b, "defaults: {interval: %s, timeout: 5s, failure_threshold: %d, success_threshold: %d}\n",
		interval, orInt(p.FailureThreshold, 2), orInt(p.SuccessThreshold, 2))
	b.WriteString("alerting: {")
	fmt.Fprintf(&b, "degraded: %s, fallback_after: %s", orStr(p.Degraded, "notify"), orDur(p.FallbackAfter, 2*time.Minute))
	switch {
	case p.GroupWait < 0:
		b.WriteString(", group_wait: 0s")
	case p.GroupWait > 0:
		fmt.Fprintf(&b, ", group_wait: %s", p.GroupWait)
	}
	b.WriteString("}\nregions:\n")
	for _, r := range p.Regions {
		fmt.Fprintf(&b, "  %s: {vars: {api: %q}}\n", r, "http://"+r+".sim.invalid")
	}
	b.WriteString("products:\n")
	for _, pr := range p.Products {
		fmt.Fprintf(&b, "  - name: %s\n    priority: %d\n", pr.Name, orInt(pr.Priority, 1))
		if len(pr.Regions) > 0 {
			fmt.Fprintf(&b, "    regions: [%s]\n", strings.Join(pr.Regions, ", "))
		}
		b.WriteString("    journeys:\n")
		for _, j := range pr.Journeys {
			fmt.Fprintf(&b, "      - name: %s\n", j.Name)
			if j.Interval > 0 {
				fmt.Fprintf(&b, "        interval: %s\n", j.Interval)
			}
			// The edit number is part of the request: an edited journey is a changed one.
			fmt.Fprintf(&b, "        steps: [{name: get, http: {url: \"{{.region.api}}/%s/%s?v=%d\"}}]\n", pr.Name, j.Name, j.Edit)
		}
	}
	b.WriteString("notifiers:\n")
	for _, n := range p.Notifiers {
		dest := "http://127.0.0.1:9/" + n.Receiver // never contacted: receivers are in-process
		switch n.Kind {
		case KindPagerDuty:
			fmt.Fprintf(&b, "  %s: {pagerduty: {routing_key: %q, events_url: %q}}\n", n.Name, routingKey(n.Receiver), dest)
		case KindSlack:
			fmt.Fprintf(&b, "  %s: {slack: {webhook_url: %q}}\n", n.Name, dest)
		default:
			fmt.Fprintf(&b, "  %s: {webhook: {url: %q}}\n", n.Name, dest)
		}
	}
	b.WriteString("routes:\n")
	for _, r := range p.Routes {
		fmt.Fprintf(&b, "  - match: %s\n    notify: [%s]\n", matchYAML(r.Match), strings.Join(r.Notify, ", "))
		if len(r.Fallback) > 0 {
			fmt.Fprintf(&b, "    fallback: [%s]\n", strings.Join(r.Fallback, ", "))
		}
		if r.Continue {
			b.WriteString("    continue: true\n")
		}
	}
	br := p.BlastRadius
	fmt.Fprintf(&b, "blast_radius: {region_min_products: %d, product_min_regions: %d, global_min_regions: %d}\n",
		orInt(br.RegionMinProducts, 2), orInt(br.ProductMinRegions, 2), orInt(br.GlobalMinRegions, 2))
	if len(p.Silences) > 0 {
		b.WriteString("silences:\n")
		for _, s := range p.Silences {
			fmt.Fprintf(&b, "  - {comment: %q, start: %q, end: %q, match: %s}\n", s.Comment,
				s.Start.UTC().Format(time.RFC3339), s.End.UTC().Format(time.RFC3339), matchYAML(s.Match))
		}
	}
	return b.String()
}

// Config parses the platform's YAML like a config file.
func (p Platform) Config() (*config.Config, error) { return p.ConfigFor("sim") }

// ConfigFor is Config for one vantage of a fleet (the vantage names its pages).
func (p Platform) ConfigFor(vantage string) (*config.Config, error) {
	text := p.yaml(vantage)
	cfg, err := config.Parse(vantage+".yaml", []byte(text))
	if err != nil {
		return nil, fmt.Errorf("sim: platform config: %w\n%s", err, text)
	}
	return cfg, nil
}

func matchYAML(m config.Match) string {
	var parts []string
	if len(m.Scope) > 0 {
		parts = append(parts, "scope: ["+strings.Join(m.Scope, ", ")+"]")
	}
	if len(m.Product) > 0 {
		parts = append(parts, "product: ["+strings.Join(m.Product, ", ")+"]")
	}
	if len(m.Region) > 0 {
		parts = append(parts, "region: ["+strings.Join(m.Region, ", ")+"]")
	}
	if len(m.Priority) > 0 {
		ps := make([]string, len(m.Priority))
		for i, p := range m.Priority {
			ps[i] = fmt.Sprint(p)
		}
		parts = append(parts, "priority: ["+strings.Join(ps, ", ")+"]")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// routingKey makes a 32-character routing key of a receiver name (PagerDuty's length).
func routingKey(receiver string) string {
	k := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return 'x'
	}, receiver) + strings.Repeat("0", 32)
	return k[:32]
}

func orDur(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

func orInt(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func orStr(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
