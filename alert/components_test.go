package alert

import (
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// TestComponentStates: the rules of the public states, cell by cell, and the one line
// that names them (products by priority and public title, regions by title).
func TestComponentStates(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`
regions: {eu1: {title: Europe 1, vars: {api: "http://127.0.0.1:1"}}, us1: {title: US East 1, vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: web, title: Web App, priority: 2, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}, {name: login, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: logs, priority: 1, journeys: [{name: submit, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: metrics, title: Metrics, priority: 1, journeys: [{name: q, steps: [{http: {url: "{{.region.api}}/"}}]}]}
public: {listen: 127.0.0.1:0, products: {logs: {title: Logs}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	cells, names := CellsOfConfig(cfg), NamesOf(cfg)
	cases := []struct {
		name      string
		incidents []Incident
		want      map[Cell]ComponentState
		line      string
	}{
		{"nothing open", nil, nil, "All systems operational"},
		{"one of two journeys down: partial", []Incident{{Condition: ConditionDown, Targets: []string{"web/home@eu1"}}},
			map[Cell]ComponentState{{"web", "eu1"}: ComponentPartial}, "Partial outage: Web App in Europe 1"},
		{"a region out: major, products by priority", []Incident{{Condition: ConditionDown, Targets: []string{"web/home@eu1", "web/login@eu1", "logs/submit@eu1", "metrics/q@eu1", "metrics/q@us1"}}},
			map[Cell]ComponentState{{"web", "eu1"}: ComponentMajor, {"logs", "eu1"}: ComponentMajor, {"metrics", "eu1"}: ComponentMajor, {"metrics", "us1"}: ComponentMajor},
			"Major outage: Logs, Web App in Europe 1; Metrics in Europe 1 and US East 1"},
		{"slow, and down beats slow", []Incident{{Condition: ConditionDegraded, Targets: []string{"logs/submit@us1"}}, {Condition: ConditionDegraded, Targets: []string{"web/home@us1"}}, {Condition: ConditionDown, Targets: []string{"web/login@us1"}}},
			map[Cell]ComponentState{{"logs", "us1"}: ComponentDegraded, {"web", "us1"}: ComponentPartial},
			"Partial outage: Web App in US East 1. Degraded performance: Logs in US East 1"},
		{"a certificate warning is not public", []Incident{{Condition: ConditionCertExpiry, Targets: []string{"logs/submit@eu1"}}}, nil, "All systems operational"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Affected(cells.States(c.incidents))
			if len(got) != len(c.want) {
				t.Errorf("states %v, want %v", got, c.want)
			}
			for cell, s := range c.want {
				if got[cell] != s {
					t.Errorf("%v: %s, want %s", cell, got[cell], s)
				}
			}
			if line := names.Describe(got); line != c.line {
				t.Errorf("line %q, want %q", line, c.line)
			}
		})
	}
}

// TestSymptoms: what a customer meets, from a run's steps, and the freshness lag
// where a step polls.
func TestSymptoms(t *testing.T) {
	cfg, err := config.Parse("s.yaml", []byte(`
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - name: logs
    journeys:
      - name: rw
        steps:
          - {name: write, http: {url: "{{.region.api}}/"}}
          - {name: read, http: {url: "{{.region.api}}/"}, poll: {every: 100ms, within: 2s}}
`))
	if err != nil {
		t.Fatal(err)
	}
	tg := cfg.Targets[0]
	step := func(name string, up bool, code int) probe.StepResult {
		s := probe.StepResult{Name: name, Kind: "http", Status: probe.StatusUp, HTTPStatus: code}
		if !up {
			s.Status = probe.StatusDown
		}
		return s
	}
	read := step("read", true, 200)
	read.PollWait = 1400 * time.Millisecond
	cases := []struct {
		name      string
		r         probe.Result
		symptom   string
		freshness time.Duration
	}{
		{"up, with its lag", probe.Result{Status: probe.StatusUp, Steps: []probe.StepResult{step("write", true, 202), read}}, "", read.PollWait},
		{"slow", probe.Result{Status: probe.StatusDegraded, Steps: []probe.StepResult{step("write", true, 202), read}}, SymptomSlow, read.PollWait},
		{"no answer", probe.Result{Status: probe.StatusDown, Steps: []probe.StepResult{step("write", false, 0)}}, SymptomNotLoading, 0},
		{"a DNS query unanswered", probe.Result{Status: probe.StatusDown, Steps: []probe.StepResult{{Name: "write", Kind: "dns", Status: probe.StatusDown, Info: map[string]string{"server": "x"}}}}, SymptomNotLoading, 0},
		{"a DNS answer of the wrong kind", probe.Result{Status: probe.StatusDown, Steps: []probe.StepResult{{Name: "write", Kind: "dns", Status: probe.StatusDown, Info: map[string]string{"rcode": "NXDOMAIN"}}}}, SymptomErrors, 0},
		{"a 503", probe.Result{Status: probe.StatusDown, Steps: []probe.StepResult{step("write", false, 503)}}, SymptomErrors, 0},
		{"written, never readable", probe.Result{Status: probe.StatusDown, Steps: []probe.StepResult{step("write", true, 202), step("read", false, 404)}}, SymptomUnreadable, 2 * time.Second},
	}
	for _, c := range cases {
		if sym, fresh := symptomOf(tg, &c.r); sym != c.symptom || fresh != c.freshness {
			t.Errorf("%s: %q %s, want %q %s", c.name, sym, fresh, c.symptom, c.freshness)
		}
	}
}

// TestEnginePublicStatesIsTheSnapshots: the engine's PublicStates judges the cells as
// the snapshot's does, with incidents of every kind open.
func TestEnginePublicStatesIsTheSnapshots(t *testing.T) {
	e, _, _ := memEngine(t, engineConfig(t, "0s"))
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down"), resultOf("logs/a@us1", "degraded")})
	want, got := e.Snapshot().PublicStates(), e.PublicStates()
	if len(Affected(want)) != 3 || len(got) != len(want) {
		t.Fatalf("engine %v, snapshot %v; want the same three cells affected", got, want)
	}
	for c, s := range want {
		if got[c] != s {
			t.Errorf("%v: engine %s, snapshot %s", c, got[c], s)
		}
	}
}

// BenchmarkPublicStates: what the status sync's one question a second costs at 10,000
// targets, through a snapshot and from the engine.
func BenchmarkPublicStates(b *testing.B) {
	e, err := NewEngine(EngineOptions{Config: manyTargetsConfig(&testing.T{}, 10000), Outbox: &recordingOutbox{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			_ = e.Snapshot().PublicStates()
		}
	})
	b.Run("engine", func(b *testing.B) {
		for b.Loop() {
			_ = e.PublicStates()
		}
	})
}
