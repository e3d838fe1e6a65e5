package alert

import (
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

func screenshotConfig(t *testing.T, statusURL string) *config.Config {
	t.Helper()
	return engineConfigOf(t, `{group_wait: 1s, status_url: "`+statusURL+`"}`, `
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: web, priority: 1, journeys: [{name: login, steps: [{http: {url: "{{.region.api}}/"}}]}]}
`)
}

// browserFailure is a run whose browser step failed and left a screenshot.
func browserFailure(shot string) probe.Result {
	r := resultOf("web/login@eu1", "down")
	r.Journey, r.FailedStep, r.Error = "login", "login", "step login: action 5 (wait_visible `#welcome`): no element matches within 5s"
	r.Steps = []probe.StepResult{{Name: "login", Kind: "browser", Status: probe.StatusDown, Screenshot: shot}}
	return r
}

func TestScreenshotReachesPageAndIncident(t *testing.T) {
	const shot = "web_login_eu1-20260302T101500Z-k2j3.png"
	for _, c := range []struct {
		statusURL string
		images    int // PagerDuty shows only images over HTTPS
	}{{"https://status.example/", 1}, {"http://10.0.0.5:9115", 0}} {
		e, clk, ob := memEngine(t, screenshotConfig(t, c.statusURL))
		e.Observe(browserFailure(shot))
		clk.t = clk.t.Add(2 * time.Second)
		e.Tick()
		if len(ob.sent) != 1 {
			t.Fatalf("%s: want one page, got %v", c.statusURL, ob.lines())
		}
		n := ob.sent[0]
		want := ScreenshotURL(c.statusURL, shot)
		last := n.Links[len(n.Links)-1]
		if last.Href != want || last.Text != "Screenshot: web/login@eu1" || len(n.Images) != c.images {
			t.Errorf("%s: links %+v, images %+v; want a link to %s and %d images", c.statusURL, n.Links, n.Images, want, c.images)
		}
		if c.images == 1 && (n.Images[0].Src != want || n.Images[0].Href != want) {
			t.Errorf("image %+v, want %s", n.Images[0], want)
		}
		targets, _ := n.Details["targets"].([]map[string]any)
		if len(targets) != 1 || targets[0]["screenshot"] != want {
			t.Errorf("details targets %v, want the screenshot %s", n.Details["targets"], want)
		}
		incs := e.Snapshot().Incidents
		if len(incs) != 1 || incs[0].Screenshots["web/login@eu1"] != shot {
			t.Errorf("incidents %+v, want the screenshot on the incident", incs)
		}
	}
}

// TestFailureWithoutScreenshotLinksNone: an HTTP failure (no screenshot) adds no link,
// and a later failure without one keeps the incident's earlier screenshot.
func TestFailureWithoutScreenshotLinksNone(t *testing.T) {
	e, clk, ob := memEngine(t, screenshotConfig(t, "https://status.example"))
	e.Observe(resultOf("web/login@eu1", "down"))
	clk.t = clk.t.Add(2 * time.Second)
	e.Tick()
	if len(ob.sent) != 1 || len(ob.sent[0].Links) != 2 || len(ob.sent[0].Images) != 0 {
		t.Fatalf("an HTTP failure: %+v", ob.sent)
	}
	e.Observe(browserFailure("a.png"))
	e.Tick()
	e.Observe(resultOf("web/login@eu1", "down"))
	e.Tick()
	if got := e.Snapshot().Incidents[0].Screenshots["web/login@eu1"]; got != "a.png" {
		t.Errorf("incident screenshot %q, want the last one kept", got)
	}
}
