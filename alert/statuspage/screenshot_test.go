package statuspage_test

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/probe"
)

const testShot = "logs_submit-and-read_eu1-20260302T100030Z-k2j3.png"

// shotRig: logs in eu1 fails with a browser step's screenshot, kept in dir.
func shotRig(t *testing.T) (*rig, string, []byte) {
	t.Helper()
	r := newRig(t, smallPlatform, testStart)
	r.round(nil)
	r.clock.Advance(30 * time.Second)
	id := r.targetID("logs", "submit-and-read", "eu1")
	r.engine.Observe(probe.Result{Target: id, Product: "logs", Journey: "submit-and-read", Region: "eu1", Started: r.clock.Now(),
		Status: probe.StatusDown, Tries: 1, FailedStep: "login", Error: "step login: action 5 (wait_visible `#welcome`): no element matches within 5s",
		Steps: []probe.StepResult{{Name: "login", Kind: "browser", Status: probe.StatusDown, Screenshot: testShot}}})
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 4, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, testShot), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a screenshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	return r, dir, buf.Bytes()
}

func TestIncidentShowsItsScreenshot(t *testing.T) {
	r, dir, shot := shotRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now, ScreenshotDir: dir}))
	page := do(t, srv, "GET", "/", nil, nil).body
	want := `<a href="screenshots/` + testShot + `"><img src="screenshots/` + testShot + `" alt="Screenshot of logs/submit-and-read@eu1 when it failed" loading="lazy"></a><figcaption>logs/submit-and-read@eu1</figcaption>`
	if !strings.Contains(page, want) || !strings.Contains(page, `data-screenshots="1"`) {
		t.Errorf("the incident lacks its screenshot %s in:\n%s", want, page)
	}
	got := do(t, srv, "GET", "/screenshots/"+testShot, nil, nil)
	if got.status != 200 || got.header.Get("Content-Type") != "image/png" || got.body != string(shot) {
		t.Errorf("GET the screenshot: %d %s (%d bytes)", got.status, got.header.Get("Content-Type"), len(got.body))
	}
	for _, path := range []string{"/screenshots/notes.txt", "/screenshots/..%2Fsecrets.png", "/screenshots/missing.png", "/screenshots/%2Fetc%2Fpasswd"} {
		if a := do(t, srv, "GET", path, nil, nil); a.status != 404 {
			t.Errorf("GET %s: %d, want 404", path, a.status)
		}
	}
	// Without a screenshot folder there is nothing to show or serve.
	bare := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	if page := do(t, bare, "GET", "/", nil, nil).body; strings.Contains(page, "screenshots/") {
		t.Errorf("a page without a screenshot folder links screenshots")
	}
	if a := do(t, bare, "GET", "/screenshots/"+testShot, nil, nil); a.status != 404 {
		t.Errorf("GET a screenshot without a folder: %d", a.status)
	}
}

// TestBrowserScreenshotSurvivesRefresh: app.js rebuilds the incident with the same
// screenshot figure the server rendered, and the image loads.
func TestBrowserScreenshotSurvivesRefresh(t *testing.T) {
	requireChromium(t)
	r, dir, _ := shotRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now, ScreenshotDir: dir}))
	ctx := startBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?refresh=1"), chromedp.WaitVisible(chromedp.CSS("#open-incidents .shots img"))); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	const digest = `Array.from(document.querySelectorAll("#open-incidents .shots"), s => s.outerHTML).join("\n")`
	served := run(t, ctx, chromedp.Evaluate[string](digest))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.refreshed !== undefined`,
		chromedp.WithPollingTimeout(refreshWithin), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("the script did not refresh the page within %s: %v", refreshWithin, err)
	}
	refreshed := run(t, ctx, chromedp.Evaluate[string](digest))
	if served == "" || refreshed != served {
		t.Errorf("after the refresh:\n %s\nwant what the server rendered:\n %s", refreshed, served)
	}
	if w := run(t, ctx, chromedp.Evaluate[int](`document.querySelector("#open-incidents .shots img").naturalWidth`)); w != 4 {
		t.Errorf("the screenshot did not load: natural width %d, want 4", w)
	}
}
