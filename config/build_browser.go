package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// browserNames are the executables FindBrowser looks for on PATH, in order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome", "headless-shell"}

// FindBrowser returns the browser executable: configured (a path, or a name looked up
// on PATH) when set, else the first of browserNames on PATH. The error says what was
// looked for and how to fix it.
func FindBrowser(configured string) (string, error) {
	if configured != "" {
		p := configured
		if !strings.ContainsRune(p, os.PathSeparator) {
			found, err := exec.LookPath(p)
			if err != nil {
				return "", fmt.Errorf("browser.path %q: not found on PATH; install Chromium (Debian: apt-get install chromium) or give its full path", configured)
			}
			p = found
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("browser.path %s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found for the browser steps (looked for %s on PATH); install it (Debian: apt-get install chromium, as .ci/install-chromium does) or set browser.path",
		strings.Join(browserNames, ", "))
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file; install Chromium (Debian: apt-get install chromium) or fix browser.path")
	case err != nil:
		return unwrapPathErr(err)
	case fi.IsDir():
		return errors.New("is a directory, want the browser's executable")
	case fi.Mode()&0o111 == 0:
		return errors.New("is not executable")
	}
	return nil
}

// buildBrowserSettings compiles browser: with its defaults; the executable is looked
// for only when a step needs it (resolveBrowser).
func (b *builder) buildBrowserSettings() {
	s := &BrowserSettings{Pool: DefaultBrowserPool, MaxMemory: DefaultBrowserMaxMemoryMB << 20,
		KeepScreenshots: DefaultKeepScreenshots, MaxScreenshotBytes: DefaultMaxScreenshotBytes}
	b.cfg.Browser = s
	x := b.f.Browser
	if x == nil {
		return
	}
	s.NoSandbox = x.NoSandbox
	s.Pool = pickInt(x.Pool, nil, s.Pool)
	if s.Pool < 1 || s.Pool > 32 {
		b.d.errorf(b.d.at(x, "pool"), "browser.pool must be 1 to 32 browser processes, got %d", s.Pool)
	}
	mem := pickInt(x.MaxMemoryMB, nil, DefaultBrowserMaxMemoryMB)
	if mem < 128 {
		b.d.errorf(b.d.at(x, "max_memory_mb"), "browser.max_memory_mb must be at least 128 (an empty page takes about 100 MB), got %d", mem)
	}
	s.MaxMemory = int64(mem) << 20
	s.KeepScreenshots = pickInt(x.KeepScreenshots, nil, s.KeepScreenshots)
	if s.KeepScreenshots < 0 {
		b.d.errorf(b.d.at(x, "keep_screenshots"), "browser.keep_screenshots must be 0 (keep none) or more, got %d", s.KeepScreenshots)
	}
	s.MaxScreenshotBytes = pickInt(x.MaxScreenshotBytes, nil, s.MaxScreenshotBytes)
	if s.MaxScreenshotBytes < 10_000 {
		b.d.errorf(b.d.at(x, "max_screenshot_bytes"), "browser.max_screenshot_bytes must be at least 10000 (a blank page is about 5 kB), got %d", s.MaxScreenshotBytes)
	}
}

// resolveBrowser finds the executable once a browser step is known to need it, and
// says so at that step (or at browser.path) when there is none.
func (b *builder) resolveBrowser(step *yaml.Node) {
	if b.browserResolved {
		return
	}
	b.browserResolved = true
	configured, at := "", step
	if x := b.f.Browser; x != nil && x.Path != "" {
		configured, at = x.Path, b.d.at(x, "path")
		if strings.ContainsRune(x.Path, os.PathSeparator) {
			configured = b.path(x.Path) // relative to the config file, like other paths
		}
	}
	p, err := FindBrowser(configured)
	if err != nil {
		b.d.errorf(at, "%v", err)
		return
	}
	b.cfg.Browser.Path = p
}

func (b *builder) buildBrowser(x *BrowserSpec) *BrowserStep {
	b.resolveBrowser(b.d.at(x, ""))
	st := &BrowserStep{ActionTimeout: DefaultActionTimeout, Width: DefaultViewportWidth, Height: DefaultViewportHeight, Settings: b.cfg.Browser}
	if x.ActionTimeout != nil {
		st.ActionTimeout = *x.ActionTimeout
		b.positiveDuration(x, "action_timeout", x.ActionTimeout)
	}
	if v := x.Viewport; v != nil {
		st.Width, st.Height = v.Width, v.Height
		if v.Width < 200 || v.Width > 4000 || v.Height < 200 || v.Height > 4000 {
			b.d.errorf(b.d.at(x, "viewport"), "browser.viewport %dx%d: want width and height from 200 to 4000", v.Width, v.Height)
		}
	}
	if len(x.Actions) == 0 {
		b.d.errorf(b.d.at(x, ""), "browser.actions is required: a list starting with navigate")
	}
	for i, a := range x.Actions {
		if a == nil {
			continue
		}
		act, ok := b.buildAction(a)
		if !ok {
			continue
		}
		if i == 0 && act.Kind != ActionNavigate {
			b.d.errorf(b.d.at(a, ""), "the first action must be navigate: every run starts in a fresh, empty browser context")
		}
		st.Actions = append(st.Actions, act)
	}
	return st
}

func (b *builder) buildAction(a *BrowserActionSpec) (BrowserAction, bool) {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{ActionNavigate, a.Navigate != ""}, {ActionWaitVisible, a.WaitVisible != nil}, {ActionClick, a.Click != nil},
		{ActionType, a.Type != nil}, {ActionExpect, a.Expect != nil}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) != 1 {
		b.d.errorf(b.d.at(a, ""), "an action needs exactly one of navigate, wait_visible, click, type, expect (got %s)", joinNames(kinds))
		return BrowserAction{}, false
	}
	switch kinds[0] {
	case ActionNavigate:
		return b.navigateAction(a), true
	case ActionWaitVisible:
		return b.selectorAction(ActionWaitVisible, a.WaitVisible), true
	case ActionClick:
		return b.selectorAction(ActionClick, a.Click), true
	case ActionType:
		return b.typeAction(a.Type), true
	}
	return b.expectAction(a.Expect), true
}

func (b *builder) navigateAction(a *BrowserActionSpec) BrowserAction {
	act := BrowserAction{Kind: ActionNavigate, Text: b.template(a, "navigate", a.Navigate)}
	if act.Text != nil && act.Text.IsLiteral() {
		if u, err := url.Parse(a.Navigate); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			b.d.errorf(b.d.at(a, "navigate"), "navigate %q: want an absolute http:// or https:// URL", a.Navigate)
		}
	}
	return act
}

func (b *builder) selectorAction(kind string, x *SelectorSpec) BrowserAction {
	b.requireSelector(x, x.Selector, kind)
	return BrowserAction{Kind: kind, Selector: x.Selector, Timeout: b.actionTimeout(x, x.Timeout)}
}

func (b *builder) typeAction(x *TypeSpec) BrowserAction {
	b.requireSelector(x, x.Selector, ActionType)
	if x.Text == "" {
		b.d.errorf(b.d.at(x, ""), "type.text is required (a template; secrets allowed, never shown)")
	}
	return BrowserAction{Kind: ActionType, Selector: x.Selector, Text: b.template(x, "text", x.Text),
		Timeout: b.actionTimeout(x, x.Timeout), Secret: strings.Contains(x.Text, ".secret")}
}

func (b *builder) expectAction(x *PageExpectSpec) BrowserAction {
	act := BrowserAction{Kind: ActionExpect, Selector: x.Selector, Timeout: b.actionTimeout(x, x.Timeout)}
	forms := 0
	if x.Text != "" || x.Selector != "" {
		forms++
		if x.Text != "" {
			act.Text = b.template(x, "text", x.Text)
		}
	}
	if x.Title != "" {
		forms++
		act.Title = b.template(x, "title", x.Title)
	}
	if x.URL != "" {
		forms++
		act.URL = b.template(x, "url", x.URL)
	}
	if forms != 1 {
		b.d.errorf(b.d.at(x, ""), "expect needs one of: text (anywhere, or in selector), selector alone (it is present), title, url")
	}
	return act
}

func (b *builder) requireSelector(owner any, selector, kind string) {
	if strings.TrimSpace(selector) == "" {
		b.d.errorf(b.d.at(owner, ""), "%s needs a CSS selector, such as \"#login\" or {selector: \"#login\", timeout: 10s}", kind)
	}
}

func (b *builder) actionTimeout(owner any, t *time.Duration) time.Duration {
	if t == nil {
		return 0
	}
	b.positiveDuration(owner, "timeout", t)
	return *t
}

// BrowserRunCost is about what one browser step takes on a healthy page (measured by
// probe's BenchmarkBrowserJourney: 1.1 to 1.4 s on a loaded 2-core machine).
const BrowserRunCost = 1500 * time.Millisecond

// BrowserRunsInFlight is how many browser steps run at once on average when each takes
// BrowserRunCost: the sum over targets of their browser steps' time over the interval.
func BrowserRunsInFlight(targets []*Target) float64 {
	sum := 0.0
	for _, t := range targets {
		n := 0
		for _, st := range t.Steps {
			if st.Browser != nil {
				n++
			}
		}
		if n > 0 && t.Interval > 0 {
			sum += float64(time.Duration(n)*BrowserRunCost) / float64(t.Interval)
		}
	}
	return sum
}

// browserPoolWarning: a pool smaller than the browser runs in flight makes runs wait for
// a browser, and the wait counts against their deadline: failures of Picket's own.
func (b *builder) browserPoolWarning() (Error, bool) {
	need, have := BrowserRunsInFlight(b.cfg.Targets), b.cfg.Browser.Pool
	if need <= float64(have) {
		return Error{}, false
	}
	at, setting := keyAt(b.d.maps[b.f], "products"), fmt.Sprintf("browser.pool %d (the default)", have)
	if x := b.f.Browser; x != nil && x.Pool != nil {
		at, setting = b.d.at(x, "pool"), fmt.Sprintf("browser.pool %d", have)
	}
	return b.d.errorAt(at, fmt.Sprintf("%s is below the %.1f browser steps running at once at about %s each "+
		"(more where pages are slow): runs would wait for a browser, and the wait counts against their deadline; "+
		"set browser.pool: %d or more (and give each browser about 0.5 GiB), or lengthen the intervals",
		setting, need, BrowserRunCost, int(math.Ceil(need)))), true
}
