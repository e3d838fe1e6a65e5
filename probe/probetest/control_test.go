package probetest

import (
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestControlAPIRoundTrip(t *testing.T) {
	p := startPlatform(t, Options{})
	c := newClient(t, 2*time.Second)
	ctl := p.ControlURL()

	listed := func(t *testing.T, body string) []FaultRule {
		t.Helper()
		var rules []FaultRule
		if err := json.Unmarshal([]byte(body), &rules); err != nil {
			t.Fatalf("expected a JSON list of rules, got %s: %v", body, err)
		}
		return rules
	}

	a := mustCall(t, c, "POST", ctl+"/faults", `{"region":"eu1","product":"logs","kind":"down"}`)
	if a.status != 200 {
		t.Fatalf("POST /faults: expected 200, got %d %s", a.status, a.body)
	}
	want := []FaultRule{{Region: "eu1", Product: "logs", Kind: FaultDown}}
	if got := listed(t, a.body); !slices.Equal(got, want) {
		t.Errorf("POST answer: expected %v, got %v", want, got)
	}
	if bad := wantErrorContaining("status 503")(journey(c, p.URL("eu1"), "eu1", "logs"), 0); bad != nil {
		t.Errorf("logs in eu1 after posting down: %v", bad)
	}

	mustCall(t, c, "POST", ctl+"/faults", `{"product":"metrics","kind":"slow","delay":"3s"}`)
	a = mustCall(t, c, "GET", ctl+"/faults", "")
	wantBody := `[{"product":"metrics","kind":"slow","delay":"3s"},{"region":"eu1","product":"logs","kind":"down"}]` + "\n"
	if a.status != 200 || a.body != wantBody {
		t.Errorf("GET /faults: expected %s, got %d %s", wantBody, a.status, a.body)
	}
	if got := p.Faults(); len(got) != 2 || got[0].Delay != 3*time.Second {
		t.Errorf("Faults(): expected the two posted rules, got %v", got)
	}

	a = mustCall(t, c, "POST", ctl+"/faults", `{"product":"metrics","kind":"none"}`)
	if got := listed(t, a.body); !slices.Equal(got, want) {
		t.Errorf("kind none: expected only %v left, got %v", want, got)
	}

	mustCall(t, c, "POST", ctl+"/faults", `{"region":"us1","kind":"error"}`)
	a = mustCall(t, c, "DELETE", ctl+"/faults?region=eu1&product=logs", "")
	if got := listed(t, a.body); !slices.Equal(got, []FaultRule{{Region: "us1", Kind: FaultError}}) {
		t.Errorf("DELETE one rule: expected only us1 error left, got %v", got)
	}
	a = mustCall(t, c, "DELETE", ctl+"/faults", "")
	if a.status != 200 || a.body != "[]\n" || len(p.Faults()) != 0 {
		t.Errorf("DELETE /faults: expected 200 [], got %d %s (Faults %v)", a.status, a.body, p.Faults())
	}
	if err := journey(c, p.URL("eu1"), "eu1", "logs"); err != nil {
		t.Errorf("logs in eu1 after clearing: %v", err)
	}
}

func TestControlAPIRejectsBadRules(t *testing.T) {
	p := startPlatform(t, Options{})
	c := newClient(t, 2*time.Second)
	cases := []struct {
		name, method, path, body, errHas string
	}{
		{"not JSON", "POST", "/faults", `down`, "expected {"},
		{"unknown field", "POST", "/faults", `{"region":"eu1","knd":"down"}`, `unknown field \"knd\"`},
		{"unknown kind", "POST", "/faults", `{"kind":"melt"}`, `got \"melt\"`},
		{"bad delay", "POST", "/faults", `{"kind":"slow","delay":"3 seconds"}`, "Go duration"},
		{"unknown region", "POST", "/faults", `{"region":"mars1","kind":"down"}`, `got \"mars1\"`},
		{"unknown product", "POST", "/faults", `{"product":"dns","kind":"down"}`, `got \"dns\"`},
		{"delete unknown region", "DELETE", "/faults?region=mars1", "", `got \"mars1\"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := mustCall(t, c, tc.method, p.ControlURL()+tc.path, tc.body)
			if a.status != 400 || !strings.Contains(a.body, tc.errHas) {
				t.Errorf("expected 400 containing %s, got %d %s", tc.errHas, a.status, a.body)
			}
		})
	}
	if got := p.Faults(); len(got) != 0 {
		t.Errorf("expected no rule from rejected requests, got %v", got)
	}
}

func TestControlAPIHelpAndRequests(t *testing.T) {
	p := startPlatform(t, Options{Regions: []string{"us3", "eu1"}})
	c := newClient(t, 2*time.Second)
	a := mustCall(t, c, "GET", p.ControlURL()+"/", "")
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /: expected 200 text, got %d %v", a.status, a.header)
	}
	mustHave := []string{
		"curl -s " + p.ControlURL() + "/faults",
		"curl -s -X POST " + p.ControlURL() + `/faults -d '{"region":"us3","kind":"down"}'`,
		"curl -s -X DELETE " + p.ControlURL() + "/faults",
		p.URL("us3"), p.URL("eu1"),
	}
	for _, k := range faultKinds() {
		mustHave = append(mustHave, string(k))
	}
	for _, s := range mustHave {
		if !strings.Contains(a.body, s) {
			t.Errorf("help: expected %q in\n%s", s, a.body)
		}
	}

	mustCall(t, c, "GET", p.URL("eu1")+"/healthz", "")
	mustCall(t, c, "GET", p.URL("eu1")+"/v1/query?q=up", "")
	a = mustCall(t, c, "GET", p.ControlURL()+"/requests", "")
	var counts map[string]map[string]int
	if err := json.Unmarshal([]byte(a.body), &counts); err != nil {
		t.Fatalf("GET /requests: expected JSON, got %s: %v", a.body, err)
	}
	if counts["eu1"]["healthz"] != 1 || counts["eu1"]["metrics"] != 1 || counts["us3"]["logs"] != 0 || len(counts) != 2 {
		t.Errorf("GET /requests: expected eu1 healthz 1 and metrics 1, nothing in us3, got %v", counts)
	}
}

func TestControlHelpNamesEveryServer(t *testing.T) {
	p := startPlatform(t, Options{DNSAddr: "127.0.0.1:0", TLSAddrs: map[string]string{"eu1": ""}, TCPAddrs: map[string]string{"us1": ""},
		GRPCAddrs: map[string]string{"us1": ""}})
	a := mustCall(t, newClient(t, 2*time.Second), "GET", p.ControlURL()+"/", "")
	_, dnsPort, _ := net.SplitHostPort(p.DNSAddr())
	for _, s := range []string{
		p.TLSURL("eu1"), "line intake " + p.TCPAddr("us1"), p.CAFile(),
		"grpc health " + p.GRPCAddr("us1"), "grpc_health_probe -addr=" + p.GRPCAddr("us1"),
		"dig @127.0.0.1 -p " + dnsPort + " intake.eu1.sim.test",
	} {
		if !strings.Contains(a.body, s) {
			t.Errorf("help: expected %q in\n%s", s, a.body)
		}
	}
}
