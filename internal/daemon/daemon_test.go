package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/probe/probetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	t    *testing.T
	plat *probetest.Platform
	pd   *pdtest.Receiver
	dir  string
	path string
	addr chan string
}

// newFixtureOn starts the simulated platform with opts and a local Events API
// receiver; the config is the caller's to write at f.path.
func newFixtureOn(t *testing.T, opts probetest.Options) *fixture {
	t.Helper()
	plat, err := probetest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plat.Close() })
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	dir := t.TempDir()
	return &fixture{t: t, plat: plat, pd: pd, dir: dir, path: filepath.Join(dir, "picket.yaml"), addr: make(chan string, 1)}
}

func newFixture(t *testing.T, extra string) *fixture {
	t.Helper()
	f := newFixtureOn(t, probetest.Options{Regions: []string{"eu1", "us1"}})
	cfg := testConfig("daemon-test", filepath.Join(f.dir, "state"), f.plat, f.pd.BaseURL()) +
		fmt.Sprintf(`  ops: {pagerduty: {routing_key: "daemontestroutingkey000000000002", events_url: %q}}
routes:
  - notify: [pd]
%s`, f.pd.BaseURL(), extra)
	if err := os.WriteFile(f.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// testConfig is the config the fixture and the in-process fleet share, up to the
// notifiers: their vantage and state folder, fast runs and no group wait, two products
// in plat's eu1 and us1, and the pd notifier at eventsURL; the caller adds the rest.
func testConfig(vantage, stateDir string, plat *probetest.Platform, eventsURL string) string {
	return fmt.Sprintf(`vantage: %s
listen: 127.0.0.1:0
state_dir: %s
defaults: {interval: 300ms, timeout: 250ms, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 0s}
regions:
  eu1: {vars: {api: %q}}
  us1: {vars: {api: %q}}
products:
  - name: metrics
    journeys: [{name: query, steps: [{http: {url: "{{.region.api}}/v1/query?q=up"}, expect: {json: {status: ok}}}]}]
  - name: web
    journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]
notifiers:
  pd: {pagerduty: {routing_key: "daemontestroutingkey000000000001", events_url: %q}}
`, vantage, stateDir, plat.URL("eu1"), plat.URL("us1"), eventsURL)
}

// start runs the daemon in this process; the returned stop waits for it to end (once:
// later calls return the same).
func (f *fixture) start() (base string, stop func() error) { return f.startWith(Options{}) }

// startWith is start with more options (the config path and listen hook are the fixture's).
func (f *fixture) startWith(o Options) (base string, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	o.ConfigPath, o.Version, o.Commit = f.path, "test", "abc"
	o.OnListen = func(a string) { f.addr <- a }
	go func() { errc <- Run(ctx, o) }()
	select {
	case a := <-f.addr:
		var once sync.Once
		var err error
		return "http://" + a, func() error {
			once.Do(func() { cancel(); err = <-errc })
			return err
		}
	case err := <-errc:
		cancel()
		f.t.Fatalf("daemon did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		f.t.Fatal("daemon did not listen within 10s")
	}
	return "", nil
}

// edit replaces old by new in the config file (once each; old must be there).
func (f *fixture) edit(pairs ...string) {
	f.t.Helper()
	raw, err := os.ReadFile(f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := string(raw)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(cfg, pairs[i]) {
			f.t.Fatalf("config edit: %q is not in the config", pairs[i])
		}
		cfg = strings.Replace(cfg, pairs[i], pairs[i+1], 1)
	}
	if err := os.WriteFile(f.path, []byte(cfg), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func body(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAreLintCleanAndHaveTheirStepsPhases: the fixture's steps are plain HTTP to
// an address, so they have connect, processing and transfer phases, and no resolve or
// tls series (a step that has them gets them: TestTargetSeriesOnlyWhatAStepHas).
func TestMetricsAreLintCleanAndHaveTheirStepsPhases(t *testing.T) {
	f := newFixture(t, "")
	base, stop := f.start()
	testkit.WaitFor(t, 5*time.Second, "a probe result in /metrics", func() bool {
		_, m := body(t, base+"/metrics")
		return strings.Contains(m, "probe_success{")
	})
	_, m := body(t, base+"/metrics")
	problems, err := promlint.New(strings.NewReader(m)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	for _, phase := range []string{"connect", "processing", "transfer"} {
		if !strings.Contains(m, `phase="`+phase+`"`) {
			t.Errorf("no %s phase", phase)
		}
	}
	for _, phase := range []string{"resolve", "tls"} {
		if strings.Contains(m, `phase="`+phase+`"`) {
			t.Errorf("a %s phase for steps that have none", phase)
		}
	}
	for _, name := range []string{"probe_duration_seconds", "probe_http_status_code", "probe_dns_lookup_time_seconds", "probe_http_version", "probe_http_ssl", "probe_http_redirects",
		"picket_scheduler_lag_seconds_bucket", "picket_outbox_depth", `picket_config_reloads_total{result="failure"} 0`,
		`picket_notifications_total{action="trigger",notifier="pd",result="permanent"} 0`, "picket_outbox_max_entries", "picket_target_state", "picket_build_info"} {
		if !strings.Contains(m, name) {
			t.Errorf("missing %s", name)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func TestReloadEndpointRefusesABadConfigAndKeepsRunning(t *testing.T) {
	f := newFixture(t, tokenConfig)
	base, stop := f.start()
	good, _ := os.ReadFile(f.path)
	if err := os.WriteFile(f.path, append(good, []byte("\nproducts_typo: []\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := postReload(base)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `unknown key "products_typo"`) {
		t.Errorf("bad reload: %d %s", resp.StatusCode, b)
	}
	// A good config with one product fewer: accepted, targets follow.
	if err := os.WriteFile(f.path, []byte(strings.Replace(string(good), "  - name: web\n    journeys: [{name: home, steps: [{http: {url: \"{{.region.api}}/\"}}]}]\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err = postReload(base)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("good reload: %d", resp.StatusCode)
	}
	_, st := body(t, base+"/api/v1/status")
	if strings.Contains(st, "web/home@eu1") || !strings.Contains(st, "metrics/query@eu1") {
		t.Errorf("targets after reload: %s", st)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestImpairedHoldsPlatformPages: when the self-check fails (it is us, not them), a
// platform outage sends no platform page but one impaired notice; when the self-check
// recovers, the outage still there is paged.
func TestImpairedHoldsPlatformPages(t *testing.T) {
	outside, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := outside.Addr().String()
	_ = outside.Close() // unreachable: the "internet" is down for this vantage
	f := newFixture(t, fmt.Sprintf("self_check: {targets: [\"tcp://%s\"], interval: 100ms, timeout: 100ms, notify: [ops]}\n", addr))
	_, stop := f.start()
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	testkit.WaitFor(t, 5*time.Second, "the impaired notice", func() bool {
		return f.pd.Count("picket/impaired/daemon-test", "trigger") == 1
	})
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	time.Sleep(1500 * time.Millisecond) // several rounds of failing probes
	for _, ev := range f.pd.Events() {
		if ev.DedupKey != "picket/impaired/daemon-test" {
			t.Fatalf("platform page sent while impaired: %s %s", ev.Action, ev.DedupKey)
		}
	}
	// The outside world comes back; the platform outage is real and gets paged.
	back, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	testkit.WaitFor(t, 5*time.Second, "the held page", func() bool {
		return f.pd.Count("picket/region/eu1", "trigger") == 1
	})
	testkit.WaitFor(t, 5*time.Second, "the impaired notice's resolve", func() bool {
		return f.pd.Count("picket/impaired/daemon-test", "resolve") == 1
	})
}
