package alert

import (
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// TestBannerSaysDegradedWhenNothingIsDown: a Degraded cell (an open degraded incident,
// or a slow result below the failure threshold) is named by the banner, never covered
// by "All systems operational"; an outage still takes the banner.
func TestBannerSaysDegradedWhenNothingIsDown(t *testing.T) {
	cases := []struct {
		name      string
		threshold string
		results   []probe.Result
		want      string
	}{
		{"all up", "1", []probe.Result{resultOf("logs/a@eu1", "up")}, "All systems operational"},
		{"degraded incident", "1", []probe.Result{resultOf("logs/a@eu1", "degraded")}, "Degraded performance: logs in eu1"},
		{"degraded cell below the threshold", "3", []probe.Result{resultOf("logs/a@eu1", "degraded")}, "Degraded performance: logs in eu1"},
		{"several", "1", []probe.Result{resultOf("logs/a@eu1", "degraded"), resultOf("logs/a@us1", "degraded"),
			resultOf("metrics/q@us1", "degraded")}, "Degraded performance: logs in eu1, us1; metrics in us1"},
		{"an outage wins", "1", []probe.Result{resultOf("logs/a@eu1", "degraded"), resultOf("metrics/q@us1", "down")},
			"Partial problems: metrics in us1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := NewEngine(EngineOptions{Config: thresholdConfig(t, c.threshold), Outbox: &recordingOutbox{},
				Now: func() time.Time { return time.Unix(1000, 0) }})
			if err != nil {
				t.Fatal(err)
			}
			e.ObserveAll(c.results)
			if got := e.Snapshot().Banner; got != c.want {
				t.Errorf("banner %q, want %q", got, c.want)
			}
		})
	}
}

func thresholdConfig(t *testing.T, failureThreshold string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("s.yaml", []byte(`
vantage: v
defaults: {interval: 10s, timeout: 5s, failure_threshold: `+failureThreshold+`, success_threshold: 1}
alerting: {group_wait: 0s}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}, us1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: logs, priority: 1, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: metrics, priority: 1, journeys: [{name: q, steps: [{http: {url: "{{.region.api}}/"}}]}]}
notifiers: {chat: {webhook: {url: "http://127.0.0.1:1/hook"}}}
routes: [{notify: [chat]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
