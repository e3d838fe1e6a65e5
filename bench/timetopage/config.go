package timetopage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Regions are the simulated platform's regions.
func Regions() []string { return []string{"eu1", "us1", "us3", "ap1"} }

// Products are the products the config probes: the platform's four and its login page
// as a fifth, so a global outage is 4 regions × 5 products.
func Products() []string { return []string{"logs", "metrics", "events", "web", "login"} }

// routingKey is a made-up 32-character integration key, as the receiver wants.
const routingKey = "timetopageroutingkey000000000001"

// configSpec is what a generated config varies in.
type configSpec struct {
	stateDir  string
	regionURL map[string]string
	eventsURL string
	shape     Shape
	journeys  int             // per product and region; 1 names it after the product
	intervals []time.Duration // journey i runs every intervals[i%len]; none: the shape's
}

// writeConfig writes the config to dir/picket.yaml and returns its path.
func writeConfig(dir string, spec configSpec) (string, error) {
	path := filepath.Join(dir, "picket.yaml")
	if err := os.WriteFile(path, []byte(renderConfig(spec)), 0o600); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

func renderConfig(spec configSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vantage: timetopage\nlisten: 127.0.0.1:0\nstate_dir: %q\n", spec.stateDir)
	b.WriteString("defaults: {" + defaultsOf(spec.shape) + "}\n")
	if spec.shape.GroupWait > 0 {
		fmt.Fprintf(&b, "alerting: {group_wait: %s}\n", spec.shape.GroupWait)
	}
	if spec.shape.NoConfirm {
		b.WriteString("confirm: {enabled: false}\n")
	}
	b.WriteString("regions:\n")
	for _, r := range Regions() {
		fmt.Fprintf(&b, "  %s: {vars: {api: %q}}\n", r, spec.regionURL[r])
	}
	b.WriteString("products:\n")
	for i, p := range Products() {
		fmt.Fprintf(&b, "  - name: %s\n    priority: %d\n    journeys:\n", p, min(i/2+1, 3))
		for j := range max(spec.journeys, 1) {
			b.WriteString("      - " + journey(spec, p, j) + "\n")
		}
	}
	fmt.Fprintf(&b, "notifiers:\n  pd: {pagerduty: {routing_key: %q, events_url: %q}}\n", routingKey, spec.eventsURL)
	b.WriteString("routes:\n  - notify: [pd]\n")
	return b.String()
}

func defaultsOf(s Shape) string {
	parts := []string{"interval: " + s.Interval.String(), "timeout: " + s.Timeout.String()}
	if s.FailureThreshold > 0 {
		parts = append(parts, fmt.Sprintf("failure_threshold: %d", s.FailureThreshold))
	}
	if s.SuccessThreshold > 0 {
		parts = append(parts, fmt.Sprintf("success_threshold: %d", s.SuccessThreshold))
	}
	return strings.Join(parts, ", ")
}

// journey is one journey of product as a YAML flow mapping.
func journey(spec configSpec, product string, i int) string {
	if spec.journeys <= 1 {
		return fmt.Sprintf("{name: %s, steps: %s}", product, stepsOf(product, spec.shape.Timeout/2))
	}
	interval := ""
	if len(spec.intervals) > 0 {
		interval = ", interval: " + spec.intervals[i%len(spec.intervals)].String()
	}
	return fmt.Sprintf("{name: j%02d%s, steps: %s}", i, interval, stepsOf(product, spec.shape.Timeout/2))
}

// stepsOf is what a customer of product does: write then read back for logs and
// events, one read for the others. Every step is a different path of the platform, so
// a fault of one product leaves the others up. A read-back polls for at most within.
func stepsOf(product string, within time.Duration) string {
	switch product {
	case "logs":
		return writeThenRead("logs", `{"m":"picket {{.run.id}}"}`, `{status: [200], json: {m: "picket {{.run.id}}"}}`, within)
	case "events":
		return writeThenRead("events", `{"title":"picket {{.run.id}}"}`, `{status: [200]}`, within)
	case "metrics":
		return `[{http: {url: "{{.region.api}}/v1/query?q=up"}, expect: {status: [200], json: {status: ok}}}]`
	case "web":
		return `[{http: {url: "{{.region.api}}/"}, expect: {status: [200], body_contains: "<title>Platform"}}]`
	}
	return `[{http: {url: "{{.region.api}}/login"}, expect: {status: [200]}}]`
}

func writeThenRead(product, body, expect string, within time.Duration) string {
	return fmt.Sprintf(`[{name: submit, http: {method: POST, url: "{{.region.api}}/v1/%[1]s", body: '%[2]s'}, expect: {status: [202]}, extract: {id: {json: id}}}, `+
		`{name: read-back, http: {url: "{{.region.api}}/v1/%[1]s/{{.vars.id}}"}, poll: {every: 50ms, within: %[4]s}, expect: %[3]s}]`,
		product, body, expect, within)
}
