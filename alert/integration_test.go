package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
	"github.com/picket-dev/picket/probe/probetest"
)

// Markers stand in for secrets: no event, log line or error may ever contain them.
const (
	apiKeyMarker = "APIKEY-MARKER-93b1d0c4e5"
	pdKeyHigh    = "PDHIGHMARKER0000000000000000000a" // 32 characters, like a routing key
	pdKeyLow     = "PDLOWMARKER00000000000000000000b"
)

var regions = []string{"eu1", "us1", "us3", "ap1"}

// rig is one Picket "process" in a test: real simulated platform, real Events API
// receiver, real store, outbox and notifiers.
type rig struct {
	t       *testing.T
	plat    *probetest.Platform
	pd      *pdtest.Receiver
	hook    *hookServer
	dir     string
	cfg     *config.Config
	store   *store.Store
	outbox  *notify.Outbox
	engine  *alert.Engine
	runner  *probe.Runner
	logs    *testkit.Buffer
	cancel  context.CancelFunc
	stopped chan struct{}
}

// hookServer is the fallback webhook's receiver.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newHook(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{}, h.bodies...)
}

func configText(plat *probetest.Platform, pd *pdtest.Receiver, hook string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `vantage: test-vantage
defaults: {interval: 10s, timeout: 3s, failure_threshold: 2, success_threshold: 2}
secrets:
  api_key: {env: PICKET_IT_API_KEY}
  pd_high: {env: PICKET_IT_PD_HIGH}
  pd_low: {env: PICKET_IT_PD_LOW}
alerting: {group_wait: 0s, fallback_after: 300ms}
regions:
`)
	for _, r := range regions {
		fmt.Fprintf(&b, "  %s: {vars: {api: %q}}\n", r, plat.URL(r))
	}
	fmt.Fprintf(&b, `products:
  - name: logs
    priority: 1
    journeys:
      - name: submit-and-read
        steps:
          - name: submit
            http: {method: POST, url: "{{.region.api}}/v1/logs?key={{.secret.api_key}}", body: '{"m":"{{.run.id}}"}', headers: {Authorization: "Bearer {{.secret.api_key}}"}}
            expect: {status: [202]}
            extract: {id: {json: id}}
          - name: read-back
            http: {url: "{{.region.api}}/v1/logs/{{.vars.id}}", headers: {Authorization: "Bearer {{.secret.api_key}}"}}
            poll: {every: 20ms, within: 1s}
            expect: {status: [200], json: {m: "{{.run.id}}"}}
  - name: metrics
    priority: 1
    journeys:
      - name: query
        steps:
          - http: {url: "{{.region.api}}/v1/query?q=up", headers: {Authorization: "Bearer {{.secret.api_key}}"}}
            expect: {status: [200], json: {status: ok}}
  - name: web
    priority: 2
    journeys:
      - name: home
        steps:
          - http: {url: "{{.region.api}}/"}
            expect: {status: [200]}
notifiers:
  high: {pagerduty: {routing_key: "{{.secret.pd_high}}", events_url: %q}}
  low: {pagerduty: {routing_key: "{{.secret.pd_low}}", events_url: %q}}
  hook: {webhook: {url: %q}}
routes:
  - match: {scope: [global, region, product]}
    notify: [high]
    fallback: [hook]
  - match: {priority: [1]}
    notify: [high]
    fallback: [hook]
  - notify: [low]
%s`, pd.BaseURL(), pd.BaseURL(), hook, extra)
	return b.String()
}

func newRig(t *testing.T, extra string) *rig {
	t.Helper()
	t.Setenv("PICKET_IT_API_KEY", apiKeyMarker)
	t.Setenv("PICKET_IT_PD_HIGH", pdKeyHigh)
	t.Setenv("PICKET_IT_PD_LOW", pdKeyLow)
	plat, err := probetest.Start(probetest.Options{Regions: regions, APIKey: apiKeyMarker, IngestDelay: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plat.Close() })
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	r := &rig{t: t, plat: plat, pd: pd, hook: newHook(t), dir: t.TempDir(), logs: &testkit.Buffer{}}
	cfg, err := config.Parse("it.yaml", []byte(configText(plat, pd, r.hook.URL, extra)))
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = cfg
	r.start()
	return r
}

// start opens the store and builds outbox and engine, as a daemon start would.
func (r *rig) start() {
	t := r.t
	st, err := store.Open(r.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var eng *alert.Engine
	ob, err := notify.NewOutbox(notify.OutboxOptions{
		Store: st, Notifiers: notifiers.Build(r.cfg, nil, log), Logger: log,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, AttemptTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	eng, err = alert.NewEngine(alert.EngineOptions{Config: r.cfg, Store: st, Outbox: ob, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.store, r.outbox, r.engine, r.runner, r.cancel = st, ob, eng, probe.NewRunner(), cancel
	r.stopped = make(chan struct{})
	go func() { defer close(r.stopped); _ = ob.Run(ctx) }()
	t.Cleanup(r.stop)
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.stopped
	r.runner.Close()
	_ = r.store.Close()
	r.cancel = nil
}

// round probes every target once and hands the results to the engine together.
func (r *rig) round() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.engine.ObserveAll(r.runner.RunAll(ctx, r.cfg.Targets, 8))
}

// settle waits until the outbox has delivered everything (bounded).
func (r *rig) settle() {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.outbox.Pending() > 0 {
		if time.Now().After(deadline) {
			r.t.Fatalf("outbox still holds %d entries: %+v", r.outbox.Pending(), r.outbox.Entries())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) rounds(n int) {
	for range n {
		r.round()
	}
	r.settle()
}

// record summarises what the receiver accepted: "action key" counts.
func (r *rig) record() map[string]int {
	out := map[string]int{}
	for _, e := range r.pd.Events() {
		out[e.Action+" "+e.DedupKey]++
	}
	return out
}

func (r *rig) triggeredKeys() []string {
	seen := map[string]bool{}
	for _, e := range r.pd.Events() {
		if e.Action == "trigger" {
			seen[e.DedupKey] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *rig) checkNoLeaks() {
	r.t.Helper()
	var all strings.Builder
	all.WriteString(r.logs.String())
	for _, e := range r.pd.Events() {
		all.WriteString(e.Payload.Summary)
		all.Write(e.Payload.CustomDetails)
	}
	for _, b := range r.hook.got() {
		all.WriteString(b)
	}
	for _, ei := range r.outbox.Entries() {
		all.WriteString(ei.LastError)
	}
	st := r.engine.Snapshot()
	js, _ := json.Marshal(st)
	all.Write(js)
	for _, m := range []string{apiKeyMarker, pdKeyHigh, pdKeyLow, apiKeyMarker[:12]} {
		if strings.Contains(all.String(), m) {
			r.t.Errorf("secret marker %q found in output", m)
		}
	}
}

func TestOneRegionDownIsOneRegionIncident(t *testing.T) {
	r := newRig(t, "")
	r.rounds(2)
	if n := len(r.pd.Events()); n != 0 {
		t.Fatalf("healthy platform paged: %v", r.record())
	}
	r.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.rounds(2)
	if got := r.triggeredKeys(); strings.Join(got, ",") != "picket/region/eu1" {
		t.Fatalf("triggered %v, want only picket/region/eu1", got)
	}
	ev := r.pd.Events()[0]
	if !strings.HasPrefix(ev.Payload.Summary, "[REGION eu1]") || ev.Payload.Severity != "critical" || ev.Payload.Source != "test-vantage" || ev.Payload.Group != "eu1" {
		t.Errorf("payload %+v", ev.Payload)
	}
	if !strings.Contains(string(ev.Payload.CustomDetails), "logs/submit-and-read@eu1") {
		t.Errorf("custom_details lack the evidence: %s", ev.Payload.CustomDetails)
	}
	r.plat.ClearFaults()
	r.rounds(3)
	rec := r.record()
	if rec["trigger picket/region/eu1"] != 1 || rec["resolve picket/region/eu1"] != 1 || len(rec) != 2 {
		t.Errorf("record %v, want one trigger and one resolve of the region", rec)
	}
	r.checkNoLeaks()
}

func TestTwoRegionsDownIsOneGlobalPageAndRecoveryResolvesOnce(t *testing.T) {
	r := newRig(t, "")
	r.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.plat.SetFault("us1", "", probetest.Fault{Kind: probetest.FaultError})
	r.rounds(2)
	if got := r.triggeredKeys(); strings.Join(got, ",") != "picket/global" {
		t.Fatalf("triggered %v, want only picket/global", got)
	}
	g := r.pd.Events()[0]
	if !strings.HasPrefix(g.Payload.Summary, "[GLOBAL]") || !strings.Contains(g.Payload.Summary, "2 of 4 regions") {
		t.Errorf("summary %q", g.Payload.Summary)
	}
	// Regions recover one by one: no new page, exactly one resolve at the end.
	r.plat.SetFault("us1", "", probetest.Fault{})
	r.rounds(3)
	r.plat.ClearFaults()
	r.rounds(3)
	rec := r.record()
	if rec["resolve picket/global"] != 1 {
		t.Errorf("global resolved %d times: %v", rec["resolve picket/global"], rec)
	}
	for k := range rec {
		if strings.HasPrefix(k, "trigger ") && k != "trigger picket/global" {
			t.Errorf("recovery paged something new: %v", rec)
		}
	}
	if len(r.pd.Open()) != 0 {
		t.Errorf("incidents left open at the receiver: %v", r.pd.Open())
	}
	r.checkNoLeaks()
}

func TestTargetIncidentRoutesByPriority(t *testing.T) {
	r := newRig(t, "")
	r.plat.SetFault("ap1", "web", probetest.Fault{Kind: probetest.FaultWrongBody})
	r.plat.SetFault("us3", "logs", probetest.Fault{Kind: probetest.FaultStale})
	r.rounds(2)
	open := r.pd.OpenFor(pdKeyLow)
	if _, ok := open["picket/target/web/home@ap1"]; ok {
		t.Errorf("web home with a wrong title is not down (status only)")
	}
	high := r.pd.OpenFor(pdKeyHigh)
	ev, ok := high["picket/target/logs/submit-and-read@us3"]
	if !ok {
		t.Fatalf("stale logs in us3 not paged on the high route: %v", r.record())
	}
	if !strings.Contains(ev.Payload.Summary, "not ready within") || ev.Payload.Class != "submit-and-read" {
		t.Errorf("summary %q class %q", ev.Payload.Summary, ev.Payload.Class)
	}
	r.checkNoLeaks()
}

func TestReceiverErrorsDelayButNeverLoseThePage(t *testing.T) {
	r := newRig(t, "")
	r.pd.SetFault(pdtest.Fault{Status: 500, Count: 3})
	r.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.round()
	r.round()
	// 500 three times, then 429 with Retry-After twice, then accepted.
	deadline := time.Now().Add(5 * time.Second)
	for r.pd.Requests() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r.pd.SetFault(pdtest.Fault{Status: 429, RetryAfter: time.Second, Count: 2})
	r.settle()
	rec := r.record()
	if rec["trigger picket/region/eu1"] != 1 || len(rec) != 1 {
		t.Errorf("record %v, want the region trigger exactly once", rec)
	}
	if r.pd.Requests() < 4 {
		t.Errorf("only %d requests: the faults were not exercised", r.pd.Requests())
	}
	if len(r.hook.got()) != 0 {
		t.Log("fallback used while the primary was retrying (allowed after fallback_after)")
	}
	r.checkNoLeaks()
}

func TestPermanentRejectionGoesToFallbackAtOnce(t *testing.T) {
	r := newRig(t, "")
	r.pd.SetFault(pdtest.Fault{Status: 400})
	r.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.rounds(2)
	deadline := time.Now().Add(3 * time.Second)
	for len(r.hook.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := r.hook.got()
	if len(got) != 1 || !strings.Contains(got[0], "[REGION eu1]") {
		t.Fatalf("fallback webhook got %d bodies: %v", len(got), got)
	}
	r.checkNoLeaks()
}

func TestReceiverDownPastFallbackTimeUsesFallbackAndStillDelivers(t *testing.T) {
	r := newRig(t, "")
	r.pd.SetFault(pdtest.Fault{Status: 503})
	r.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.round()
	r.round()
	deadline := time.Now().Add(3 * time.Second)
	for len(r.hook.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(r.hook.got()) != 1 {
		t.Fatalf("fallback got %d notifications after fallback_after", len(r.hook.got()))
	}
	r.pd.ClearFault()
	r.settle()
	if rec := r.record(); rec["trigger picket/region/eu1"] != 1 {
		t.Errorf("primary never delivered after recovery: %v", rec)
	}
}

func TestRestartKeepsIncidentsAndResolvesWhatRecoveredMeanwhile(t *testing.T) {
	r := newRig(t, "")
	r.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.plat.SetFault("ap1", "web", probetest.Fault{Kind: probetest.FaultError})
	r.rounds(2)
	before := r.record()
	if before["trigger picket/region/eu1"] != 1 || before["trigger picket/target/web/home@ap1"] != 1 {
		t.Fatalf("setup: %v", before)
	}
	r.stop()
	// While Picket is down, eu1 recovers; ap1 web stays broken.
	r.plat.SetFault("eu1", "", probetest.Fault{})
	r.start()
	r.rounds(3)
	rec := r.record()
	if rec["resolve picket/region/eu1"] != 1 {
		t.Errorf("zombie incident: eu1 not resolved after restart: %v", rec)
	}
	if rec["trigger picket/target/web/home@ap1"] != 1 || rec["trigger picket/region/eu1"] != 1 {
		t.Errorf("restart re-paged an open incident: %v", rec)
	}
	if _, open := r.pd.Open()["picket/target/web/home@ap1"]; !open {
		t.Errorf("ap1 incident closed although still failing")
	}
}

func TestSilenceRecordsButDoesNotSend(t *testing.T) {
	now := time.Now().UTC()
	extra := fmt.Sprintf("silences:\n  - {comment: maintenance, start: %q, end: %q, match: {region: [us3]}}\n",
		now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	r := newRig(t, extra)
	r.plat.SetFault("us3", "", probetest.Fault{Kind: probetest.FaultDown})
	r.rounds(2)
	if n := len(r.pd.Events()); n != 0 {
		t.Fatalf("silenced incident sent: %v", r.record())
	}
	st := r.engine.Snapshot()
	if len(st.Incidents) != 1 || !st.Incidents[0].Silenced {
		t.Fatalf("silenced incident not recorded: %+v", st.Incidents)
	}
	r.plat.ClearFaults()
	r.rounds(3)
	if n := len(r.pd.Events()); n != 0 {
		t.Errorf("resolve sent for a never-sent incident: %v", r.record())
	}
}
