package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/chattest"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
)

// commsRig is one engine with its real outbox and bbolt store, on a fake clock,
// telling a local Events API receiver and a local chat stand-in over loopback. Results
// are made by hand, with the steps a symptom is judged by.
type commsRig struct {
	t      *testing.T
	clock  *clock.Fake
	dir    string
	cfg    *config.Config
	pd     *pdtest.Receiver
	chat   *chattest.Receiver
	store  *store.Store
	outbox *notify.Outbox
	engine *alert.Engine
}

func commsConfig(pd *pdtest.Receiver, chat *chattest.Receiver) string {
	return fmt.Sprintf(`vantage: comms-test
defaults: {interval: 30s, timeout: 5s, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 0s}
regions: {eu1: {title: Europe 1, vars: {api: "http://127.0.0.1:1"}}, us1: {title: US East 1, vars: {api: "http://127.0.0.1:1"}}, us3: {title: US West 3, vars: {api: "http://127.0.0.1:1"}}}
products:
  - name: logs
    priority: 1
    journeys:
      - name: submit-and-read
        steps:
          - {name: submit, http: {method: POST, url: "{{.region.api}}/v1/logs"}}
          - {name: read-back, http: {url: "{{.region.api}}/v1/logs/x"}, poll: {every: 200ms, within: 3s}}
  - {name: metrics, title: Metrics, priority: 1, journeys: [{name: query, steps: [{name: query, http: {url: "{{.region.api}}/q"}}]}]}
  - {name: web, title: Web App, priority: 2, journeys: [{name: home, steps: [{name: home, http: {url: "{{.region.api}}/"}}]}]}
notifiers:
  pd: {pagerduty: {routing_key: "commsrigroutingkey00000000000001", events_url: %q}}
  team: {slack: {webhook_url: %q}}
  comms: {webhook: {url: %q}}
routes:
  - {notify: [team], continue: true}
  - {match: {scope: [global, region, product]}, notify: [pd]}
public:
  listen: 127.0.0.1:0
  products: {logs: {title: Logs}}
comms: {every: 30m, notify: [comms], updates_notify: [team], renotify: 1h}
`, pd.BaseURL(), chat.SlackURL(), chat.HookURL())
}

func newCommsRig(t *testing.T) *commsRig {
	t.Helper()
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	chat, err := chattest.New(chattest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chat.Close() })
	cfg, err := config.Parse("comms.yaml", []byte(commsConfig(pd, chat)))
	if err != nil {
		t.Fatal(err)
	}
	r := &commsRig{t: t, clock: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), dir: t.TempDir(), cfg: cfg, pd: pd, chat: chat}
	r.open()
	return r
}

// open starts (or restarts) the engine and outbox on the rig's state directory.
func (r *commsRig) open() {
	r.t.Helper()
	st, err := store.Open(r.dir, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	engine, ob, err := alert.NewPaging(alert.PagingOptions{
		Engine: alert.EngineOptions{Config: r.cfg, Store: st, Clock: r.clock},
		Outbox: notify.OutboxOptions{Store: st, Notifiers: notifiers.Build(r.cfg, nil, nil), Clock: r.clock},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.store, r.outbox, r.engine = st, ob, engine
	r.t.Cleanup(func() { _ = st.Close() })
}

// restart closes the store and opens everything again from it, as after a crash.
func (r *commsRig) restart() {
	r.t.Helper()
	if err := r.store.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.open()
}

// symptom makes a result of one target with the steps that show the symptom.
func (r *commsRig) result(id, symptom string) probe.Result {
	var t *config.Target
	for _, x := range r.cfg.Targets {
		if x.ID == id {
			t = x
		}
	}
	if t == nil {
		r.t.Fatalf("no target %s", id)
	}
	res := probe.Result{Target: id, Product: t.Product, Journey: t.Journey, Region: t.Region, Started: r.clock.Now(), Status: probe.StatusUp, Tries: 1}
	up := func(name string, code int) probe.StepResult {
		return probe.StepResult{Name: name, Kind: "http", Status: probe.StatusUp, HTTPStatus: code}
	}
	down := func(name string, code int, why string) probe.StepResult {
		return probe.StepResult{Name: name, Kind: "http", Status: probe.StatusDown, HTTPStatus: code, Error: why}
	}
	switch symptom {
	case "up":
		for _, s := range t.Steps {
			res.Steps = append(res.Steps, up(s.Name, 200))
		}
		return res
	case alert.SymptomNotLoading:
		res.Steps = []probe.StepResult{down(t.Steps[0].Name, 0, "connect: connection refused")}
	case alert.SymptomErrors:
		res.Steps = []probe.StepResult{down(t.Steps[0].Name, 500, "status 500, want 2xx")}
	case alert.SymptomUnreadable:
		res.Steps = []probe.StepResult{up("submit", 202), down("read-back", 404, "not ready within 3s (15 attempts); last: status 404")}
	}
	last := res.Steps[len(res.Steps)-1]
	res.Status, res.FailedStep, res.Error = probe.StatusDown, last.Name, "step "+last.Name+": "+last.Error
	return res
}

// round gives every target a result: the symptom named for it, else up; then ticks the
// engine and delivers what is due on the fake clock.
func (r *commsRig) round(symptoms map[string]string) {
	r.t.Helper()
	var results []probe.Result
	for _, t := range r.cfg.Targets {
		sym := symptoms[t.ID]
		if sym == "" {
			sym = "up"
		}
		results = append(results, r.result(t.ID, sym))
	}
	r.engine.ObserveAll(results)
	r.tick()
}

func (r *commsRig) tick() {
	r.t.Helper()
	r.engine.Tick()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 20 {
		if next := r.outbox.Step(ctx); next.IsZero() || next.After(r.clock.Now()) {
			break
		}
	}
	if n := r.outbox.Pending(); n != 0 {
		r.t.Fatalf("%d notifications still pending after delivery: %v", n, r.outbox.Entries())
	}
}

// hooks are the webhook posts (the comms channel), as notifications.
func (r *commsRig) hooks() []notify.Notification {
	var out []notify.Notification
	for _, m := range r.chat.Messages() {
		if m.Kind != chattest.KindWebhook {
			continue
		}
		var p struct {
			Notification notify.Notification `json:"notification"`
		}
		if err := json.Unmarshal(m.Body, &p); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, p.Notification)
	}
	return out
}

func (r *commsRig) slackTexts() []string {
	var out []string
	for _, m := range r.chat.Messages() {
		if m.Kind == chattest.KindSlack {
			out = append(out, m.Text+" "+string(m.Body))
		}
	}
	return out
}

// globalOutage: eu1 is unreachable, us1 answers with errors, and in us1 logs are
// written but never readable: one GLOBAL incident (2 of 3 regions out).
var globalOutage = map[string]string{
	"logs/submit-and-read@eu1": alert.SymptomNotLoading, "metrics/query@eu1": alert.SymptomNotLoading, "web/home@eu1": alert.SymptomNotLoading,
	"logs/submit-and-read@us1": alert.SymptomUnreadable, "metrics/query@us1": alert.SymptomErrors, "web/home@us1": alert.SymptomErrors,
}

// TestCommsCadence: a global outage is paged once; 30 minutes of the fake clock later
// (not a second before) the comms channel hears an update is due, with a draft from
// the evidence; a human update restarts the clock and goes to the team's chat; the
// next draft says what recovered since it; after an hour the team's chat is reminded
// and PagerDuty is not; a restart keeps the updates and the cadence; the resolve tells
// the comms channel to post the final update.
func TestCommsCadence(t *testing.T) {
	r := newCommsRig(t)
	r.round(nil)
	r.round(globalOutage)
	if n := r.pd.Count("picket/global", "trigger"); n != 1 || len(r.pd.Events()) != 1 {
		t.Fatalf("pages %d (all events %d), want the one GLOBAL page", n, len(r.pd.Events()))
	}
	r.clock.Advance(30*time.Minute - time.Second)
	r.tick()
	if got := r.hooks(); len(got) != 0 {
		t.Fatalf("comms channel told before 30m: %+v", got)
	}
	r.clock.Advance(time.Second)
	r.tick()
	due := r.hooks()
	if len(due) != 1 || !strings.HasPrefix(due[0].Summary, "[UPDATE DUE] [GLOBAL]: no customer update has been posted (every 30m)") {
		t.Fatalf("comms channel at 30m: %+v", due)
	}
	draft, _ := due[0].Details["draft"].(string)
	for _, want := range []string{
		"Major outage: Logs, Metrics, Web App in Europe 1 and US East 1, since 10:00 UTC (30m).",
		"Logs: not loading in Europe 1; writes accepted but not readable in US East 1 (written data was not readable within 3s).",
		"Metrics: not loading in Europe 1; errors in US East 1.",
		"Nothing has recovered since it began.",
	} {
		if !strings.Contains(draft, want) {
			t.Errorf("draft lacks %q:\n%s", want, draft)
		}
	}
	for _, never := range []string{"submit-and-read", "read-back", "127.0.0.1", "connection refused", "logs/"} {
		if strings.Contains(draft, never) {
			t.Errorf("the customer draft carries operator detail %q:\n%s", never, draft)
		}
	}
	r.clock.Advance(5 * time.Minute)
	if _, _, err := r.engine.PostUpdate("picket/global", alert.Update{Status: alert.UpdateIdentified, Text: "Storage in two regions is down; we are failing over.", Author: "comms lead"}); err != nil {
		t.Fatal(err)
	}
	r.tick()
	if s := r.slackTexts(); !containsText(s, "[UPDATE] [GLOBAL] identified: Storage in two regions is down; we are failing over.") {
		t.Errorf("the team's chat did not get the update: %q", s)
	}
	// web recovers in us1; 30 minutes after the update the next one is due, saying so.
	outage := maps.Clone(globalOutage)
	delete(outage, "web/home@us1")
	r.round(outage)
	r.clock.Advance(30*time.Minute - time.Second)
	r.tick()
	if n := len(r.hooks()); n != 1 {
		t.Fatalf("%d comms messages 30m after the update less a second, want still 1", n)
	}
	// An hour after the page (at 11:04:59, the first tick past it) the team's chat was
	// reminded; PagerDuty is not paged again.
	r.clock.Advance(time.Second)
	r.tick()
	due = r.hooks()
	if len(due) != 2 {
		t.Fatalf("comms messages %d, want the second update due", len(due))
	}
	if d, _ := due[1].Details["draft"].(string); !strings.Contains(d, "Recovered since the last update (10:35 UTC): Web App in US East 1.") ||
		!strings.Contains(due[1].Summary, "the last customer update was 30m ago") {
		t.Errorf("second draft: %s / %v", due[1].Summary, due[1].Details["draft"])
	}
	if !containsText(r.slackTexts(), "reminder: still open after 1h4m") {
		t.Errorf("no reminder in the team's chat: %q", r.slackTexts())
	}
	if n := len(r.pd.Events()); n != 1 {
		t.Errorf("PagerDuty got %d events, want only the first page (reminders go to chat)", n)
	}
	// A restart keeps the updates and does not send what was sent already.
	r.restart()
	r.tick()
	inc, ok := r.engine.Incident("picket/global")
	if !ok || len(inc.Updates) != 1 || inc.Updates[0].Author != "comms lead" || len(r.hooks()) != 2 {
		t.Fatalf("after restart: updates %+v, %d comms messages", inc.Updates, len(r.hooks()))
	}
	md := inc.Markdown()
	for _, want := range []string{"| identified | Storage in two regions is down; we are failing over. | comms lead |",
		"| comms | update due sent to comms |", "| accepted | comms message via comms accepted |", "| comms | reminder (every 1h) sent to team |"} {
		if !strings.Contains(md, want) {
			t.Errorf("export lacks %q:\n%s", want, md)
		}
	}
	r.round(nil)
	last := r.hooks()[len(r.hooks())-1]
	if last.Action != notify.ActionResolve || !strings.Contains(last.Summary, "post the final customer update") {
		t.Errorf("on resolve the comms channel got %+v", last)
	}
}

// TestUpdateOnClosedIncident: a final word after Picket resolved the incident is kept
// with the closed record; an unknown key or status is refused.
func TestUpdateOnClosedIncident(t *testing.T) {
	r := newCommsRig(t)
	r.round(globalOutage)
	r.clock.Advance(time.Minute) // the team's Slack takes one message a second
	r.round(nil)
	if _, _, err := r.engine.PostUpdate("picket/global", alert.Update{Status: alert.UpdateResolved, Text: "All regions are back."}); err != nil {
		t.Fatal(err)
	}
	inc, ok, err := r.engine.FindIncident("picket/global")
	if err != nil || !ok || inc.Open() || len(inc.Updates) != 1 || inc.Updates[0].Status != alert.UpdateResolved {
		t.Fatalf("closed incident after the update: %+v %v %v", inc.Updates, ok, err)
	}
	if len(inc.Updates[0].Cells) == 0 {
		t.Errorf("the update does not record the cells the incident covered")
	}
	if _, _, err := r.engine.PostUpdate("picket/region/nowhere", alert.Update{Status: "resolved", Text: "x"}); err == nil {
		t.Error("an update of an unknown incident was accepted")
	}
	if _, _, err := r.engine.PostUpdate("picket/global", alert.Update{Status: "fixed", Text: "x"}); err == nil || !strings.Contains(err.Error(), "expected one of investigating") {
		t.Errorf("unknown status: %v", err)
	}
}

func containsText(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}
