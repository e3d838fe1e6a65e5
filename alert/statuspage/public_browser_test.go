package statuspage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/internal/scrub"
)

// TestBrowserPublicPage loads the public page in real headless Chromium with scripts
// disabled, at a desktop and a phone width: the overall line, the components and the
// incident card are there and readable, nothing is wider than the screen, and a
// screenshot of each is saved (PICKET_DOCS_DIR=docs writes the README's).
func TestBrowserPublicPage(t *testing.T) {
	requireChromium(t)
	now := time.Now().UTC().Truncate(time.Second)
	r := newRig(t, publicPlatform, now)
	r.realisticHistory(now) // 90 days of history, two incidents resolved today, eu1 out now
	if _, _, err := r.engine.PostUpdate("picket/region/eu1", alert.Update{Status: alert.UpdateIdentified,
		Text: "A storage cluster in Europe 1 failed; we are moving traffic to its standby. Data sent meanwhile is queued, not lost."}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, statuspage.NewPublic(r.source(), statuspage.PublicOptions{Public: r.cfg.Public, Names: alert.NamesOf(r.cfg),
		Now: r.clock.Now, Redactor: scrub.NewWithForms(r.cfg.SecretValues()...)}))
	ctx := startBrowser(t)
	noScript := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})
	if err := chromedp.Do(ctx, noScript); err != nil {
		t.Fatalf("disable scripts: %v", err)
	}
	for _, screen := range []struct {
		name          string
		width, height int64
		opts          []chromedp.EmulateViewportOption
		docsShot      chromedp.Action[[]byte] // the README's: the whole page, or the phone's first screen
	}{
		{"public-desktop.png", 1280, 900, nil, chromedp.FullScreenshot(100)},
		{"public-phone.png", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}, chromedp.CaptureScreenshot()},
	} {
		t.Run(screen.name, func(t *testing.T) {
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(screen.width, screen.height, screen.opts...),
				chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("overall"))); err != nil {
				t.Fatalf("load the public page: %v", err)
			}
			seen := run(t, ctx, chromedp.Evaluate[[]string](`[document.getElementById("overall").innerText,
				String(document.querySelectorAll('li.row').length),
				document.querySelector('li[data-component="logs.eu1"]').innerText.split("\n")[0] + " | " + document.querySelector('li[data-component="logs.eu1"] .pill').innerText,
				String(document.querySelectorAll('#active-h ~ article.incident').length),
				String(document.documentElement.scrollWidth <= window.innerWidth),
				String(typeof window.picketRefresh)]`))
			want := []string{"✕ Major outage: Logs, Metrics in Europe 1", "15", "Europe 1 | ✕ Major outage", "1", "true", "undefined"}
			for i := range want {
				if i >= len(seen) || strings.TrimSpace(seen[i]) != want[i] {
					t.Errorf("seen %q, want %q", seen, want)
					break
				}
			}
			card := run(t, ctx, chromedp.Evaluate[string](`document.querySelector("article.incident").innerText`))
			for _, s := range []string{"Identified", "moving traffic to its standby", "Our automated checks detected a problem"} {
				if !strings.Contains(card, s) {
					t.Errorf("the incident card lacks %q:\n%s", s, card)
				}
			}
			noOperatorDetail(t, "the rendered page", run(t, ctx, chromedp.Evaluate[string](`document.body.innerText`)))
			saveScreenshot(t, ctx, screenshotDir(t), screen.name)
			if dir := os.Getenv("PICKET_DOCS_DIR"); dir != "" {
				saveScreenshotTo(t, ctx, filepath.Join(dir, screen.name), screen.docsShot)
			}
		})
	}
}
