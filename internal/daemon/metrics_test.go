package daemon

import (
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

func metricsTarget(product, journey, region string) *config.Target {
	return &config.Target{ID: product + "/" + journey + "@" + region, Product: product, Journey: journey, Region: region}
}

// scrapeText reads /metrics of h over real HTTP, gzipped or not, and checks that it
// parses as the text format and passes promlint.
func scrapeText(t *testing.T, h http.Handler, gz bool) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gunzip: see what came
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if gz {
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("asked for gzip, got Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	parser := expfmt.NewTextParser(model.LegacyValidation) // names and labels as every Prometheus reads them
	if _, err := parser.TextToMetricFamilies(strings.NewReader(text)); err != nil {
		t.Fatalf("/metrics does not parse as the text format: %v\n%s", err, text)
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	return text
}

// TestTargetSeriesOnlyWhatAStepHas: each step gets the series of what it reported: an
// HTTPS step its tls phase, a plain one none, a phase from the first run that had it;
// gRPC and ICMP steps their own; label values are escaped; a forgotten target's
// series are gone. The output parses and lints clean, plain or gzipped.
func TestTargetSeriesOnlyWhatAStepHas(t *testing.T) {
	m := NewMetrics(`fsn"1`, "test", "abc")
	secure, plain := metricsTarget("logs", "submit", "eu1"), metricsTarget("web", "home", "us1")
	m.ObserveResult(secure, probe.Result{Status: probe.StatusUp, Duration: 30 * time.Millisecond, Steps: []probe.StepResult{
		{Name: "login", Kind: "http", HTTPStatus: 200, CertExpiry: time.Unix(1_900_000_000, 0),
			Phases: probe.Phases{Connect: 2 * time.Millisecond, TLS: 3 * time.Millisecond, Processing: 4 * time.Millisecond, Transfer: time.Millisecond}},
		{Name: "health", Kind: "grpc", Info: map[string]string{"grpc_status": "SERVING"}},
		{Name: "ping", Kind: "icmp", Info: map[string]string{"rtt_avg_ms": "1.5"}},
	}})
	plainRun := probe.Result{Status: probe.StatusDown, Steps: []probe.StepResult{{Name: "get", Kind: "http", HTTPStatus: 503,
		Phases: probe.Phases{Connect: time.Millisecond, Processing: time.Millisecond}}}}
	m.ObserveResult(plain, plainRun)
	m.ObserveState(plain, alert.StateFiring)
	text := scrapeText(t, m.Handler(slog.New(slog.DiscardHandler)), false)
	for _, want := range []string{
		`probe_success{journey="submit",product="logs",region="eu1",vantage="fsn\"1"} 1`,
		`probe_success{journey="home",product="web",region="us1",vantage="fsn\"1"} 0`,
		`picket_target_state{journey="home",product="web",region="us1",vantage="fsn\"1"} 2`,
		`picket_probe_runs_total{journey="home",product="web",region="us1",status="down",vantage="fsn\"1"} 1`,
		`probe_http_duration_seconds{journey="submit",phase="tls",product="logs",region="eu1",step="login",vantage="fsn\"1"} 0.003`,
		`probe_http_status_code{journey="home",product="web",region="us1",step="get",vantage="fsn\"1"} 503`,
		`probe_ssl_earliest_cert_expiry{journey="submit",product="logs",region="eu1",step="login",vantage="fsn\"1"} 1.9e+09`,
		`probe_grpc_healthcheck_response{journey="submit",product="logs",region="eu1",serving_status="SERVING",step="health",vantage="fsn\"1"} 1`,
		`probe_grpc_healthcheck_response{journey="submit",product="logs",region="eu1",serving_status="NOT_SERVING",step="health",vantage="fsn\"1"} 0`,
		`probe_icmp_rtt_seconds{journey="submit",product="logs",region="eu1",step="ping",vantage="fsn\"1"} 0.0015`,
		`picket_build_info{commit="abc"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, absent := range []string{`phase="tls",product="web"`, `phase="resolve"`, `probe_http_status_code{journey="submit",product="logs",region="eu1",step="health"`} {
		if strings.Contains(text, absent) {
			t.Errorf("/metrics has %s: a series the step never had", absent)
		}
	}
	plainRun.Steps[0].Phases.DNS = 5 * time.Millisecond // from now on it resolves a name
	m.ObserveResult(plain, plainRun)
	m.Forget(map[string]bool{plain.ID: true})
	text = scrapeText(t, m.Handler(slog.New(slog.DiscardHandler)), true)
	if !strings.Contains(text, `probe_http_duration_seconds{journey="home",phase="resolve",product="web"`) {
		t.Error("no resolve phase once the step resolved a name")
	}
	if strings.Contains(text, `product="logs"`) {
		t.Error("a forgotten target's series are still served")
	}
}

// TestTargetSeriesAreSmall: 10,000 targets of one HTTP step cost well under 2 KB each
// in series. As client_golang children (13 a target, label pairs made up front) they
// took 10 KB each: half of the daemon's live heap.
func TestTargetSeriesAreSmall(t *testing.T) {
	const n = 10_000
	targets := make([]*config.Target, n)
	for i := range targets {
		targets[i] = metricsTarget(fmt.Sprintf("p%02d", i%10), fmt.Sprintf("j%03d", i%100), fmt.Sprintf("r%04d", i/100))
	}
	run := probe.Result{Status: probe.StatusUp, Duration: time.Millisecond, Steps: []probe.StepResult{{Name: "get", Kind: "http", HTTPStatus: 200,
		Phases: probe.Phases{Connect: time.Millisecond, Processing: time.Millisecond, Transfer: time.Millisecond}}}}
	before := liveHeap()
	m := NewMetrics("bench", "test", "abc")
	for _, tg := range targets {
		m.ObserveResult(tg, run)
	}
	perTarget := (liveHeap() - before) / n
	runtime.KeepAlive(m)
	t.Logf("%d bytes a target", perTarget)
	if perTarget > 2048 {
		t.Errorf("the series cost %d bytes a target, want at most 2048", perTarget)
	}
}

func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
