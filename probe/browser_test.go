package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/testkit"
	"github.com/picket-dev/picket/probe/probetest"
)

// webPassword is the web app's password in these tests: a secret, searched for in
// every output.
const webPassword = "picket-web-secret-9f3a1"

// requireBrowser skips a test that needs Chromium when there is none, unless
// PICKET_REQUIRE_BROWSER=1 (CI) makes that a failure.
func requireBrowser(t testing.TB) {
	t.Helper()
	if _, err := config.FindBrowser(""); err != nil {
		if os.Getenv("PICKET_REQUIRE_BROWSER") == "1" {
			t.Fatalf("PICKET_REQUIRE_BROWSER=1 but %v", err)
		}
		t.Skipf("%v (PICKET_REQUIRE_BROWSER=1 makes this a failure)", err)
	}
}

// webPlatform is one region of the simulated platform whose web app wants webPassword.
func webPlatform(t testing.TB) *probetest.Platform {
	t.Helper()
	p, err := probetest.Start(probetest.Options{Regions: []string{"eu1"}, WebPassword: webPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// browserTop is the top of a config with the web password as a secret and one
// browser process (so runs share it, one after another).
func browserTop(t testing.TB, browser string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "web_password")
	if err := os.WriteFile(file, []byte(webPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("secrets: {web_password: {file: %q}}\nbrowser: {pool: 1%s}\n", file, browser)
}

// browserRunner keeps its screenshots in a folder of the test's.
func browserRunner(t testing.TB) (*Runner, string) {
	dir := filepath.Join(t.TempDir(), "screenshots")
	r := NewRunner(WithScreenshotDir(dir))
	t.Cleanup(r.Close)
	return r, dir
}

// loginActions sign in through the form, as a customer does.
var loginActions = []string{
	`- navigate: "{{.region.api}}/app/login"`,
	`- type: {selector: "#user", text: probe}`,
	`- type: {selector: "#password", text: "{{.secret.web_password}}"}`,
	`- click: "#login"`,
}

// withLogin puts loginActions where a journey has a line "LOGIN", at its indentation.
func withLogin(journey string) string {
	lines := strings.Split(journey, "\n")
	var out []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "LOGIN" {
			out = append(out, l)
			continue
		}
		lead := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		for _, a := range loginActions {
			out = append(out, lead+a)
		}
	}
	return strings.Join(out, "\n")
}

// mixedJourney logs in through the browser, reads the API token off the dashboard,
// then checks the API with it over plain HTTP.
var mixedJourney = withLogin(`
	- name: dashboard
	  timeout: 20s
	  steps:
	    - name: login
	      browser:
	        actions:
	          LOGIN
	          - wait_visible: "#welcome"
	          - expect: {selector: "#welcome", text: "Welcome, probe"}
	          - expect: {title: "Dashboard"}
	          - expect: {url: "/app"}
	      expect: {max_lcp: 5s, max_cls: 0.1, no_console_errors: true, no_failed_requests: true}
	      extract: {token: {selector: "#token"}}
	    - name: api
	      http: {url: "{{.region.api}}/app/api/session", headers: {Authorization: "Bearer {{.vars.token}}"}}
	      expect: {status: [200], json: {user: probe, region: eu1}}
`)

func TestBrowserHealthyMixedJourney(t *testing.T) {
	requireBrowser(t)
	plat := webPlatform(t)
	tg := targetsFor(t, plat.URL("eu1"), browserTop(t, ""), mixedJourney)[0]
	runner, shots := browserRunner(t)
	res := runner.Run(context.Background(), tg)
	if res.Status != StatusUp || len(res.Steps) != 2 {
		t.Fatalf("want up with 2 steps, got %s: %s", res.Status, res.Error)
	}
	login := res.Steps[0]
	if login.Kind != "browser" || login.HTTPStatus != 200 || login.Phases.TTFB <= 0 || login.Screenshot != "" {
		t.Errorf("login step: kind %s, status %d, phases %+v, screenshot %q", login.Kind, login.HTTPStatus, login.Phases, login.Screenshot)
	}
	for _, k := range []string{"lcp_ms", "load_ms", "dom_content_loaded_ms", "requests", "bytes", "browser_memory_mb"} {
		if n, err := strconv.ParseFloat(login.Info[k], 64); err != nil || n <= 0 {
			t.Errorf("info %s = %q, want a positive number (info %v)", k, login.Info[k], login.Info)
		}
	}
	if login.Info["console_errors"] != "0" || login.Info["failed_requests"] != "0" || login.Info["cls"] == "" {
		t.Errorf("info %v: want no console errors, no failed requests and a CLS", login.Info)
	}
	t.Logf("healthy login: %s; info %v; phases %+v", roundDur(login.Duration), login.Info, login.Phases)
	if api := res.Steps[1]; api.Kind != "http" || api.HTTPStatus != 200 {
		t.Errorf("api step after the browser login: %+v", api)
	}
	assertNoSecret(t, res, shots)
	if entries, _ := os.ReadDir(shots); len(entries) != 0 {
		t.Errorf("a passing run kept %d screenshots", len(entries))
	}
}

// TestBrowserFreshContextPerRun: the second run of the same browser process does not
// carry the first one's session cookie: it lands on the login form.
func TestBrowserFreshContextPerRun(t *testing.T) {
	requireBrowser(t)
	plat := webPlatform(t)
	journeys := withLogin(`
		- name: login
		  timeout: 15s
		  steps:
		    - browser:
		        actions:
		          LOGIN
		          - wait_visible: "#welcome"
		- name: revisit
		  timeout: 15s
		  steps:
		    - browser:
		        actions:
		          - navigate: "{{.region.api}}/app"
		          - expect: {url: "/app/login"}
		          - wait_visible: "#user"
	`)
	ts := targetsFor(t, plat.URL("eu1"), browserTop(t, ""), journeys)
	runner, _ := browserRunner(t)
	for _, tg := range ts {
		if res := runner.Run(context.Background(), tg); res.Status != StatusUp {
			t.Fatalf("%s: %s", tg.ID, res.Error)
		}
	}
	if pids := browserPIDs(t); len(pids) != 1 {
		t.Errorf("browser processes %v, want the one of browser.pool: 1, reused", pids)
	}
}

// faultJourney passes on the healthy app and fails, with its own reason, on each fault
// only a browser sees.
var faultJourney = withLogin(`
	- name: dashboard
	  timeout: 20s
	  steps:
	    - name: login
	      browser:
	        action_timeout: 5s
	        actions:
	          LOGIN
	          - wait_visible: "#welcome, #error"
	      expect: {max_lcp: 2s, no_console_errors: true, no_failed_requests: true, body_contains: "Welcome, probe"}
`)

func TestBrowserFaultsFailWithReasonAndScreenshot(t *testing.T) {
	requireBrowser(t)
	plat := webPlatform(t)
	tg := targetsFor(t, plat.URL("eu1"), browserTop(t, ""), faultJourney)[0]
	runner, shots := browserRunner(t)
	session := regexp.QuoteMeta(plat.URL("eu1") + "/app/api/session")
	cases := []struct {
		fault probetest.Fault
		want  string // a regexp the reason must match
	}{
		{probetest.Fault{Kind: probetest.FaultJSError}, `^step login: 1 console error: Uncaught TypeError: Cannot read properties of undefined \(reading 'render'\)$`},
		{probetest.Fault{Kind: probetest.FaultBlankPage}, "^step login: action 5 \\(wait_visible `#welcome, #error`\\): no element matches within 5s$"},
		{probetest.Fault{Kind: probetest.FaultSlowAsset, Delay: 2500 * time.Millisecond},
			`^step login: LCP 2\.\d+s over 2s; slowest request: GET http://127\.0\.0\.1:\d+/app/app\.css 2\.\d+s$`},
		{probetest.Fault{Kind: probetest.FaultBlockedAPI},
			`console errors?: .*could not load the session.*; 1 failed request: blocked by Content-Security-Policy: ` + session + `; body does not contain "Welcome, probe"$`},
	}
	for _, c := range cases {
		t.Run(string(c.fault.Kind), func(t *testing.T) {
			plat.SetFault("eu1", "web", c.fault)
			res := runner.Run(context.Background(), tg)
			plat.ClearFaults()
			if res.Status != StatusDown || !regexp.MustCompile(c.want).MatchString(res.Error) {
				t.Fatalf("status %s, reason:\n  %s\nwant it to match\n  %s", res.Status, res.Error, c.want)
			}
			checkScreenshot(t, shots, res.Screenshot())
			assertNoSecret(t, res, shots)
		})
	}
	if res := runner.Run(context.Background(), tg); res.Status != StatusUp {
		t.Errorf("healthy again: %s", res.Error)
	}
}

// checkScreenshot: the failure's PNG is in the folder, whole and within the bound.
func checkScreenshot(t *testing.T, dir, name string) {
	t.Helper()
	if name == "" || !ScreenshotName.MatchString(name) {
		t.Fatalf("screenshot %q, want a file name", name)
	}
	png, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 2000 || len(png) > config.DefaultMaxScreenshotBytes {
		t.Errorf("screenshot %s: %d bytes, want a PNG within %d", name, len(png), config.DefaultMaxScreenshotBytes)
	}
	t.Logf("screenshot %s: %d bytes", name, len(png))
}

// assertNoSecret: the web password is nowhere in the result, the screenshot names or
// anything the run wrote.
func assertNoSecret(t *testing.T, res Result, dir string) {
	t.Helper()
	out, _ := json.Marshal(res)
	if bytes.Contains(out, []byte(webPassword)) {
		t.Errorf("the secret is in the result: %s", out)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), webPassword) {
			t.Errorf("the secret is in a file name: %s", e.Name())
		}
	}
}

// browserPIDs lists the browsers this test process started (its children).
func browserPIDs(t testing.TB) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := readStat(pid); ok && ppid == os.Getpid() {
			if cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); bytes.Contains(cmd, []byte("--remote-debugging-pipe")) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// waitForBrowser waits (bounded) until a browser of this test runs, and returns it.
func waitForBrowser(t *testing.T, not int) int {
	t.Helper()
	found := 0
	testkit.WaitFor(t, 20*time.Second, "a browser process to start", func() bool {
		for _, pid := range browserPIDs(t) {
			if pid != not {
				found = pid
				return true
			}
		}
		return false
	})
	return found
}

// waitForRequest waits (bounded) until the web app has served a request: a run is in
// its navigation.
func waitForRequest(t *testing.T, plat *probetest.Platform, done <-chan Result) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, "the browser to ask the web app for something", func() bool {
		if plat.Requests("eu1", "web") > 0 {
			return true
		}
		select {
		case res := <-done:
			t.Fatalf("the run ended before the browser asked the web app for anything: %s", res.Error)
		default:
		}
		return false
	})
}

// slowJourney waits on the slow stylesheet long enough for a test to act on the
// browser under the run.
var slowJourney = `
	- name: slow
	  timeout: 10s
	  steps:
	    - name: load
	      browser:
	        actions:
	          - navigate: "{{.region.api}}/app/login"
`

// signalUnderARun runs tg with the web app's stylesheet slowed by delay, and sends sig
// to the browser once its navigation has begun; it returns the run's result, the pid
// and when the signal was sent.
func signalUnderARun(t *testing.T, plat *probetest.Platform, runner *Runner, tg *config.Target, delay time.Duration, sig syscall.Signal) (Result, int, time.Time) {
	t.Helper()
	plat.SetFault("eu1", "web", probetest.Fault{Kind: probetest.FaultSlowAsset, Delay: delay})
	defer plat.ClearFaults()
	done := make(chan Result, 1)
	go func() { done <- runner.Run(context.Background(), tg) }()
	pid := waitForBrowser(t, 0)
	waitForRequest(t, plat, done)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	res := <-done
	if testing.Verbose() {
		t.Logf("after %s: %s in %s: %s", sig, res.Status, res.Duration, res.Error)
	}
	return res, pid, at
}

// checkReplaced: the next run passes, in a browser other than pid.
func checkReplaced(t *testing.T, runner *Runner, tg *config.Target, pid int) {
	t.Helper()
	if res := runner.Run(context.Background(), tg); res.Status != StatusUp {
		t.Fatalf("the next run: %s", res.Error)
	}
	if pids := browserPIDs(t); len(pids) != 1 || pids[0] == pid {
		t.Errorf("browsers after %d went %v, want one that is not %d", pid, pids, pid)
	}
}

// TestBrowserKilledUnderARunIsReplaced kills the browser (SIGKILL) in the middle of a
// run: the run fails at once and says so, the next run gets a new browser and passes.
func TestBrowserKilledUnderARunIsReplaced(t *testing.T) {
	requireBrowser(t)
	plat := webPlatform(t)
	tg := targetsFor(t, plat.URL("eu1"), browserTop(t, ""), slowJourney)[0]
	runner, _ := browserRunner(t)
	res, pid, killed := signalUnderARun(t, plat, runner, tg, 5*time.Second, syscall.SIGKILL)
	if res.Status != StatusDown || !strings.Contains(res.Error, "the browser process ended during the run") || time.Since(killed) > 2*time.Second {
		t.Fatalf("after SIGKILL: %s, %s after the kill: %s", res.Status, time.Since(killed), res.Error)
	}
	checkReplaced(t, runner, tg, pid)
}

// TestBrowserHungIsKilledWithinTheDeadline stops the browser (SIGSTOP: it answers
// nothing) under a run: the run ends by its deadline, the browser is found hung,
// killed and replaced.
func TestBrowserHungIsKilledWithinTheDeadline(t *testing.T) {
	requireBrowser(t)
	plat := webPlatform(t)
	journey := strings.Replace(slowJourney, "timeout: 10s", "timeout: 6s", 1)
	tg := targetsFor(t, plat.URL("eu1"), browserTop(t, ""), journey)[0]
	runner, _ := browserRunner(t)
	res, pid, _ := signalUnderARun(t, plat, runner, tg, 2*time.Second, syscall.SIGSTOP)
	// Within the deadline, give or take a loaded machine's scheduling: before the hung
	// browser was retired in the background it took the deadline + 2.4 s.
	if res.Status != StatusDown || !strings.HasSuffix(res.Error, "the browser did not answer within 500ms (hung): killed and replaced") ||
		res.Duration > 6*time.Second+time.Second {
		t.Fatalf("hung browser: %s in %s: %s", res.Status, res.Duration, res.Error)
	}
	checkReplaced(t, runner, tg, pid)
}

// htmlServer serves each page (by mux pattern) as HTML on loopback.
func htmlServer(t *testing.T, pages map[string]string) *httptest.Server {
	mux := http.NewServeMux()
	for pattern, page := range pages {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, page)
		})
	}
	return startServer(t, mux)
}

// echoPage shows, logs and sends whatever is typed into its field: a page that leaks
// what it is given, so that every output of a run can be searched for the secret.
const echoPage = `<!doctype html><html><head><title>Echo</title></head><body>
<input id="field"><button id="go">Go</button><p id="out">nothing yet</p>
<script>
document.getElementById("go").onclick = () => {
  const v = document.getElementById("field").value;
  console.error("you typed " + v);
  fetch("/nope/" + encodeURIComponent(v));
  document.getElementById("out").textContent = "you typed " + v;
};
</script></body></html>`

func TestBrowserSecretsNeverShown(t *testing.T) {
	requireBrowser(t)
	srv := htmlServer(t, map[string]string{"/{$}": echoPage})
	journey := `
		- name: echo
		  timeout: 15s
		  steps:
		    - name: type
		      browser:
		        actions:
		          - navigate: "{{.region.api}}/"
		          - type: {selector: "#field", text: "{{.secret.web_password}}"}
		          - click: "#go"
		          - expect: {selector: "#out", text: "something else", timeout: 3s}
	`
	tg := targetsFor(t, srv.URL, browserTop(t, ""), journey)[0]
	runner, shots := browserRunner(t)
	res := runner.Run(context.Background(), tg)
	if res.Status != StatusDown || !strings.Contains(res.Error, `it reads "you typed [redacted]"`) ||
		!strings.Contains(res.Error, "console error(s): console.error: you typed [redacted]") {
		t.Fatalf("want the page's echo of the secret redacted in the reason, got %s: %s", res.Status, res.Error)
	}
	assertNoSecret(t, res, shots)
	checkScreenshot(t, shots, res.Screenshot())
}

// growPage keeps allocating memory until the browser is stopped.
const growPage = `<!doctype html><html><head><title>Grow</title></head><body><h1>growing</h1>
<script>
const keep = [];
(function grow() { const a = new Uint8Array(32 << 20); a.fill(1); keep.push(a); if (keep.length < 60) { setTimeout(grow, 50); } })();
</script></body></html>`

func TestBrowserOverMemoryIsKilled(t *testing.T) {
	requireBrowser(t)
	srv := htmlServer(t, map[string]string{"/grow": growPage, "/{$}": "<!doctype html><title>ok</title><h1 id=ok>ok</h1>"})
	journeys := `
		- name: grow
		  timeout: 15s
		  steps:
		    - browser:
		        actions:
		          - navigate: "{{.region.api}}/grow"
		          - wait_visible: {selector: "#never", timeout: 10s}
		- name: small
		  timeout: 15s
		  steps:
		    - browser:
		        actions:
		          - navigate: "{{.region.api}}/"
		          - wait_visible: "#ok"
	`
	ts := targetsFor(t, srv.URL, browserTop(t, ", max_memory_mb: 900"), journeys)
	runner, _ := browserRunner(t)
	res := runner.Run(context.Background(), ts[0])
	if res.Status != StatusDown || !regexp.MustCompile(`the browser used \d+ MiB, over browser.max_memory_mb 900; killed and replaced`).MatchString(res.Error) {
		t.Fatalf("a page that grows without end: %s in %s: %s", res.Status, res.Duration, res.Error)
	}
	t.Logf("stopped after %s: %s", res.Duration, res.Error) // else the 10 s wait would have ended it
	if res := runner.Run(context.Background(), ts[1]); res.Status != StatusUp {
		t.Fatalf("after the kill: %s", res.Error)
	}
}
