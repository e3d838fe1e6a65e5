package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Warning is the text of a warning: FILE:LINE:COL: warning: message.
func (e Error) Warning() string {
	return fmt.Sprintf("%s:%d:%d: warning: %s", e.File, e.Line, e.Column, e.Msg)
}

// warnings finds what loads but will not work as it reads. Run on a config that
// built without errors.
func (b *builder) warnings() []Error {
	var out []Error
	if lost := b.unroutedDegraded(); lost != "" {
		out = append(out, b.d.errorAt(b.routesNode(), fmt.Sprintf("degraded incidents of %s reach no notifier "+
			"(each is dropped as unrouted): alerting.degraded: notify keeps them from pagers, and the "+
			"routes their outages take have no notifier but pagers; add a chat, email or webhook one, or set "+
			"alerting.degraded: page or ignore", lost)))
	}
	if b.f.PublicListen != "" {
		out = append(out, b.d.errorAt(keyAt(b.d.maps[b.f], "public_listen"), "public_listen is deprecated: write public: {listen: "+
			strconv.Quote(b.f.PublicListen)+"}; it serves the public status page (customers' components, no operator detail), "+
			"while the operators' page and API stay on listen"))
	}
	if w, ok := b.concurrencyWarning(); ok {
		out = append(out, w)
	}
	if w, ok := b.browserPoolWarning(); ok {
		out = append(out, w)
	}
	return append(out, b.slackChannelWarnings()...)
}

// slackChannelWarnings: an incoming webhook ignores the channel it is given, so a
// channel: beside webhook_url reads as a choice that is not kept.
func (b *builder) slackChannelWarnings() []Error {
	var out []Error
	for _, name := range keysInOrder(b.d.value(b.f, "notifiers")) {
		spec := b.f.Notifiers[name]
		if spec == nil || spec.Slack == nil || spec.Slack.WebhookURL == "" || spec.Slack.Channel == "" {
			continue
		}
		out = append(out, b.d.errorAt(b.d.at(spec.Slack, "channel"), slackWebhookChannel(name)))
	}
	return out
}

// concurrencyWarning: concurrency below the runs in flight while every target hangs
// reads as a limit, but the scheduler does not keep it (probe.NewScheduler): a fixed
// pool that small let hung targets delay every other target's verdict.
func (b *builder) concurrencyWarning() (Error, bool) {
	need, have := NeededConcurrency(b.cfg.Targets), b.cfg.Concurrency
	if need <= have {
		return Error{}, false
	}
	inFlight := strconv.FormatFloat(math.Round(RunsInFlight(b.cfg.Targets)*100)/100, 'f', -1, 64)
	setting := fmt.Sprintf("concurrency %d", have)
	if b.d.value(b.f, "concurrency") == nil {
		setting += " (the default)"
	}
	return b.d.errorAt(b.concurrencyNode(), fmt.Sprintf("%s is below the %s runs in flight when every target hangs "+
		"for its timeout (timeout / interval summed over %d targets); so that runs do not wait for a slot and start "+
		"late, the scheduler raises its bound to at least %d and concurrency does not limit it: set concurrency: %d "+
		"or more to say so, or lengthen the intervals", setting, inFlight, len(b.cfg.Targets), need, need)), true
}

// concurrencyNode is where the concurrency warning points: concurrency: where it is
// written, else products:, where the targets that need the slots come from.
func (b *builder) concurrencyNode() *yaml.Node {
	if b.d.value(b.f, "concurrency") != nil {
		return keyAt(b.d.maps[b.f], "concurrency")
	}
	return keyAt(b.d.maps[b.f], "products")
}

// unroutedDegraded names, as "logs in eu1, us1; web in eu1", the products and regions
// whose degraded incidents reach no notifier although their outages do: what
// alerting.degraded: notify took away. It asks RoutesFor, the rule the router sends by.
// Targets whose outages are not routed either are left alone: that is a choice.
func (b *builder) unroutedDegraded() string {
	c := b.cfg
	if c.Alerting.Degraded != "notify" {
		return ""
	}
	var lost []string
	for _, p := range c.Products {
		if len(p.Journeys) == 0 {
			continue
		}
		var regions []string
		for _, r := range p.Regions {
			// A degraded incident is always one target's (it is never widened).
			f := Facets{Scope: "target", Products: []string{p.Name}, Regions: []string{r}, Priority: p.Priority}
			down := len(c.RoutesFor(f, c.Alerting.Degraded)) > 0
			f.Degraded = true
			if down && len(c.RoutesFor(f, c.Alerting.Degraded)) == 0 {
				regions = append(regions, r)
			}
		}
		if len(regions) > 0 {
			lost = append(lost, p.Name+" in "+strings.Join(regions, ", "))
		}
	}
	return strings.Join(lost, "; ")
}

// routesNode is where the warning points: the routes: key (there is one, or no
// outage would be routed either).
func (b *builder) routesNode() *yaml.Node { return keyAt(b.d.maps[b.f], "routes") }
