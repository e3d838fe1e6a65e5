package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/testkit"
	"github.com/picket-dev/picket/probe/probetest"
)

// The monitoring examples (examples/prometheus, examples/grafana) are tested against a
// real Prometheus (Debian's package: .ci/install-prometheus). Without promtool and
// prometheus on PATH these tests skip, unless PICKET_REQUIRE_PROMETHEUS=1 (as in CI).

const (
	promExamples  = "../../examples/prometheus"
	dashboardFile = "../../examples/grafana/picket.json"
)

func requireProm(t *testing.T) (prometheus, promtool string) {
	t.Helper()
	var missing []string
	for _, name := range []string{"prometheus", "promtool"} {
		path, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
		}
		if name == "prometheus" {
			prometheus = path
		} else {
			promtool = path
		}
	}
	if len(missing) > 0 {
		if os.Getenv("PICKET_REQUIRE_PROMETHEUS") == "1" {
			t.Fatalf("PICKET_REQUIRE_PROMETHEUS=1 but %s not on PATH (install: .ci/install-prometheus)", strings.Join(missing, " and "))
		}
		t.Skipf("%s not on PATH (install: .ci/install-prometheus; PICKET_REQUIRE_PROMETHEUS=1 fails instead)", strings.Join(missing, " and "))
	}
	return prometheus, promtool
}

// TestPromtoolAcceptsTheExamples: the config and rules pass promtool's checks, and the
// rules' unit tests (picket-rules.test.yml: each alert fires when it should, not before
// its `for`, not on healthy series) pass.
func TestPromtoolAcceptsTheExamples(t *testing.T) {
	_, promtool := requireProm(t)
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "picket-rules.yml"},
		{"test", "rules", "picket-rules.test.yml"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, promtool, args...)
		cmd.Dir = promExamples
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// promEnv is a real Prometheus scraping two vantages of a fleet with the example config.
type promEnv struct {
	base     string   // Prometheus's HTTP API
	vantages []string // their listen addresses
	targets  []string
	icmp     bool // the config has an icmp journey (it needs raw sockets or ping_group_range)
}

// TestDashboardsGetDataFromARealPrometheus starts two `picket run` vantages (a fleet)
// probing the simulated platform with every step kind, and a real Prometheus scraping
// them with examples/prometheus/prometheus.yml. Then: every query of
// examples/grafana/picket.json and every query Grafana 7587 and the blackbox-exporter
// mixin make returns data, those dashboards get one row per target (not one mixing
// them), and Picket's rules load and evaluate without error.
func TestDashboardsGetDataFromARealPrometheus(t *testing.T) {
	prom, promtool := requireProm(t)
	pe := startPromEnv(t, prom)
	pe.checkMetricsLint(t, promtool)
	queries := dashboardQueries(t)
	queries = append(queries, blackboxDashboardQueries(pe.icmp)...)
	testkit.WaitFor(t, 90*time.Second, "every dashboard query to return data", func() bool {
		for _, q := range queries {
			if len(pe.query(t, q)) == 0 {
				return false
			}
		}
		return true
	})
	// The fault's incident is open and its page was accepted: the panels show it.
	for _, q := range []string{`max(picket_incidents_open{job="picket", scope="target"}) > 0`, `sum(picket_notifications_total{job="picket", result="ok"}) > 0`} {
		testkit.WaitFor(t, 30*time.Second, q, func() bool { return len(pe.query(t, q)) > 0 })
	}
	for _, q := range queries { // say which, if one went empty again
		if len(pe.query(t, q)) == 0 {
			t.Errorf("no data: %s", q)
		}
	}
	for _, v := range dashboardVariables(t) {
		if vals := pe.labelValues(t, v.label, v.match); len(vals) == 0 {
			t.Errorf("variable %s: no values for %s of %s", v.name, v.label, v.match)
		}
	}
	pe.checkRowPerTarget(t)
	pe.checkRulesHealthy(t)
}

func startPromEnv(t *testing.T, prom string) *promEnv {
	t.Helper()
	e := newEnvWith(t, probetest.Options{Regions: []string{"eu1", "us1"}, APIKey: testAPIKey, DNSAddr: "127.0.0.1:0",
		TLSAddrs: map[string]string{"eu1": "", "us1": ""}, GRPCAddrs: map[string]string{"eu1": "", "us1": ""},
		TCPAddrs: map[string]string{"eu1": "", "us1": ""}})
	plat, pd, dir := e.plat, e.pd, e.dir
	ports := distinctPorts(t, 5)
	binds, listens := ports[:2], ports[2:4]
	pe := &promEnv{base: "http://" + ports[4], vantages: listens}
	privileged, icmp := icmpMode()
	pe.icmp = icmp
	for i, name := range []string{"prom-a", "prom-b"} {
		cfg := filepath.Join(dir, name+".yaml")
		body := promVantageConfig(plat, pd, name, listens[i], binds[i], binds[1-i], privileged, icmp)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c := startChild(t, "run", "-c", cfg, "--log-format", "text")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("log of %s:\n%s", name, tail(c.logs(), 40))
			}
		})
		testkit.WaitFor(t, 15*time.Second, name+" to be ready", func() bool { return httpOK("http://" + listens[i] + "/readyz") })
	}
	pe.targets = promTargets(icmp)
	startPrometheus(t, prom, dir, ports[4], listens)
	// One product failing in one region: an incident, a page, notifications counted.
	plat.SetFault("us1", "web", probetest.Fault{Kind: probetest.FaultError})
	return pe
}

// icmpMode says whether this host lets Picket ping: as root with raw sockets
// (privileged), or as a user in net.ipv4.ping_group_range (unprivileged).
func icmpMode() (privileged, ok bool) {
	if os.Geteuid() == 0 {
		return true, true
	}
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return false, false
	}
	f := strings.Fields(string(raw))
	if len(f) != 2 {
		return false, false
	}
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	gid := os.Getgid()
	return false, lo <= gid && gid <= hi
}

func promVantageConfig(plat *probetest.Platform, pd *pdtest.Receiver, name, listen, bind, peer string, privileged, icmp bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vantage: %s\nlisten: %s\nstate_dir: state-%s\n", name, listen, name)
	b.WriteString("defaults: {interval: 1s, timeout: 900ms, failure_threshold: 2, success_threshold: 2}\n")
	b.WriteString("alerting: {group_wait: 1s}\nsecrets: {api_key: {file: api_key}}\nregions:\n")
	for _, r := range []string{"eu1", "us1"} {
		fmt.Fprintf(&b, "  %s: {vars: {api: %q, secure: %q, grpc: %q, intake: %q}}\n", r, plat.URL(r), plat.TLSURL(r), plat.GRPCAddr(r), plat.TCPAddr(r))
	}
	fmt.Fprintf(&b, `products:
  - name: web
    journeys:
      - name: secure
        steps:
          - {name: lookup, dns: {server: %q, name: "api.{{.region.name}}.sim.test", type: A}}
          - {name: home, http: {url: "{{.region.secure}}/", tls: {ca_file: %q, server_name: "intake.{{.region.name}}.sim.test"}}}
  - name: intake
    journeys:
      - name: health
        steps:
          - {name: grpc, grpc: {address: "{{.region.grpc}}", plaintext: true}}
          - name: line
            tcp: {address: "{{.region.intake}}", exchange: [{expect: '^220 '}, {send: "QUIT\r\n", expect: '^221'}]}
`, plat.DNSAddr(), plat.CAFile())
	if icmp {
		fmt.Fprintf(&b, `      - name: ping
        steps:
          - {icmp: {host: 127.0.0.1, count: 2, interval: 50ms, privileged: %t}, expect: {max_loss: 0.5}}
`, privileged)
	}
	fmt.Fprintf(&b, "notifiers: {pd: {pagerduty: {routing_key: \"promtestroutingkey00000000000001\", events_url: %q}}}\nroutes: [{notify: [pd]}]\n", pd.BaseURL())
	fmt.Fprintf(&b, "cluster: {bind: %s, peers: [%s], insecure: true, alone_after: 3s, notify: [pd], %s}\n", bind, peer, fleetGossip)
	return b.String()
}

// promTargets lists the target ids promVantageConfig makes: what `instance` must be.
func promTargets(icmp bool) []string {
	journeys := []string{"web/secure", "intake/health"}
	if icmp {
		journeys = append(journeys, "intake/ping")
	}
	var out []string
	for _, j := range journeys {
		for _, r := range []string{"eu1", "us1"} {
			out = append(out, j+"@"+r)
		}
	}
	slices.Sort(out)
	return out
}

// startPrometheus runs prometheus on the example config, changed only in what a test
// must change: the targets (the vantages' listen addresses), the rule file's path, and
// a 1 s scrape and evaluation interval.
func startPrometheus(t *testing.T, prom, dir, listen string, vantages []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(promExamples, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(filepath.Join(promExamples, "picket-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []string{rules}
	jobs := cfg["scrape_configs"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("prometheus.yml: want one scrape job, got %d", len(jobs))
	}
	jobs[0].(map[string]any)["static_configs"] = []any{map[string]any{"targets": vantages}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prom, "--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+listen, "--log.level=warn")
	var logs testkit.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(logs.String(), 40))
		}
	})
	testkit.WaitFor(t, 30*time.Second, "prometheus to be ready", func() bool { return httpOK("http://" + listen + "/-/ready") })
}

func httpOK(u string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", s.Value, err)
	}
	return v
}

// promGet asks Prometheus's HTTP API and decodes data into v.
func (pe *promEnv) promGet(t *testing.T, path string, params url.Values, v any) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(pe.base + path + "?" + params.Encode())
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer resp.Body.Close()
	var answer struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	if answer.Status != "success" {
		t.Fatalf("prometheus %s %v: %s", path, params, answer.Error)
	}
	if err := json.Unmarshal(answer.Data, v); err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
}

func (pe *promEnv) query(t *testing.T, q string) []promSample {
	t.Helper()
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []promSample `json:"result"`
	}
	pe.promGet(t, "/api/v1/query", url.Values{"query": {q}}, &data)
	if data.ResultType != "vector" {
		t.Fatalf("%s: result type %s, want vector", q, data.ResultType)
	}
	return data.Result
}

func (pe *promEnv) labelValues(t *testing.T, label, match string) []string {
	t.Helper()
	var vals []string
	pe.promGet(t, "/api/v1/label/"+label+"/values", url.Values{"match[]": {match}}, &vals)
	return vals
}

// checkMetricsLint: a vantage's /metrics passes `promtool check metrics` (names, types,
// units, as Prometheus's own linter sees them).
func (pe *promEnv) checkMetricsLint(t *testing.T, promtool string) {
	t.Helper()
	var body []byte
	testkit.WaitFor(t, 15*time.Second, "probe series in /metrics", func() bool {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + pe.vantages[0] + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		return err == nil && bytes.Contains(body, []byte("probe_tls_version_info{")) && bytes.Contains(body, []byte("probe_grpc_status_code{"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// checkRowPerTarget: blackbox dashboards list `instance` values as their rows; each must
// be one target, seen by both vantages, never Picket's own address.
func (pe *promEnv) checkRowPerTarget(t *testing.T) {
	t.Helper()
	rows := pe.labelValues(t, "instance", `probe_success{job="picket"}`)
	slices.Sort(rows)
	if !slices.Equal(rows, pe.targets) {
		t.Errorf("7587's rows (label_values(probe_success, instance)): %q\nwant one per target: %q", rows, pe.targets)
	}
	for _, s := range pe.query(t, `count by (instance) (probe_success{job="picket"})`) {
		if n := s.float(t); n != 2 {
			t.Errorf("instance %s has %v probe_success series, want 2 (one per vantage)", s.Metric["instance"], n)
		}
	}
	// The mixin's share of probes over TLS, and its availability, are shares: at most 1.
	for _, q := range []string{
		`count(probe_http_ssl{job=~"picket"} == 1) / count(probe_http_version{job=~"picket"})`,
		`(count(probe_success{job=~"picket"} == 1) OR vector(0)) / count(probe_success{job=~"picket"})`,
	} {
		for _, s := range pe.query(t, q) {
			if v := s.float(t); v <= 0 || v > 1 {
				t.Errorf("%s = %v, want a share in (0, 1]", q, v)
			}
		}
	}
	for _, s := range pe.query(t, `probe_http_version{instance="web/secure@eu1", step="home"}`) {
		if v := s.float(t); v != 1.1 && v != 2 {
			t.Errorf("HTTP version of web/secure@eu1: %v", v)
		}
	}
}

// checkRulesHealthy: every rule of picket-rules.yml is loaded and evaluates without error
// on the real series, and every metric a rule names exists (a typo would make a rule
// silently never fire).
func (pe *promEnv) checkRulesHealthy(t *testing.T) {
	t.Helper()
	var data struct {
		Groups []struct {
			Rules []struct {
				Name, Query, Health, LastError string
			} `json:"rules"`
		} `json:"groups"`
	}
	testkit.WaitFor(t, 10*time.Second, "every rule evaluated", func() bool {
		pe.promGet(t, "/api/v1/rules", url.Values{}, &data)
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				if r.Health == "unknown" {
					return false
				}
			}
		}
		return len(data.Groups) > 0
	})
	n := 0
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
			}
			for _, name := range metricNames(r.Query) {
				if len(pe.query(t, "count("+name+`{job="picket"})`)) == 0 {
					t.Errorf("rule %s names %s, which is not scraped from Picket", r.Name, name)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("%d rules loaded, want the 10 of picket-rules.yml", n)
	}
}

var metricName = regexp.MustCompile(`\b(up|picket_[a-z_]+|probe_[a-z_]+)\b`)

func metricNames(q string) []string {
	var out []string
	for _, m := range metricName.FindAllString(q, -1) {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}
