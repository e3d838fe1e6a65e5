package statuspage_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/chromedp/chromedp"

	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
)

const chromiumPath = "/usr/bin/chromium"

// Browser test bounds: generous for a loaded 2-core machine, still bounded.
const (
	browserDeadline = 60 * time.Second
	refreshWithin   = 10 * time.Second // the page refreshes every second here
)

// TestBrowserRegionalFault loads the status page in real headless Chromium during a
// regional fault, finds the banner and the down cells, saves a screenshot, and checks
// that the page's script picks up a change of the engine without a reload.
func TestBrowserRegionalFault(t *testing.T) {
	requireChromium(t)
	now := time.Now().UTC().Truncate(time.Second)
	r := newRig(t, realisticPlatform, now)
	r.realisticHistory(now)
	h := statuspage.New(r.source(), statuspage.Options{
		Token: config.NewSecret(testToken), Title: "Acme Cloud status", Now: r.clock.Now,
	})
	srv := serve(t, h)
	ctx := startBrowser(t)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/?refresh=1"),
		chromedp.WaitVisible(chromedp.ID("banner")),
	); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	banner := run(t, ctx, chromedp.Text(chromedp.ID("banner")))
	scope := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("banner").dataset.scope`))
	if banner != "Regional outage: eu1" || scope != "region" {
		t.Errorf("banner %q (data-scope %q), want %q (region)", banner, scope, "Regional outage: eu1")
	}
	down := run(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('td[data-status="down"]'),
		td => td.dataset.product + "@" + td.dataset.region + ":" + td.textContent.trim())`))
	if want := []string{"logs@eu1:✕ Down", "metrics@eu1:✕ Down"}; !slices.Equal(down, want) {
		t.Errorf("down cells %q, want %q", down, want)
	}
	saveScreenshot(t, ctx, screenshotDir(t), "statuspage-regional-fault.png")
	if path := os.Getenv("PICKET_DOCS_SCREENSHOT"); path != "" {
		// For the README: banner, matrix, incident and the first uptime bars.
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1280)); err != nil {
			t.Fatalf("resize the viewport: %v", err)
		}
		saveScreenshotTo(t, ctx, path, chromedp.CaptureScreenshot())
	}

	// The script must update the page in place: a marker on window would not survive
	// a reload. The server's tooltip of an unchanged cell must equal the script's.
	serverTitle := run(t, ctx, chromedp.Evaluate[string](`window.picketMarker = 1;
		document.querySelector('td[data-product="logs"][data-region="eu1"]').title`))
	r.clock.Advance(30 * time.Second)
	// us1 loses two products too: a second regional outage (global needs 3 regions in
	// this config), and the page must say so.
	r.round(anyOf(failing("eu1", "logs", "metrics"), failing("us1", "web", "metrics")))
	webUS, err := chromedp.Run(ctx, chromedp.Poll[string](
		`(document.querySelector('td[data-product="web"][data-region="us1"]') || {dataset: {}}).dataset.status === "down" &&
			document.querySelector('td[data-product="web"][data-region="us1"]').title`,
		chromedp.WithPollingTimeout(refreshWithin), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		t.Fatalf("web@us1 did not turn down within %s of the engine change: %v", refreshWithin, err)
	}
	for _, j := range []string{"home: down", "login-page: down", "status 503"} {
		if !bytes.Contains([]byte(webUS), []byte(j)) {
			t.Errorf("refreshed tooltip of web@us1 %q lacks %q", webUS, j)
		}
	}
	after := run(t, ctx, chromedp.Evaluate[[]string](`[String(window.picketMarker),
		document.querySelector('td[data-product="logs"][data-region="eu1"]').title,
		document.getElementById("banner").textContent,
		String(document.querySelectorAll('#open-incidents article[data-incident^="picket/region/"]').length)]`))
	if after[0] != "1" {
		t.Errorf("the page reloaded (marker %q); want an update in place", after[0])
	}
	if after[1] != serverTitle {
		t.Errorf("tooltip of logs@eu1 from the script %q differs from the server's %q", after[1], serverTitle)
	}
	if want := r.engine.Snapshot().Banner; after[2] != want || after[2] == banner {
		t.Errorf("banner after refresh %q, want the engine's new one %q (before: %q)", after[2], want, banner)
	}
	if after[3] != "2" || after[2] != "Regional outage: eu1, us1" {
		t.Errorf("after refresh: %s regional incidents shown, banner %q; want 2 and both regions", after[3], after[2])
	}
}

// TestBrowserFleet loads a page with a fleet in Chromium: the votes line of a cell is
// visible, and after the script's refresh rebuilds the matrix and the Vantages section,
// both read exactly as the server rendered them (app.js mirrors page.go and fleet.go).
func TestBrowserFleet(t *testing.T) {
	requireChromium(t)
	r := faultRig(t)
	f := r.threeVantages(r.clock.Now())
	f.Alone, f.AloneSince = true, r.clock.Now().Add(-time.Minute)
	logsEU, logsUS := r.targetID("logs", "submit-and-read", "eu1"), r.targetID("logs", "submit-and-read", "us1")
	src := r.fleetSource(f, map[string]map[string]string{"logs": {"eu1": "down from 2 of 3"}},
		map[string]string{logsEU: "down from 2 of 3", logsUS: "down from 1 of 3"})
	srv := serve(t, statuspage.New(src, statuspage.Options{Now: r.clock.Now}))
	ctx := startBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?refresh=1"), chromedp.WaitVisible(chromedp.ID("members"))); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	// What a reader sees of the fleet: the votes line (visible, with its title), cell
	// tooltips, the alone and isolated lines, the quorum line and the members' rows.
	const digest = `(() => {
		const votes = document.querySelector('td[data-product="logs"][data-region="eu1"] .votes');
		const line = id => { const p = document.getElementById(id); return (p.hidden ? "hidden:" : "shown:") + p.textContent; };
		const rows = Array.from(document.querySelectorAll('#members tbody tr'), tr => [tr.dataset.member, tr.dataset.state,
			...Array.from(tr.children, c => c.textContent + "|" + (c.title || "") + "|" + (c.querySelector(".member-state") || {className: ""}).className)].join(" / "));
		return [votes ? votes.textContent + "|" + votes.title + "|" + votes.checkVisibility() : "no votes line",
			document.querySelector('td[data-product="logs"][data-region="eu1"]').title,
			document.querySelector('td[data-product="logs"][data-region="us1"]').title,
			line("alone"), line("isolated"), document.getElementById("quorum").textContent,
			document.querySelector("#members thead").outerHTML, ...rows];
	})()`
	served := run(t, ctx, chromedp.Evaluate[[]string](digest))
	saveScreenshot(t, ctx, screenshotDir(t), "statuspage-fleet.png")
	if want := "down from 2 of 3|" + votesTitle + "|true"; len(served) == 0 || served[0] != want {
		t.Fatalf("votes line of logs@eu1 %q, want %q (visible)", served, want)
	}
	if len(served) != 10 || served[3] != "shown:This vantage is alone: no peer answers since 2026-03-02 09:59:30 UTC; it pages on its own evidence after 2m0s" ||
		served[4] != "hidden:" {
		t.Errorf("served page: %q, want the alone line shown, the isolated one hidden and 3 members", served)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.refreshed !== undefined`,
		chromedp.WithPollingTimeout(refreshWithin), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("the script did not refresh the page within %s: %v", refreshWithin, err)
	}
	refreshed := run(t, ctx, chromedp.Evaluate[[]string](digest))
	if !slices.Equal(refreshed, served) {
		t.Errorf("after the script's refresh:\n %q\nwant what the server rendered:\n %q", refreshed, served)
	}
}

func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("PICKET_REQUIRE_BROWSER") == "1" {
			t.Fatalf("PICKET_REQUIRE_BROWSER=1 but %s is missing (%v); install it with .ci/install-chromium", chromiumPath, err)
		}
		t.Skipf("%s is missing, so the browser test cannot run; install it with .ci/install-chromium (PICKET_REQUIRE_BROWSER=1 makes this a failure)", chromiumPath)
	}
}

// startBrowser starts headless Chromium; the test's cleanup closes it and waits for
// the process and chromedp's goroutines to end.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "picket-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	var output testkit.Buffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(&output),
	)
	deadlineCtx, cancelDeadline := context.WithTimeout(allocCtx, browserDeadline)
	ctx, cancelCtx := chromedp.NewContext(deadlineCtx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // graceful close; waits for the browser, up to the deadline
		cancelCtx()
		cancelDeadline()
		cancelAlloc() // waits for the process
		removeProfile(t, profile)
		if t.Failed() && output.Len() > 0 {
			t.Logf("chromium output:\n%s", clip(output.String()))
		}
	})
	return ctx
}

// removeProfile retries: Chromium's helper processes may still be writing as it exits.
func removeProfile(t *testing.T, dir string) {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("remove the Chromium profile %s: %v", dir, err)
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("PICKET_SCREENSHOT_DIR"); dir != "" {
		return dir
	}
	return t.TempDir()
}

func saveScreenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	saveScreenshotTo(t, ctx, filepath.Join(dir, name), chromedp.FullScreenshot(100)) // 100: PNG
}

func saveScreenshotTo(t *testing.T, ctx context.Context, path string, shot chromedp.Action[[]byte]) {
	t.Helper()
	png := run(t, ctx, shot)
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("screenshot: got %d bytes that are not a plausible PNG", len(png))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// realisticHistory gives the rig a past worth a screenshot, ending in a regional
// fault at now: 90 days of mostly-up history with an outage of us3 twelve days ago,
// two incidents resolved today, and eu1 out for logs and metrics since 18 minutes.
func (r *rig) realisticHistory(now time.Time) {
	r.t.Helper()
	faultStart := now.Add(-18 * time.Minute)
	var results []store.Result
	for _, t := range r.cfg.Targets {
		for at := now.Add(-90 * 24 * time.Hour); at.Before(now.Add(-24 * time.Hour)); at = at.Add(time.Hour) {
			results = append(results, store.Result{Target: t.ID, At: at, Status: pastStatus(t.Region, t.Product, now.Sub(at))})
		}
		for at := now.Add(-24 * time.Hour); at.Before(faultStart); at = at.Add(5 * time.Minute) {
			results = append(results, store.Result{Target: t.ID, At: at, Status: pastStatus(t.Region, t.Product, now.Sub(at))})
		}
	}
	if err := r.store.RecordResults(results); err != nil {
		r.t.Fatalf("record past history: %v", err)
	}
	// Incidents the engine lived through today, so "Recently resolved" has some.
	r.clock.Set(now.Add(-6 * time.Hour))
	r.round(nil)
	r.round(failing("ap1", "web"))
	r.clock.Advance(12 * time.Minute)
	r.round(nil)
	r.clock.Set(now.Add(-2 * time.Hour))
	r.round(failing("us3", "events"))
	r.clock.Advance(4 * time.Minute)
	r.round(nil)
	// The regional fault, seen every 5 minutes since it began.
	for at := faultStart; !at.After(now); at = at.Add(5 * time.Minute) {
		r.clock.Set(at)
		r.round(failing("eu1", "logs", "metrics"))
	}
	r.clock.Set(now)
	r.round(failing("eu1", "logs", "metrics"))
}

// pastStatus is the made-up past: us3 out for two hours twelve days ago, ap1's web
// slow for a while forty days ago, everything else up.
func pastStatus(region, product string, ago time.Duration) string {
	day := 24 * time.Hour
	switch {
	case region == "us3" && ago > 12*day && ago <= 12*day+2*time.Hour:
		return store.StatusDown
	case region == "ap1" && product == "web" && ago > 40*day && ago <= 40*day+5*time.Hour:
		return store.StatusDegraded
	}
	return store.StatusUp
}
