package expect

import (
	"fmt"
	"strings"
	"time"
)

// BrowserInfo is what a browser step saw of the page it ended on.
type BrowserInfo struct {
	LCP       time.Duration // largest contentful paint; 0: nothing contentful was painted
	CLS       float64       // cumulative layout shift (largest session window)
	Load      time.Duration // navigation start -> load event end; 0: no load event
	Bytes     int64         // transferred over the network, every request of the run
	Requests  int
	Console   []string // console errors and uncaught exceptions, first ones (a few)
	NConsole  int      // every console error of the run
	Failed    []string // failed requests: "GET /app/api/session: blocked (csp)", first ones
	NFailed   int      // every failed request of the run
	Slowest   string   // the slowest request, "GET /app/app.css 3.01s", for reasons
	Texts     map[string]string
	Navigated bool // a document was loaded (not about:blank)
}

type browserChecks struct {
	maxLCP, maxLoad  time.Duration
	maxCLS           *float64
	maxBytes         int64
	noConsoleErrors  bool
	noFailedRequests bool
}

func compileBrowser(s Spec, add func(field, key string, err error)) browserChecks {
	c := browserChecks{maxLCP: s.MaxLCP, maxLoad: s.MaxLoad, maxCLS: s.MaxCLS, maxBytes: s.MaxBytes,
		noConsoleErrors: s.NoConsoleErrors, noFailedRequests: s.NoFailedRequests}
	if s.MaxLCP < 0 {
		add("max_lcp", "", fmt.Errorf("want a positive duration, got %v", s.MaxLCP))
	}
	if s.MaxLoad < 0 {
		add("max_load", "", fmt.Errorf("want a positive duration, got %v", s.MaxLoad))
	}
	if s.MaxCLS != nil && *s.MaxCLS < 0 {
		add("max_cls", "", fmt.Errorf("want a layout shift score of 0 or more (0.1 is good, 0.25 poor), got %v", *s.MaxCLS))
	}
	if s.MaxBytes < 0 {
		add("max_bytes", "", fmt.Errorf("want 0 (no check) or more bytes, got %d", s.MaxBytes))
	}
	return c
}

func (c *browserChecks) empty() bool {
	return c.maxLCP == 0 && c.maxLoad == 0 && c.maxCLS == nil && c.maxBytes == 0 && !c.noConsoleErrors && !c.noFailedRequests
}

// HasBrowserChecks reports whether the step judges what only a browser sees (LCP, CLS,
// console errors, failed requests, bytes): config refuses them on other kinds.
func (c *Checks) HasBrowserChecks() bool { return c != nil && !c.browser.empty() }

func (c *browserChecks) check(b *BrowserInfo, fail func(string)) {
	if c.empty() {
		return
	}
	if b == nil {
		fail("no page, want a browser step")
		return
	}
	if c.maxLCP > 0 {
		switch {
		case b.LCP == 0:
			fail(fmt.Sprintf("no largest contentful paint: the page painted no text or image, want one within %s", c.maxLCP))
		case b.LCP > c.maxLCP:
			fail(fmt.Sprintf("LCP %s over %s%s", roundMS(b.LCP), c.maxLCP, slowest(b)))
		}
	}
	if c.maxLoad > 0 && b.Load > c.maxLoad {
		fail(fmt.Sprintf("load %s over %s%s", roundMS(b.Load), c.maxLoad, slowest(b)))
	}
	if c.maxCLS != nil && b.CLS > *c.maxCLS {
		fail(fmt.Sprintf("CLS %.3f over %g", b.CLS, *c.maxCLS))
	}
	if c.maxBytes > 0 && b.Bytes > c.maxBytes {
		fail(fmt.Sprintf("%d bytes transferred in %d requests, want at most %d", b.Bytes, b.Requests, c.maxBytes))
	}
	if c.noConsoleErrors && b.NConsole > 0 {
		fail(fmt.Sprintf("%s: %s", plural(b.NConsole, "console error"), strings.Join(b.Console, " | ")))
	}
	if c.noFailedRequests && b.NFailed > 0 {
		fail(fmt.Sprintf("%s: %s", plural(b.NFailed, "failed request"), strings.Join(b.Failed, " | ")))
	}
}

func slowest(b *BrowserInfo) string {
	if b.Slowest == "" {
		return ""
	}
	return "; slowest request: " + b.Slowest
}

func roundMS(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
