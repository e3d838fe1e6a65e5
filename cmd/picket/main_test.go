package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/probe/probetest"
)

// TestMain doubles as the picket binary: with PICKET_TEST_MAIN=1 the test binary runs
// main(), so tests start real child processes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("PICKET_TEST_MAIN") == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

const testAPIKey = "cmd-test-api-key-MARKER-5e1f"

var testRegions = []string{"eu1", "us1", "us3", "ap1"}

type env struct {
	t      *testing.T
	plat   *probetest.Platform
	pd     *pdtest.Receiver
	dir    string
	listen string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, probetest.Options{Regions: testRegions, APIKey: testAPIKey, IngestDelay: 50 * time.Millisecond})
}

// newEnvWith starts the simulated platform with opts, the local Events API receiver and
// a folder with the api_key and pd_key secret files.
func newEnvWith(t *testing.T, opts probetest.Options) *env {
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
	if err := os.WriteFile(filepath.Join(dir, "api_key"), []byte(testAPIKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pd_key"), []byte("cmdtestroutingkey000000000000001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, plat: plat, pd: pd, dir: dir, listen: "127.0.0.1:0"}
}

// config writes a config for the simulated platform; settings go under defaults.
func (e *env) config(name, defaults, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vantage: cmd-test\nlisten: %s\nstate_dir: %s\n", e.listen, filepath.Join(e.dir, "state"))
	fmt.Fprintf(&b, "defaults: {%s}\n", defaults)
	b.WriteString("secrets:\n  api_key: {file: api_key}\n  pd: {file: pd_key}\nregions:\n")
	for _, r := range testRegions {
		fmt.Fprintf(&b, "  %s: {vars: {api: %q}}\n", r, e.plat.URL(r))
	}
	b.WriteString(`products:
  - name: logs
    priority: 1
    journeys:
      - name: submit-and-read
        degraded_after: 1500ms
        steps:
          - name: submit
            http: {method: POST, url: "{{.region.api}}/v1/logs", body: '{"m":"{{.run.id}}"}', headers: {Authorization: "Bearer {{.secret.api_key}}"}}
            expect: {status: [202]}
            extract: {id: {json: id}}
          - name: read-back
            http: {url: "{{.region.api}}/v1/logs/{{.vars.id}}", headers: {Authorization: "Bearer {{.secret.api_key}}"}}
            poll: {every: 50ms, within: 1s}
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
`)
	fmt.Fprintf(&b, "  pd: {pagerduty: {routing_key: \"{{.secret.pd}}\", events_url: %q}}\n", e.pd.BaseURL())
	b.WriteString("routes:\n  - notify: [pd]\n")
	b.WriteString(extra)
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

type result struct {
	code           int
	stdout, stderr string
}

// picket runs the command in-process (for output and exit code).
func picket(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func TestValidateExampleAndThreeMistakes(t *testing.T) {
	if r := picket(t, "validate", "-c", "../../examples/platform.yaml"); r.code != 0 {
		t.Fatalf("platform.yaml: exit %d: %s", r.code, r.stderr)
	}
	if r := picket(t, "validate", "-c", "../../examples/demo.yaml"); r.code != 0 {
		t.Fatalf("demo.yaml: exit %d: %s", r.code, r.stderr)
	}
	r := picket(t, "validate", "-c", "../../config/testdata/invalid-three-mistakes.yaml")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2", r.code)
	}
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "../../config/testdata/invalid-three-mistakes.yaml:") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 {
		t.Errorf("want 3 FILE:LINE:COL lines, got %d:\n%s", len(lines), r.stderr)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"check"}, {"check", "-c", "../../examples/platform.yaml", "-o", "xml"}, {"nosuchcommand"},
		{"check", "-c", "../../examples/platform.yaml", "--product", "nosuchproduct"},
		{"check", "-c", "/nonexistent.yaml"},
	} {
		if r := picket(t, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
}

type checkJSON struct {
	Vantage string `json:"vantage"`
	Results []struct {
		Target, Region, Status, Error string
		Tries                         int
		Steps                         []struct {
			Name       string
			HTTPStatus int `json:"http_status"`
			Phases     struct {
				ConnectMS float64 `json:"connect_ms"`
				TTFBMS    float64 `json:"ttfb_ms"`
			}
			PollWaitMS float64 `json:"poll_wait_ms"`
			Attempts   int
		}
	}
	Summary struct{ Up, Degraded, Down int }
	Scope   struct {
		Kind    string
		Regions []string
	}
}

func checkOutput(t *testing.T, r result) checkJSON {
	t.Helper()
	var out checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	return out
}

func TestCheckJSONHealthyThenRegionalFault(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	r := picket(t, "check", "-c", cfg, "-o", "json")
	if r.code != 0 {
		t.Fatalf("healthy platform: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	out := checkOutput(t, r)
	if len(out.Results) != 12 || out.Summary.Up != 12 || out.Scope.Kind != "none" {
		t.Fatalf("results %d summary %+v scope %+v", len(out.Results), out.Summary, out.Scope)
	}
	for _, res := range out.Results {
		for _, s := range res.Steps {
			if s.Phases.ConnectMS <= 0 || s.Phases.TTFBMS <= 0 {
				t.Errorf("%s/%s: phases missing: %+v", res.Target, s.Name, s.Phases)
			}
		}
	}
	e.plat.SetFault("us3", "", probetest.Fault{Kind: probetest.FaultError})
	r = picket(t, "check", "-c", cfg, "-o", "json")
	if r.code != 1 {
		t.Fatalf("fault: exit %d, want 1", r.code)
	}
	out = checkOutput(t, r)
	for _, res := range out.Results {
		want := "up"
		if res.Region == "us3" {
			want = "down"
		}
		if res.Status != want {
			t.Errorf("%s: %s, want %s (%s)", res.Target, res.Status, want, res.Error)
		}
		if res.Region == "us3" && !strings.Contains(res.Error, "status 500") {
			t.Errorf("%s: reason %q", res.Target, res.Error)
		}
	}
	if out.Scope.Kind != "region" || strings.Join(out.Scope.Regions, ",") != "us3" {
		t.Errorf("scope %+v", out.Scope)
	}
	if strings.Contains(r.stdout, testAPIKey) || strings.Contains(r.stderr, testAPIKey) {
		t.Error("API key in output")
	}
}

func TestCheckSlowIsDegradedAndTableFits80Columns(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 5s", "")
	e.plat.SetFault("eu1", "logs", probetest.Fault{Kind: probetest.FaultSlow, Delay: 900 * time.Millisecond})
	r := picket(t, "check", "-c", cfg, "--product", "logs")
	if r.code != 0 {
		t.Fatalf("degraded must exit 0, got %d\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "degraded") || !strings.Contains(r.stdout, "degraded after 1.5s") {
		t.Errorf("table:\n%s", r.stdout)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
}

func TestCheckReadBackFreshnessAndStaleData(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	r := picket(t, "check", "-c", cfg, "-o", "json", "--product", "logs", "--region", "eu1")
	out := checkOutput(t, r)
	if len(out.Results) != 1 || out.Results[0].Status != "up" {
		t.Fatalf("%+v", out.Results)
	}
	rb := out.Results[0].Steps[1]
	if rb.PollWaitMS < 40 || rb.Attempts < 2 {
		t.Errorf("freshness not reported: poll_wait_ms %v attempts %d", rb.PollWaitMS, rb.Attempts)
	}
	e.plat.SetFault("eu1", "logs", probetest.Fault{Kind: probetest.FaultStale})
	r = picket(t, "check", "-c", cfg, "-o", "json", "--product", "logs", "--region", "eu1")
	out = checkOutput(t, r)
	if r.code != 1 || !strings.Contains(out.Results[0].Error, "step read-back: not ready within 1s") {
		t.Errorf("exit %d, reason %q", r.code, out.Results[0].Error)
	}
}

func TestCheckPageStatelessTriggersAndResolves(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	e.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r := picket(t, "check", "-c", cfg, "--page", "-o", "json")
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := e.pd.Count("picket/region/eu1", "trigger"); n != 1 {
		t.Fatalf("region trigger count %d; events %+v", n, e.pd.Events())
	}
	e.plat.ClearFaults()
	r = picket(t, "check", "-c", cfg, "--page")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if _, open := e.pd.Open()["picket/region/eu1"]; open {
		t.Error("region incident not resolved by the next clean run")
	}
}

func TestPageTestSendsTriggerAndResolve(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	r := picket(t, "page", "test", "-c", cfg, "--notifier", "pd")
	if r.code != 0 {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	ev := e.pd.Events()
	if len(ev) != 2 || ev[0].Action != "trigger" || ev[1].Action != "resolve" || ev[0].DedupKey != ev[1].DedupKey {
		t.Fatalf("events %+v", ev)
	}
	e.pd.SetFault(pdtest.Fault{Status: 400})
	if r := picket(t, "page", "test", "-c", cfg, "--notifier", "pd"); r.code != 1 || !strings.Contains(r.stderr, "400") {
		t.Errorf("rejected test page: exit %d: %s", r.code, r.stderr)
	}
	if r := picket(t, "page", "test", "-c", cfg, "--notifier", "nope"); r.code != 2 {
		t.Errorf("unknown notifier: exit %d", r.code)
	}
}

// child runs picket as a separate process (the test binary re-executed as main).
type child struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
}

func (c *child) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.Write(p)
}
func (c *child) logs() string { c.mu.Lock(); defer c.mu.Unlock(); return c.stderr.String() }

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), "PICKET_TEST_MAIN=1")
	c.cmd.Stderr = c
	c.cmd.Stdout = &c.stdout
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

func TestKilledBetweenWriteAndDeliveryDeliversOnceAfterRestart(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s, failure_threshold: 1", "")
	state := filepath.Join(e.dir, "pagestate")
	e.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	e.pd.SetFault(pdtest.Fault{Delay: time.Minute}) // the receiver holds the request: it is written, not delivered
	c := startChild(t, "check", "-c", cfg, "--page", "--state", state)
	testkit.WaitFor(t, 20*time.Second, "the page to reach the receiver", func() bool { return e.pd.Requests() >= 1 })
	if err := c.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	if n := len(e.pd.Events()); n != 0 {
		t.Fatalf("accepted before the kill: %d", n)
	}
	e.pd.ClearFault()
	r := picket(t, "check", "-c", cfg, "--page", "--state", state)
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := e.pd.Count("picket/region/eu1", "trigger"); n != 1 {
		t.Errorf("trigger delivered %d times after restart, want 1; events %+v", n, e.pd.Events())
	}
	// The record is there for the postmortem (daemon stopped: read from the state dir).
	shorten(t, cfg, filepath.Join(e.dir, "state"), state)
	r = picket(t, "incidents", "export", "picket/region/eu1", "-c", cfg)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# Incident picket/region/eu1") ||
		!strings.Contains(r.stdout, "| triggered |") || !strings.Contains(r.stdout, "accepted") {
		t.Errorf("export: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := picket(t, "incidents", "export", "picket/region/nowhere", "-c", cfg); r.code != 1 {
		t.Errorf("unknown incident: exit %d", r.code)
	}
}

func TestCheckShardsSplitTargets(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	seen := map[string]int{}
	for i := 0; i < 3; i++ {
		r := picket(t, "check", "-c", cfg, "-o", "json", "--shard", fmt.Sprintf("%d/3", i))
		if r.code != 0 && r.code != 2 { // a shard can be empty: that is a usage error (no target)
			t.Fatalf("shard %d: exit %d %s", i, r.code, r.stderr)
		}
		if r.code == 0 {
			for _, res := range checkOutput(t, r).Results {
				seen[res.Target]++
			}
		}
	}
	if len(seen) != 12 {
		t.Errorf("3 shards ran %d distinct targets, want 12", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s ran in %d shards", id, n)
		}
	}
	if r := picket(t, "check", "-c", cfg, "--shard", "3/3"); r.code != 2 {
		t.Errorf("--shard 3/3: exit %d", r.code)
	}
}
