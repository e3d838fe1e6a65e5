package probe

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"

	"github.com/picket-dev/picket/internal/scrub"
	"github.com/picket-dev/picket/probe/expect"
)

// Bounds on what one browser run remembers of its page.
const (
	pageShownMessages = 3    // console errors and failed requests quoted in a reason
	pageMessageLen    = 160  // each, cut to this
	pageTrackedReqs   = 2000 // requests whose URL and start are kept (all are counted)
)

// pageEvents collects what the page did, from the tab's event stream (chromedp calls
// observe on the tab's read loop, in order: it must be quick and run no command).
type pageEvents struct {
	// redact takes the config's secrets out of a message before it is cut to an
	// excerpt: cut first, half a secret would no longer match.
	redact   func(string) string
	mu       sync.Mutex
	reqs     map[network.RequestID]*pageRequest
	requests int
	bytes    int64
	console  []string
	nConsole int
	failed   []string
	nFailed  int
	slowest  string
	slowDur  time.Duration
}

type pageRequest struct {
	method, url string
	start       float64 // monotonic seconds
	failed      bool    // counted already (a status >= 400)
}

func newPageEvents(redact func(string) string) *pageEvents {
	return &pageEvents{redact: redact, reqs: map[network.RequestID]*pageRequest{}}
}

func (e *pageEvents) observe(ev any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		e.requests++
		if ev.Request != nil && len(e.reqs) < pageTrackedReqs {
			e.reqs[ev.RequestID] = &pageRequest{method: ev.Request.Method, url: shortURL(ev.Request.URL), start: float64(ev.Timestamp)}
		}
	case *network.EventResponseReceived:
		if r := e.reqs[ev.RequestID]; r != nil && ev.Response != nil && ev.Response.Status >= 400 && !isFavicon(r.url) {
			r.failed = true
			e.fail(fmt.Sprintf("%s %s: status %d", r.method, r.url, ev.Response.Status))
		}
	case *network.EventLoadingFinished:
		e.bytes += int64(ev.EncodedDataLength)
		if r := e.reqs[ev.RequestID]; r != nil {
			if d := time.Duration((float64(ev.Timestamp) - r.start) * float64(time.Second)); d > e.slowDur {
				e.slowDur, e.slowest = d, fmt.Sprintf("%s %s %s", r.method, r.url, roundDur(d))
			}
		}
	case *network.EventLoadingFailed:
		e.loadingFailed(ev)
	case *runtime.EventExceptionThrown:
		e.consoleError(exceptionText(ev.ExceptionDetails))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			e.consoleError("console." + string(ev.Type) + ": " + argsText(ev.Args))
		}
	case *cdplog.EventEntryAdded:
		e.logEntry(ev.Entry)
	}
}

func (e *pageEvents) loadingFailed(ev *network.EventLoadingFailed) {
	r := e.reqs[ev.RequestID]
	if r == nil || r.failed || isFavicon(r.url) || (ev.Canceled && ev.BlockedReason == "") {
		return // a cancelled request (the page moved on) is no failure
	}
	why := ev.ErrorText
	switch {
	case ev.BlockedReason != "":
		why = "blocked (" + string(ev.BlockedReason) + ")"
	case ev.CorsErrorStatus != nil:
		why = "blocked by CORS (" + string(ev.CorsErrorStatus.CorsError) + ")"
	}
	e.fail(fmt.Sprintf("%s %s: %s", r.method, r.url, why))
}

var quotedURL = regexp.MustCompile(`'(https?://[^']+)'`)

// logEntry sorts the browser's own log: a Content-Security-Policy refusal is a blocked
// request (the network events never see it), a network entry repeats a failure the
// network events already counted, any other error is a console error.
func (e *pageEvents) logEntry(en *cdplog.Entry) {
	if en == nil || en.Level != cdplog.EntryLevelError {
		return
	}
	switch en.Source {
	case cdplog.EntrySourceNetwork:
	case cdplog.EntrySourceSecurity:
		target := en.Text
		if m := quotedURL.FindStringSubmatch(en.Text); m != nil {
			target = shortURL(m[1])
		}
		e.fail("blocked by Content-Security-Policy: " + target)
	default:
		e.consoleError(en.Text)
	}
}

func (e *pageEvents) fail(msg string) {
	e.nFailed++
	if len(e.failed) < pageShownMessages {
		e.failed = append(e.failed, scrub.Excerpt([]byte(e.redact(msg)), pageMessageLen))
	}
}

func (e *pageEvents) consoleError(msg string) {
	e.nConsole++
	if len(e.console) < pageShownMessages {
		e.console = append(e.console, scrub.Excerpt([]byte(e.redact(msg)), pageMessageLen))
	}
}

// fill copies the counts into a page's facts.
func (e *pageEvents) fill(b *expect.BrowserInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b.Requests, b.Bytes = e.requests, e.bytes
	b.Console, b.NConsole = append([]string(nil), e.console...), e.nConsole
	b.Failed, b.NFailed = append([]string(nil), e.failed...), e.nFailed
	b.Slowest = e.redact(e.slowest)
}

// isFavicon: the browser asks for /favicon.ico by itself; a customer never sees it fail.
func isFavicon(u string) bool { return strings.HasSuffix(u, "/favicon.ico") }

// shortURL drops the query and fragment: enough to name the request, and a token in a
// query string stays out of the reason.
func shortURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return scrub.Excerpt([]byte(raw), 100)
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// exceptionText is what the console shows of an uncaught exception: "Uncaught
// TypeError: Cannot read properties of undefined (reading 'render')".
func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "uncaught exception"
	}
	text := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		first, _, _ := strings.Cut(d.Exception.Description, "\n")
		text += " " + first
	}
	return strings.TrimSpace(text)
}

// argsText joins console arguments as the console shows them, roughly: strings as they
// are, other values by description or JSON value.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		if a == nil {
			continue
		}
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && len(a.Value) > 0:
			_ = json.Unmarshal(a.Value, &s)
		case a.Description != "":
			s, _, _ = strings.Cut(a.Description, "\n")
		case len(a.Value) > 0:
			s = string(a.Value)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// pageFacts is what collectFacts returns from the page.
type pageFacts struct {
	URL   string  `json:"url"`
	Title string  `json:"title"`
	LCP   float64 `json:"lcp"` // ms since navigation start; 0: none
	CLS   float64 `json:"cls"`
	Nav   *struct {
		DNSStart  float64 `json:"domainLookupStart"`
		DNSEnd    float64 `json:"domainLookupEnd"`
		ConnStart float64 `json:"connectStart"`
		TLSStart  float64 `json:"secureConnectionStart"`
		ConnEnd   float64 `json:"connectEnd"`
		ReqStart  float64 `json:"requestStart"`
		RespStart float64 `json:"responseStart"`
		RespEnd   float64 `json:"responseEnd"`
		DCL       float64 `json:"domContentLoadedEventEnd"`
		Load      float64 `json:"loadEventEnd"`
	} `json:"nav"`
}

// collectFacts waits for the page's largest contentful paint to be reported (Chromium
// reports it a frame or so after the paint; up to %d ms), then reads it, the layout
// shifts (the largest session window: gaps under 1 s, at most 5 s, as CLS is
// defined) and the navigation timing of the document the page is on.
const collectFacts = `new Promise(resolve => {
  const out = {url: location.href, title: document.title, lcp: 0, cls: 0, nav: null};
  let done = false;
  const finish = () => {
    if (done) { return; }
    done = true;
    try {
      const o = new PerformanceObserver(() => {});
      o.observe({type: "layout-shift", buffered: true});
      let cur = 0, first = 0, last = 0;
      for (const e of o.takeRecords()) {
        if (e.hadRecentInput) { continue; }
        if (cur > 0 && (e.startTime - last < 1000) && (e.startTime - first < 5000)) { cur += e.value; }
        else { cur = e.value; first = e.startTime; }
        last = e.startTime;
        out.cls = Math.max(out.cls, cur);
      }
      o.disconnect();
    } catch (e) {}
    const n = performance.getEntriesByType("navigation")[0];
    if (n) { out.nav = n.toJSON(); }
    resolve(out);
  };
  try {
    const o = new PerformanceObserver(list => {
      for (const e of list.getEntries()) { out.lcp = Math.max(out.lcp, e.startTime); }
      finish();
    });
    o.observe({type: "largest-contentful-paint", buffered: true});
  } catch (e) {}
  setTimeout(finish, %d);
})`

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// phases maps the navigation timing onto the phases every step reports.
func (f *pageFacts) phases() Phases {
	n := f.Nav
	if n == nil {
		return Phases{}
	}
	ph := Phases{DNS: msDur(n.DNSEnd - n.DNSStart), Connect: msDur(n.ConnEnd - n.ConnStart),
		Processing: msDur(n.RespStart - n.ReqStart), Transfer: msDur(n.RespEnd - n.RespStart), TTFB: msDur(n.RespStart)}
	if n.TLSStart > 0 {
		ph.Connect, ph.TLS = msDur(n.TLSStart-n.ConnStart), msDur(n.ConnEnd-n.TLSStart)
	}
	return ph
}
