package config

import "testing"

// TestOpsgenieIsKeptFromDegraded: under alerting.degraded: notify a degraded incident
// reaches chat, email and webhooks, never a pager, and Opsgenie is a pager.
func TestOpsgenieIsKeptFromDegraded(t *testing.T) {
	cfg, err := Parse("degraded.yaml", []byte(`regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: web, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
notifiers:
  og: {opsgenie: {api_key: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}}
  mail: {email: {host: smtp.example.test, from: p@example.test, to: [o@example.test]}}
routes: [{notify: [og, mail]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	f := Facets{Scope: "target", Products: []string{"web"}, Regions: []string{"eu1"}, Priority: 3, Degraded: true}
	routes := cfg.RoutesFor(f, "notify")
	if len(routes) != 1 || len(routes[0].Notify) != 1 || routes[0].Notify[0] != "mail" {
		t.Errorf("degraded routes %+v, want mail only", routes)
	}
	f.Degraded = false
	if routes := cfg.RoutesFor(f, "notify"); len(routes) != 1 || len(routes[0].Notify) != 2 {
		t.Errorf("outage routes %+v, want og and mail", routes)
	}
	if !cfg.Notifiers["og"].IsPager() || cfg.Notifiers["mail"].IsPager() {
		t.Error("IsPager: want opsgenie yes, email no")
	}
	if e := cfg.Notifiers["mail"].Email; e.Port != 587 || e.TLS != EmailStartTLS {
		t.Errorf("email defaults: port %d tls %s", e.Port, e.TLS)
	}
	if og := cfg.Notifiers["og"].Opsgenie; og.APIURL != OpsgenieUS {
		t.Errorf("opsgenie default host %s", og.APIURL)
	}
}
