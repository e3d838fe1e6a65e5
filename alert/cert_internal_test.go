package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// warned is resultOf with a certificate warning on step "get", daysLeft days from now.
func warned(id, status string, now time.Time, daysLeft int) probe.Result {
	r := resultOf(id, status)
	r.Started = now
	r.CertWarnings = []probe.CertWarning{{Step: "get", NotAfter: now.Add(time.Duration(daysLeft)*24*time.Hour + time.Hour),
		DaysLeft: daysLeft, MinDays: 14, Subject: "api.example.test", Issuer: "Example CA"}}
	return r
}

// The warning follows the latest result (no thresholds), stands beside the target's
// up/down state, and its incident is never absorbed into a wider outage.
func TestCertWarningStandsApartFromOutages(t *testing.T) {
	c := &testClock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	ob := &recordingOutbox{}
	e, err := NewEngine(EngineOptions{Config: engineConfig(t, "0s"), Outbox: ob, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	e.Observe(warned("logs/a@eu1", "up", c.t, 9))
	got := ob.lines()
	if len(got) != 1 || got[0] != "trigger picket/cert/logs/a@eu1 logs/a@eu1 certificate expires in 9 days (2026-12-12)" {
		t.Fatalf("got %q", got)
	}
	if s := e.states["logs/a@eu1"]; s.State != StateOK || s.Cert == nil || s.Cert.DaysLeft != 9 || !s.Cert.Since.Equal(c.t) {
		t.Fatalf("state %+v cert %+v", s, s.Cert)
	}

	// eu1 goes down (both products): a region outage, and the warning stays its own.
	c.t = c.t.Add(time.Minute)
	e.ObserveAll([]probe.Result{warned("logs/a@eu1", "down", c.t, 9), resultOf("metrics/q@eu1", "down")})
	got = ob.lines()
	if len(got) != 2 || !strings.HasPrefix(got[1], "trigger picket/region/eu1 [REGION eu1]") {
		t.Fatalf("got %q", got)
	}
	cert, ok := e.Incident("picket/cert/logs/a@eu1")
	if !ok || cert.AbsorbedInto != "" || cert.Scope != ScopeTarget || cert.Condition != ConditionCertExpiry {
		t.Fatalf("cert incident %+v (open %v): want it open on its own", cert, ok)
	}
	if region, _ := e.Incident("picket/region/eu1"); strings.Join(region.Targets, ",") != "logs/a@eu1,metrics/q@eu1" {
		t.Errorf("region targets %v", region.Targets)
	}

	// eu1 recovers, the certificate is still near expiry: the region resolves, not it.
	c.t = c.t.Add(time.Minute)
	e.ObserveAll([]probe.Result{warned("logs/a@eu1", "up", c.t, 8), resultOf("metrics/q@eu1", "up")})
	got = ob.lines()
	if len(got) != 3 || !strings.HasPrefix(got[2], "resolve picket/region/eu1") {
		t.Fatalf("got %q", got)
	}
	if _, ok := e.Incident("picket/cert/logs/a@eu1"); !ok {
		t.Fatal("the cert incident went with the region")
	}
	if s := e.states["logs/a@eu1"]; s.Cert.DaysLeft != 8 || !s.Cert.Since.Equal(c.t.Add(-2*time.Minute)) {
		t.Errorf("cert %+v: want 8 days left, since the first warning", s.Cert)
	}
	if st := e.Snapshot(); st.Banner != "All systems operational" || st.Matrix["logs"]["eu1"] != "up" {
		t.Errorf("banner %q, matrix %v", st.Banner, st.Matrix)
	}

	// One result without the warning (renewed) resolves it at once.
	c.t = c.t.Add(time.Minute)
	e.Observe(resultOf("logs/a@eu1", "up"))
	got = ob.lines()
	if len(got) != 4 || got[3] != "resolve picket/cert/logs/a@eu1 logs/a@eu1 certificate no longer near expiry" {
		t.Fatalf("got %q", got)
	}
	if len(e.OpenIncidents()) != 0 || e.states["logs/a@eu1"].Cert != nil {
		t.Errorf("open %v, cert %+v", e.OpenIncidents(), e.states["logs/a@eu1"].Cert)
	}
}

// A one-shot `check --page` without state resolves the certificate warnings it may have
// opened before, of targets that check a certificate, and never through a pager.
func TestResolveQuietResolvesCertWarnings(t *testing.T) {
	cfg, err := config.Parse("q.yaml", []byte(`
vantage: v
regions: {eu1: {vars: {api: "https://127.0.0.1:1"}}}
products:
  - {name: logs, journeys: [{name: a, steps: [{name: get, http: {url: "{{.region.api}}/"}, expect: {cert_min_days: 14}}]}]}
  - {name: web, journeys: [{name: b, steps: [{http: {url: "{{.region.api}}/"}}]}]}
notifiers: {pager: {pagerduty: {routing_key: "quietroutingkey00000000000000001"}}, chat: {webhook: {url: "http://127.0.0.1:1/hook"}}}
routes: [{notify: [pager, chat]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ob := &deliveryOutbox{}
	e, err := NewEngine(EngineOptions{Config: cfg, Outbox: ob})
	if err != nil {
		t.Fatal(err)
	}
	e.ResolveQuiet()
	var cert []string
	for _, d := range ob.got {
		if strings.HasPrefix(d.Notification.DedupKey, "picket/cert/") {
			cert = append(cert, d.Notification.Action+" "+d.Notification.DedupKey+" via "+strings.Join(d.Notify, ","))
		}
	}
	if strings.Join(cert, "; ") != "resolve picket/cert/logs/a@eu1 via chat" {
		t.Errorf("cert resolves %q, want one for logs/a@eu1 via chat", cert)
	}
}

type deliveryOutbox struct{ got []notify.Delivery }

func (o *deliveryOutbox) Enqueue(d notify.Delivery) error { o.got = append(o.got, d); return nil }
