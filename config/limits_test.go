package config

import (
	"testing"
	"time"
)

// TestNotifierLimits: a notifier's rate and timeout as written, else its kind's
// default pace and 10 s; the outbox's bound by default.
func TestNotifierLimits(t *testing.T) {
	cfg, err := Parse("limits.yaml", []byte(`
regions:
  eu1: {vars: {api: "http://127.0.0.1:1"}}
products:
  - name: web
    journeys:
      - name: home
        steps:
          - http: {url: "{{.region.api}}/"}
notifiers:
  pd: {pagerduty: {routing_key: "R0UT1NGKEY0123456789abcdefABCDEF"}}
  chat: {slack: {webhook_url: "https://hooks.slack.com/services/T0/B0/x"}}
  hook: {webhook: {url: "http://127.0.0.1:1/hook"}}
  slow: {webhook: {url: "http://127.0.0.1:1/hook"}, timeout: 40s, rate: 10/30s}
  local: {webhook: {url: "http://127.0.0.1:1/hook"}, rate: unlimited}
routes:
  - notify: [pd, chat, hook, slow, local]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Alerting.OutboxMaxEntries; got != DefaultOutboxMaxEntries {
		t.Errorf("alerting.outbox_max_entries %d, want the default %d", got, DefaultOutboxMaxEntries)
	}
	for name, want := range map[string]struct {
		rate    string
		timeout time.Duration
	}{
		"pd": {"120/m", 10 * time.Second}, "chat": {"1/s", 10 * time.Second}, "hook": {"600/m", 10 * time.Second},
		"slow": {"10/30s", 40 * time.Second}, "local": {"unlimited", 10 * time.Second},
	} {
		n := cfg.Notifiers[name]
		if got := n.Rate.String(); got != want.rate || n.Timeout != want.timeout {
			t.Errorf("%s: rate %s, timeout %s; want %s, %s", name, got, n.Timeout, want.rate, want.timeout)
		}
	}
}

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"120/m", Rate{120, time.Minute}, true},
		{" 1 / s ", Rate{1, time.Second}, true},
		{"10/30s", Rate{10, 30 * time.Second}, true},
		{"3600/h", Rate{3600, time.Hour}, true},
		{"unlimited", Rate{}, true},
		{"120", Rate{}, false},
		{"0/m", Rate{}, false},
		{"-1/m", Rate{}, false},
		{"10001/m", Rate{}, false},
		{"1/500ms", Rate{}, false},
		{"1/2h", Rate{}, false},
		{"1/fortnight", Rate{}, false},
		{"", Rate{}, false},
	} {
		got, err := ParseRate(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

// FuzzParseRate: any text gives a rate within the bounds or an error, never both.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"120/m", "1/s", "10/30s", "unlimited", "9999999999999999999/m", "1/-1s", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if r != (Rate{}) {
				t.Fatalf("ParseRate(%q) = %v with error %v", s, r, err)
			}
			return
		}
		if r != (Rate{}) && (r.Events < 1 || r.Events > maxRateEvents || r.Per < time.Second || r.Per > maxRatePeriod) {
			t.Fatalf("ParseRate(%q) = %v, out of bounds", s, r)
		}
	})
}
