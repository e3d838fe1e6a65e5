package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWarnings pairs every testdata/warn-*.yaml with its exact expected warnings: the
// config loads, and the warnings are told apart from errors.
func TestWarnings(t *testing.T) {
	files, err := filepath.Glob("testdata/warn-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no warn configs found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".warn")
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(filepath.Base(file), data)
			if err != nil {
				t.Fatalf("a warning must not stop the load: %v", err)
			}
			var got strings.Builder
			for _, w := range cfg.Warnings {
				got.WriteString(w.Error() + "\n")
			}
			if got.String() != string(want) {
				t.Errorf("warnings differ\n got:\n%s\nwant:\n%s", got.String(), want)
			}
		})
	}
}

// TestDegradedWarningFollowsThePolicy: only alerting.degraded: notify keeps pagers from
// degraded incidents; a route to chat for everything, or no routes at all (nothing is
// sent anywhere, by choice), is not worth a warning.
func TestDegradedWarningFollowsThePolicy(t *testing.T) {
	base := `regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: web, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
notifiers:
  pd: {pagerduty: {routing_key: "warntestroutingkey00000000000001"}}
  chat: {slack: {webhook_url: "https://hooks.slack.example/T0/B0"}}
`
	cases := []struct {
		name, extra string
		warnings    int
	}{
		{"pager only, default policy", "routes: [{notify: [pd]}]\n", 1},
		{"pager only, notify written", "alerting: {degraded: notify}\nroutes: [{notify: [pd]}]\n", 1},
		{"pager only, policy page", "alerting: {degraded: page}\nroutes: [{notify: [pd]}]\n", 0},
		{"pager only, policy ignore", "alerting: {degraded: ignore}\nroutes: [{notify: [pd]}]\n", 0},
		{"pager and chat", "routes: [{notify: [pd, chat]}]\n", 0},
		{"chat after the pager, continue", "routes: [{notify: [pd], continue: true}, {notify: [chat]}]\n", 0},
		{"chat after the pager, no continue", "routes: [{notify: [pd]}, {notify: [chat]}]\n", 1},
		{"no routes", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("w.yaml", []byte(base+c.extra))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Warnings) != c.warnings {
				t.Errorf("warnings %v, want %d", cfg.Warnings, c.warnings)
			}
			for _, w := range cfg.Warnings {
				if !strings.HasPrefix(w.Error(), "w.yaml:") || !strings.Contains(w.Msg, "web in eu1") {
					t.Errorf("warning %q: want FILE:LINE:COL and the product and region", w.Error())
				}
			}
		})
	}
}

// TestConcurrencyWarning: a config whose runs in flight, when every target hangs for its
// timeout, are more than its concurrency loads, with one warning at concurrency: (or
// at products:, under the default) naming the slots it needs.
func TestConcurrencyWarning(t *testing.T) {
	config := func(head string, regions int, journey string) string {
		var b strings.Builder
		b.WriteString(head + "regions:\n")
		for i := range regions {
			fmt.Fprintf(&b, "  r%d: {vars: {api: \"http://127.0.0.1:1\"}}\n", i)
		}
		b.WriteString("products:\n  - name: web\n    journeys: [{name: home, " + journey + "steps: [{http: {url: \"{{.region.api}}/\"}}]}]\n")
		return b.String()
	}
	cases := []struct {
		name, head string
		regions    int
		journey    string
		want       string // "" no warning; else what the warning says, after FILE:LINE:COL
	}{
		{"the defaults: 10s of 30s in 300 regions is 100 runs, above 64", "", 300, "",
			"w.yaml:302:1: concurrency 64 (the default) is below the 100 runs in flight"},
		{"the defaults in 192 regions: 64 runs, 64 slots", "", 192, "", ""},
		{"written, and too low", "concurrency: 10\n", 40, "interval: 3s, timeout: 2s, ", "w.yaml:1:1: concurrency 10 is below the 26.67 runs in flight"},
		{"written, and enough", "concurrency: 27\n", 40, "interval: 3s, timeout: 2s, ", ""},
		{"retries count: three tries of 1s in 10s", "concurrency: 20\n", 100, "interval: 10s, timeout: 1s, retries: 2, ", "concurrency 20 is below the 30 runs in flight"},
		{"a shard needs only its share", "concurrency: 20\nshard: {index: 0, count: 4}\n", 100, "interval: 10s, timeout: 5s, ", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("w.yaml", []byte(config(c.head, c.regions, c.journey)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			switch {
			case c.want == "" && len(got) > 0:
				t.Errorf("warnings %q, want none", got)
			case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
				t.Errorf("warnings %q, want one with %q", got, c.want)
			}
		})
	}
}
