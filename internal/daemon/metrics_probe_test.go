package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/testkit"
	"github.com/picket-dev/picket/probe"
	"github.com/picket-dev/picket/probe/probetest"
)

// The series blackbox_exporter has and its dashboards read (probe_http_version,
// probe_http_ssl, probe_tls_version_info, probe_dns_*_rrs, probe_grpc_status_code) come
// out of a real daemon probing the simulated platform over HTTPS, DNS and gRPC.
func TestBlackboxSeriesOfEveryKind(t *testing.T) {
	f := newFixtureOn(t, probetest.Options{Regions: []string{"eu1"}, DNSAddr: "127.0.0.1:0",
		TLSAddrs: map[string]string{"eu1": ""}, GRPCAddrs: map[string]string{"eu1": ""}})
	plat, pd := f.plat, f.pd
	cfg := fmt.Sprintf(`vantage: bb
listen: 127.0.0.1:0
state_dir: state
defaults: {interval: 500ms, timeout: 450ms}
regions: {eu1: {vars: {secure: %q, grpc: %q}}}
products:
  - name: web
    journeys:
      - name: secure
        steps:
          - {name: lookup, dns: {server: %q, name: api.eu1.sim.test, type: A}}
          - {name: home, http: {url: "{{.region.secure}}/", tls: {ca_file: %q, server_name: intake.eu1.sim.test}}}
          - {name: health, grpc: {address: "{{.region.grpc}}", plaintext: true}}
notifiers: {pd: {pagerduty: {routing_key: "daemontestroutingkey000000000001", events_url: %q}}}
routes: [{notify: [pd]}]
`, plat.TLSURL("eu1"), plat.GRPCAddr("eu1"), plat.DNSAddr(), plat.CAFile(), pd.BaseURL())
	if err := os.WriteFile(f.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stop := f.start()
	defer stop()
	var m string
	testkit.WaitFor(t, 10*time.Second, "a run in /metrics", func() bool {
		_, m = body(t, base+"/metrics")
		return strings.Contains(m, `probe_success{journey="secure",product="web",region="eu1",vantage="bb"} 1`)
	})
	labels := `journey="secure",product="web",region="eu1",step="%s",vantage="bb"`
	for _, want := range []string{
		"probe_http_version{" + fmt.Sprintf(labels, "home") + "} (1.1|2)",
		"probe_http_ssl{" + fmt.Sprintf(labels, "home") + "} 1",
		"probe_http_redirects{" + fmt.Sprintf(labels, "home") + "} 0",
		"probe_tls_version_info{" + fmt.Sprintf(labels, "home") + `,version="TLS 1.3"} 1`,
		// api.eu1 is a CNAME of intake.eu1, which has the A record.
		"probe_dns_answer_rrs{" + fmt.Sprintf(labels, "lookup") + "} 2",
		"probe_dns_authority_rrs{" + fmt.Sprintf(labels, "lookup") + "} 0",
		"probe_dns_additional_rrs{" + fmt.Sprintf(labels, "lookup") + "} [0-9]",
		"probe_grpc_status_code{" + fmt.Sprintf(labels, "health") + "} 0",
	} {
		series, value, _ := strings.Cut(want, "} ")
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series+"}") + " " + value + "$").MatchString(m) {
			t.Errorf("no line %q in /metrics", want)
		}
	}
	if strings.Contains(m, `step="lookup",vantage="bb",version=`) || strings.Contains(m, `step="health",vantage="bb",version=`) {
		t.Errorf("a probe_tls_version_info series for a step without TLS")
	}
}

// probe_tls_version_info keeps one series per step, as blackbox does: a new version
// replaces the old one, and a step that stops using TLS has none.
func TestTLSVersionSeriesFollowsTheStep(t *testing.T) {
	m := NewMetrics("v", "test", "abc")
	tg := &config.Target{ID: "web/home@eu1", Product: "web", Journey: "home", Region: "eu1"}
	for _, tc := range []struct{ version, want string }{
		{"1.2", "TLS 1.2"}, {"1.3", "TLS 1.3"}, {"1.3", "TLS 1.3"}, {"", ""}, {"1.2", "TLS 1.2"},
	} {
		m.ObserveResult(tg, probe.Result{Status: probe.StatusUp, Steps: []probe.StepResult{
			{Name: "get", Kind: "http", Wire: probe.Wire{TLSVersion: tc.version, HTTPSSL: tc.version != "", HTTPVersion: 1.1}}}})
		if got := tlsVersions(t, m); got != tc.want {
			t.Errorf("after %q: versions %q, want %q", tc.version, got, tc.want)
		}
	}
	m.Forget(map[string]bool{})
	if got := tlsVersions(t, m); got != "" {
		t.Errorf("after the target went: versions %q", got)
	}
}

// tlsVersions lists the version labels of probe_tls_version_info series at 1, as a
// scrape reads them.
func tlsVersions(t *testing.T, m *Metrics) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(scrapeText(t, m.Handler(slog.New(slog.DiscardHandler)), false), "\n") {
		if !strings.HasPrefix(line, "probe_tls_version_info{") || !strings.HasSuffix(line, "} 1") {
			continue
		}
		if _, rest, ok := strings.Cut(line, `version="`); ok {
			version, _, _ := strings.Cut(rest, `"`)
			out = append(out, version)
		}
	}
	return strings.Join(out, ",")
}
