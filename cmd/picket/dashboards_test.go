package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// grafanaVars are what Grafana puts for the dashboards' variables in these tests: every
// product and region, the scrape job of examples/prometheus/prometheus.yml, and a rate
// window of a few 1 s scrapes.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "10s", "$job", "picket", "$product", ".+", "$region", ".+",
	"$cluster", "", "$instance", ".+", "$target", ".+")

// dashboardQueries are the expressions of every panel of examples/grafana/picket.json,
// variables filled in.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	d := readDashboard(t)
	var out []string
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, grafanaVars.Replace(tg.Expr))
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(out) < 20 {
		t.Fatalf("%s: %d queries, want the 20 and more it has", dashboardFile, len(out))
	}
	return out
}

type dashPanel struct {
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type dashboard struct {
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

type dashVariable struct{ name, label, match string }

var labelValues = regexp.MustCompile(`^label_values\((.+), *(\w+)\)$`)

// dashboardVariables are the query variables (label_values(SELECTOR, LABEL)).
func dashboardVariables(t *testing.T) []dashVariable {
	t.Helper()
	var out []dashVariable
	for _, v := range readDashboard(t).Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(SELECTOR, LABEL)", v.Name, v.Definition)
		}
		out = append(out, dashVariable{v.Name, m[2], grafanaVars.Replace(m[1])})
	}
	return out
}

// blackboxDashboardQueries are the queries two public blackbox_exporter dashboards make
// (restated, with their variables filled in as Grafana does when all are selected):
// Grafana 7587 "Prometheus Blackbox Exporter" (a row per $target, an instance) and the
// blackbox-exporter mixin (github.com/adinhodovic/blackbox-exporter-mixin; its variables
// are cluster, job and instance). Each must return data from Picket's series.
func blackboxDashboardQueries(icmp bool) []string {
	g7587 := []string{
		`probe_duration_seconds`,
		`probe_success{instance=~"$target"}`,
		`probe_http_duration_seconds{instance=~"$target"}`,
		`probe_duration_seconds{instance=~"$target"}`,
		`probe_http_status_code{instance=~"$target"}`,
		`probe_http_version{instance=~"$target"}`,
		`probe_http_ssl{instance=~"$target"}`,
		`probe_ssl_earliest_cert_expiry{instance=~"$target"} - time()`,
		`avg(probe_duration_seconds{instance=~"$target"})`,
		`avg(probe_dns_lookup_time_seconds{instance=~"$target"})`,
	}
	sel := `cluster="$cluster", job=~"$job", instance=~"$instance"`
	mixin := []string{
		`(count(probe_success{cluster="$cluster", job=~"$job"} == 1) OR vector(0)) / count(probe_success{cluster="$cluster", job=~"$job"})`,
		`count(probe_success{cluster="$cluster", job=~"$job"})`,
		`avg(probe_duration_seconds{cluster="$cluster", job=~"$job"})`,
		`count(probe_http_ssl{cluster="$cluster", job=~"$job"} == 1) / count(probe_http_version{cluster="$cluster", job=~"$job"})`,
		`max by (instance) (probe_success{cluster="$cluster", job=~"$job"})`,
		`max by (instance) (probe_success{` + sel + `})`,
		`avg_over_time(probe_success{` + sel + `}[30d])`,
		`avg by (instance) (probe_duration_seconds{` + sel + `})`,
		`avg by (instance) (probe_dns_lookup_time_seconds{` + sel + `})`,
		`avg(probe_http_duration_seconds{` + sel + `}) by (phase)`,
		`sum by (instance) (avg by (phase, instance) (probe_http_duration_seconds{` + sel + `}))`,
		`max by (instance) (probe_http_status_code{` + sel + `})`,
		`max by (instance) (probe_http_version{` + sel + `})`,
		`max by (instance) (probe_http_ssl{` + sel + `})`,
		`max by (instance) (probe_http_redirects{` + sel + `})`,
		`max by (instance, version) (probe_tls_version_info{` + sel + `})`,
		`min by (instance) (probe_ssl_earliest_cert_expiry{` + sel + `} - time())`,
	}
	if icmp {
		mixin = append(mixin, `avg(probe_icmp_duration_seconds{`+sel+`}) by (phase)`)
	}
	// Series the dashboards above do not chart but blackbox users query.
	more := []string{`probe_dns_answer_rrs`, `probe_dns_authority_rrs`, `probe_dns_additional_rrs`, `probe_grpc_status_code`,
		`probe_grpc_healthcheck_response{serving_status="SERVING"} == 1`}
	var out []string
	for _, q := range append(append(g7587, mixin...), more...) {
		out = append(out, grafanaVars.Replace(q))
	}
	return out
}
