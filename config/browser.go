package config

import (
	"time"

	"github.com/picket-dev/picket/probe/tmpl"
)

// Defaults of the browser: block and of browser steps.
const (
	DefaultBrowserPool        = 2
	DefaultBrowserMaxMemoryMB = 1024
	DefaultKeepScreenshots    = 200
	DefaultMaxScreenshotBytes = 1 << 20
	DefaultActionTimeout      = 5 * time.Second
	DefaultViewportWidth      = 1280
	DefaultViewportHeight     = 800
)

// BrowserSettings are the compiled browser: block. Steps point at the Config's one,
// so a prober can keep one pool of browsers per settings.
type BrowserSettings struct {
	Path               string // the Chromium (or Chrome) executable; "" when no step needs one
	Pool               int    // browser processes
	MaxMemory          int64  // bytes of resident memory of one browser and its children
	NoSandbox          bool
	KeepScreenshots    int // failure screenshots kept in the screenshot folder
	MaxScreenshotBytes int
}

// BrowserStep is a compiled browser step.
type BrowserStep struct {
	Actions       []BrowserAction
	ActionTimeout time.Duration
	Width, Height int
	Settings      *BrowserSettings
}

// Browser action kinds.
const (
	ActionNavigate    = "navigate"
	ActionWaitVisible = "wait_visible"
	ActionClick       = "click"
	ActionType        = "type"
	ActionExpect      = "expect"
)

// BrowserAction is one compiled action of a browser step.
type BrowserAction struct {
	Kind     string
	Selector string         // CSS; "" for navigate, and for an expect of title, URL or page text
	Text     *tmpl.Template // navigate: the URL; type: what to type; expect: the text to find
	Title    *tmpl.Template // expect: a substring of the title
	URL      *tmpl.Template // expect: a substring of the URL
	Timeout  time.Duration  // 0: the step's action_timeout
	// Secret: the typed text comes from a secret; the field is blanked before a
	// screenshot and the text is never part of a reason.
	Secret bool
}

// Describe names the action in a reason: `wait_visible "#welcome"`, `navigate`.
func (a BrowserAction) Describe() string {
	switch {
	case a.Selector != "":
		return a.Kind + " " + quoteSelector(a.Selector)
	case a.Kind == ActionExpect && a.Title != nil:
		return "expect title"
	case a.Kind == ActionExpect && a.URL != nil:
		return "expect url"
	case a.Kind == ActionExpect:
		return "expect text"
	}
	return a.Kind
}

func quoteSelector(s string) string { return "`" + s + "`" }
