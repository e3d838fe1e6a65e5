package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/picket-dev/picket/probe/tmpl"
)

// screenshots is the folder failure screenshots are kept in, newest KeepScreenshots.
type screenshots struct {
	dir string
	mu  sync.Mutex // one save and prune at a time
}

// ScreenshotName matches the names a prober gives its screenshots (the status page
// serves only these).
var ScreenshotName = regexp.MustCompile(`^[A-Za-z0-9._-]+\.png$`)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// screenshotName: "web_login_eu1-20260302T101500Z-k2j3.png", from the run's target,
// time and id.
func screenshotName(data tmpl.Data, now time.Time) string {
	run, _ := data["run"].(map[string]string)
	target := strings.Trim(unsafeName.ReplaceAllString(run["target"], "_"), "._")
	if target == "" {
		target = "step"
	}
	id := unsafeName.ReplaceAllString(run["id"], "")
	return fmt.Sprintf("%s-%s-%s.png", target, now.UTC().Format("20060102T150405Z"), id)
}

// save writes the PNG (whole, through a rename) and drops the oldest beyond keep.
func (s *screenshots) save(name string, png []byte, keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, png, 0o640); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	s.prune(keep)
	return nil
}

func (s *screenshots) prune(keep int) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	type shot struct {
		name string
		at   time.Time
	}
	var shots []shot
	for _, e := range entries {
		if info, err := e.Info(); err == nil && ScreenshotName.MatchString(e.Name()) && info.Mode().IsRegular() {
			shots = append(shots, shot{e.Name(), info.ModTime()})
		}
	}
	if len(shots) <= keep {
		return
	}
	slices.SortFunc(shots, func(a, b shot) int { return a.at.Compare(b.at) })
	for _, sh := range shots[:len(shots)-keep] {
		_ = os.Remove(filepath.Join(s.dir, sh.name))
	}
}

// screenshot keeps a PNG of the page as the failure left it, with every field a secret
// was typed into blanked first, and returns its path.
func (r *browserRun) screenshot(data tmpl.Data) (string, error) {
	switch {
	case r.shots == nil || r.pool.set.KeepScreenshots == 0:
		return "", nil
	case !r.proc.alive() || r.hung:
		return "", fmt.Errorf("no screenshot: the browser is gone")
	case r.run.Err() != nil:
		return "", fmt.Errorf("no screenshot: no time left in the step")
	}
	for _, sel := range r.secrets {
		_ = chromedp.Do(r.run, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`document.querySelectorAll(%s).forEach(el => { if ("value" in el) { el.value = ""; } })`, jsString(sel))))
	}
	png, err := r.capture()
	if err != nil {
		return "", err
	}
	name := screenshotName(data, time.Now())
	if err := r.shots.save(name, png, r.pool.set.KeepScreenshots); err != nil {
		return "", fmt.Errorf("no screenshot: %w", err)
	}
	return filepath.Join(r.shots.dir, name), nil
}

// capture takes the viewport as PNG; over max_screenshot_bytes, once more at half
// scale; over it still, none.
func (r *browserRun) capture() ([]byte, error) {
	max := r.pool.set.MaxScreenshotBytes
	png, err := chromedp.Run(r.run, chromedp.CaptureScreenshot())
	if err != nil {
		return nil, fmt.Errorf("no screenshot: %w", err)
	}
	if len(png) <= max {
		return png, nil
	}
	res, err := chromedp.Call(r.run, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng,
		Clip: &page.Viewport{Width: float64(r.step.Width), Height: float64(r.step.Height), Scale: 0.5}})
	switch {
	case err != nil:
		return nil, fmt.Errorf("no screenshot: %w", err)
	case len(res.Data) > max:
		return nil, fmt.Errorf("no screenshot: %d bytes even at half scale, over max_screenshot_bytes %d", len(res.Data), max)
	}
	return res.Data, nil
}
