package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/probe/probetest"
)

// TestMixedKindsJourney: DNS resolves the intake host, TLS checks its certificate, HTTP
// submits over HTTPS to the address DNS gave, HTTP reads back; plus a TCP intake step.
func TestMixedKindsJourney(t *testing.T) {
	regions := []string{"eu1", "us1"}
	tlsAddrs := map[string]string{"eu1": "", "us1": ""}
	e := newEnvWith(t, probetest.Options{Regions: regions, APIKey: testAPIKey, IngestDelay: 30 * time.Millisecond,
		DNSAddr: "127.0.0.1:0", TLSAddrs: tlsAddrs, TCPAddrs: map[string]string{"eu1": "", "us1": ""}})
	plat, dir := e.plat, e.dir
	var b strings.Builder
	fmt.Fprintf(&b, "vantage: kinds\nsecrets: {api_key: {file: api_key}}\ndefaults: {timeout: 2s}\nregions:\n")
	for _, r := range regions {
		port := strings.TrimPrefix(plat.TLSURL(r), "https://127.0.0.1:")
		fmt.Fprintf(&b, "  %s: {vars: {port: %q, intake: %q}}\n", r, port, plat.TCPAddr(r))
	}
	fmt.Fprintf(&b, `products:
  - name: logs
    journeys:
      - name: secure-submit
        steps:
          - name: resolve
            dns: {server: %q, name: "intake.{{.region.name}}.sim.test", type: A}
            expect: {answers: ['^127\.0\.0\.1$'], authoritative: true}
            extract: {ip: {regex: '(?m)^([0-9.]+)$'}}
          - name: certificate
            tls: {address: "{{.vars.ip}}:{{.region.port}}", server_name: "intake.{{.region.name}}.sim.test", ca_file: %q}
            expect: {cert_min_days: 14, expr: 'latency < duration("2s")'}
          - name: submit
            http:
              method: POST
              url: "https://{{.vars.ip}}:{{.region.port}}/v1/logs"
              body: '{"m":"{{.run.id}}"}'
              headers: {Authorization: "Bearer {{.secret.api_key}}"}
              tls: {ca_file: %q, server_name: "intake.{{.region.name}}.sim.test"}
            expect: {status: [202]}
            extract: {id: {json: id}}
          - name: read-back
            http:
              url: "https://{{.vars.ip}}:{{.region.port}}/v1/logs/{{.vars.id}}"
              headers: {Authorization: "Bearer {{.secret.api_key}}"}
              tls: {ca_file: %q, server_name: "intake.{{.region.name}}.sim.test"}
            poll: {every: 20ms, within: 1s}
            expect: {status: [200], json: {m: "{{.run.id}}"}}
      - name: intake-line
        steps:
          - tcp:
              address: "{{.region.intake}}"
              exchange:
                - {expect: '^220 '}
                - {send: "PING\r\n", expect: '^\+PONG'}
                - {send: "QUIT\r\n", expect: '^221'}
`, plat.DNSAddr(), plat.CAFile(), plat.CAFile(), plat.CAFile())
	cfg := filepath.Join(dir, "kinds.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := picket(t, "check", "-c", cfg, "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	out := checkOutput(t, r)
	if len(out.Results) != 4 || out.Summary.Up != 4 {
		t.Fatalf("%+v", out)
	}
	// A regional fault: DNS drops eu1's queries; the journey fails at its first step.
	plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r = picket(t, "check", "-c", cfg, "-o", "json", "--journey", "secure-submit")
	out = checkOutput(t, r)
	for _, res := range out.Results {
		switch res.Region {
		case "eu1":
			if res.Status != "down" || !strings.HasPrefix(res.Error, "step resolve: timeout") {
				t.Errorf("eu1: %s %q", res.Status, res.Error)
			}
		default:
			if res.Status != "up" {
				t.Errorf("%s: %s %q", res.Target, res.Status, res.Error)
			}
		}
	}
	// A wrong answer: DNS points eu1 at TEST-NET; the answers expectation says so.
	plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultWrongBody})
	r = picket(t, "check", "-c", cfg, "-o", "json", "--journey", "secure-submit", "--region", "eu1")
	out = checkOutput(t, r)
	if e := out.Results[0].Error; !strings.Contains(e, "step resolve: no answer matches `^127\\.0\\.0\\.1$` (answers: [192.0.2.1])") {
		t.Errorf("wrong DNS answer: %q", e)
	}
}
