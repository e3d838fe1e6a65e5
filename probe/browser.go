package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

// Bounds of one browser run.
const (
	// The end of a run's deadline is kept for what comes after the actions: the page's
	// facts, a screenshot, closing the tab. A fifth of the budget, within these bounds.
	browserReserveMin = 400 * time.Millisecond
	browserReserveMax = 2 * time.Second
	// browserLCPWait is how long the facts wait for Chromium to report the largest
	// contentful paint (it comes a frame or so after the paint).
	browserLCPWait = time.Second
	// browserMaxBody bounds the rendered HTML kept as the step's body.
	browserMaxBody = 1 << 20
	// browserMemoryEvery is how often a run checks its browser's memory. A look costs
	// about 35 ms of CPU during a run (measured with a run's 11 Chromium processes):
	// their smaps_rollup files nearly all of it, every process's /proc/PID/stat (to
	// find the browser's) about 3 ms.
	browserMemoryEvery = time.Second
	// expectEvery is how often an expect action looks at the page again.
	expectEvery = 100 * time.Millisecond
)

// BrowserProber runs browser steps in headless Chromium: a small pool of browser
// processes per browser: settings, each run in a fresh incognito context of its own
// (no cookie, cache or storage carried from a run before), bounded by the step's
// deadline, with the browser's memory watched. A browser that hangs, crashes or grows
// too big is killed and replaced.
type BrowserProber struct {
	shots *screenshots // nil: failures keep no screenshot

	mu     sync.Mutex
	pools  map[config.BrowserSettings]*browserPool
	closed bool
}

var _ Prober = (*BrowserProber)(nil)

// NewBrowserProber returns a prober that starts browsers only when a step needs one.
// Failure screenshots go to screenshotDir ("" keeps none).
func NewBrowserProber(screenshotDir string) *BrowserProber {
	p := &BrowserProber{pools: map[config.BrowserSettings]*browserPool{}}
	if screenshotDir != "" {
		p.shots = &screenshots{dir: screenshotDir}
	}
	return p
}

// Close kills the idle browsers; a browser still in a run is killed when the run ends.
func (p *BrowserProber) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, pool := range p.pools {
		pool.close()
	}
}

func (p *BrowserProber) pool(set *config.BrowserSettings) (*browserPool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	pool := p.pools[*set]
	if pool == nil {
		pool = newBrowserPool(*set)
		p.pools[*set] = pool
	}
	return pool, nil
}

// Probe runs the step's actions in a fresh incognito tab. The tab stays open until the
// Exchange is released, so that the journey can take a screenshot of a failure it
// judges from the page's facts.
func (p *BrowserProber) Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange {
	ex := &Exchange{Info: map[string]string{}}
	start := time.Now()
	pool, err := p.pool(step.Browser.Settings)
	if err != nil {
		ex.Err = err
		return ex
	}
	proc, err := pool.acquire(ctx)
	if err != nil {
		ex.Err = err
		return ex
	}
	r := openRun(ctx, pool, proc, step, data, p.shots)
	ex.release = r.close
	ex.failed = func() (string, error) { return r.screenshot(data) }
	err = r.start()
	if err == nil {
		err = r.actions(data)
	}
	actionsEnd := time.Now()
	if r.timeout {
		// A browser that ran an action out of time may be hung: one that does not
		// answer now is not asked for facts or a screenshot, only retired.
		if r.hung = !r.proc.responsive(); r.hung {
			err = fmt.Errorf("%w; the browser did not answer within %s (hung): killed and replaced", err, browserPingLimit)
		}
	}
	r.facts(ex, step)
	if err == nil {
		r.extract(ex, step)
	} else if ev := evidence(ex.Obs.Browser); ev != "" {
		err = fmt.Errorf("%w; the page had %s", err, ev)
	}
	ex.Err = err
	ex.Obs.Latency = actionsEnd.Sub(start)
	ex.Obs.Now = time.Now()
	return ex
}

// browserRun is one step's visit: a tab in a new incognito context of a pooled browser.
type browserRun struct {
	pool  *browserPool
	proc  *browserProc
	step  *config.BrowserStep
	spec  *config.Step
	shots *screenshots

	tab, run, acts                   context.Context
	cancelTab, cancelRun, cancelActs context.CancelFunc
	stopParent                       func() bool
	stopWatch                        chan struct{}
	watched                          sync.WaitGroup

	events  *pageEvents
	doc     *network.Response // the last document loaded
	memErr  atomic.Pointer[error]
	redact  func(string) string // the config's secrets out of what the page said
	timeout bool                // an action ran out of time: the browser may be hung
	hung    bool                // and it did not answer
	mem     int64               // the browser's memory after the actions (facts reads it)
	secrets []string
}

func openRun(ctx context.Context, pool *browserPool, proc *browserProc, step *config.Step, data tmpl.Data, shots *screenshots) *browserRun {
	r := &browserRun{pool: pool, proc: proc, step: step.Browser, spec: step, shots: shots, redact: secretRedactor(data),
		stopWatch: make(chan struct{})}
	r.events = newPageEvents(r.redact)
	r.tab, r.cancelTab = chromedp.NewContext(proc.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(r.events.observe))
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(config.DefaultTimeout)
	}
	r.run, r.cancelRun = context.WithDeadline(r.tab, deadline)
	r.stopParent = context.AfterFunc(ctx, r.cancelRun) // the journey's end (or shutdown) ends the run
	reserve := min(max(time.Until(deadline)/5, browserReserveMin), browserReserveMax)
	r.acts, r.cancelActs = context.WithDeadline(r.run, deadline.Add(-reserve))
	r.watched.Add(1)
	go r.watchMemory()
	return r
}

// start opens the tab (its first command binds it to the run) and sets the viewport
// when the step wants another than the window's.
func (r *browserRun) start() error {
	var steps []chromedp.Action[chromedp.Void]
	if r.step.Width != config.DefaultViewportWidth || r.step.Height != config.DefaultViewportHeight {
		steps = append(steps, chromedp.EmulateViewport(int64(r.step.Width), int64(r.step.Height)))
	}
	if err := chromedp.Do(r.run, steps...); err != nil {
		return r.explain(fmt.Errorf("open a tab: %w", err), r.run, "open a tab")
	}
	return nil
}

// watchMemory kills the browser when it grows over browser.max_memory_mb during the
// run: a page that leaks must not take the host down with it.
func (r *browserRun) watchMemory() {
	defer r.watched.Done()
	t := time.NewTicker(browserMemoryEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stopWatch:
			return
		case <-r.run.Done():
			return
		case <-t.C:
			if mem := r.proc.memory(); mem > r.pool.set.MaxMemory {
				err := fmt.Errorf("the browser used %d MiB, over browser.max_memory_mb %d; killed and replaced", mem>>20, r.pool.set.MaxMemory>>20)
				r.memErr.Store(&err)
				r.proc.kill()
				return
			}
		}
	}
}

// close ends the run. A healthy browser gets the tab closed (and its incognito context
// disposed of) and goes back to the pool; one that crashed, hung or grew too big is
// killed in the background, so this run ends now.
func (r *browserRun) close() {
	close(r.stopWatch)
	r.watched.Wait()
	r.stopParent()
	if r.timeout && !r.hung {
		r.hung = !r.proc.responsive()
	}
	keep := r.proc.alive() && !r.hung && r.memErr.Load() == nil && r.mem <= r.pool.set.MaxMemory
	r.cancelActs()
	r.cancelRun()
	if !keep {
		r.pool.retire(r.proc, r.cancelTab)
		return
	}
	r.pool.recycle(r.proc, r.cancelTab)
}

// actions runs the step's actions in order; the first failure names the action.
func (r *browserRun) actions(data tmpl.Data) error {
	for i, a := range r.step.Actions {
		if err := r.action(a, data); err != nil {
			return fmt.Errorf("action %d (%s): %w", i+1, a.Describe(), err)
		}
	}
	return nil
}

func (r *browserRun) action(a config.BrowserAction, data tmpl.Data) error {
	if a.Kind == config.ActionNavigate {
		return r.navigate(a, data)
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = r.step.ActionTimeout
	}
	ctx, cancel := context.WithTimeout(r.acts, timeout)
	defer cancel()
	var err error
	switch a.Kind {
	case config.ActionWaitVisible:
		err = chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(a.Selector)))
	case config.ActionClick:
		err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(a.Selector), chromedp.NodeVisible))
	case config.ActionType:
		err = r.typeText(ctx, a, data)
	case config.ActionExpect:
		return r.expect(ctx, a, data, timeout)
	}
	if err != nil {
		return r.explain(err, ctx, r.missing(a, timeout))
	}
	return nil
}

func (r *browserRun) navigate(a config.BrowserAction, data tmpl.Data) error {
	u, err := a.Text.Render(data)
	if err != nil {
		return err
	}
	resp, err := chromedp.Run(r.acts, chromedp.NavigateResponse(u))
	if err != nil {
		var le *chromedp.LoadError
		if errors.As(err, &le) {
			return fmt.Errorf("the page did not load: %s", le.ErrorText)
		}
		return r.explain(err, r.acts, "the page did not load")
	}
	r.doc = resp
	if resp != nil && !r.spec.ExpectsStatus && (resp.Status < 200 || resp.Status >= 400) {
		return fmt.Errorf("status %d, want 2xx or 3xx", resp.Status)
	}
	return nil
}

func (r *browserRun) typeText(ctx context.Context, a config.BrowserAction, data tmpl.Data) error {
	text, err := a.Text.Render(data)
	if err != nil {
		return fmt.Errorf("text: %w", err)
	}
	if a.Secret {
		r.secrets = append(r.secrets, a.Selector)
	}
	// Focus, then insert the text as one input (as a paste or an IME does): one round
	// trip, not three key events per character. The error never carries the text.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(a.Selector), chromedp.NodeVisible)); err != nil {
		return err
	}
	_, err = chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
	return err
}

// missing says, after a waiting action ran out of time, what was missing: no element
// at all, or one that is there but hidden.
func (r *browserRun) missing(a config.BrowserAction, timeout time.Duration) string {
	present, err := chromedp.Run(r.run, chromedp.Evaluate[bool](
		fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(a.Selector))))
	what := "no element matches"
	if err == nil && present {
		what = "an element matches but is not visible"
		if a.Kind == config.ActionWaitVisible {
			what = "an element matches but stays hidden"
		}
	}
	return fmt.Sprintf("%s within %s", what, timeout)
}

// explain turns what a chromedp call returned into a reason: the browser died, ran out
// of memory, the action's own time ran out, or the step's deadline came.
func (r *browserRun) explain(err error, ctx context.Context, timedOut string) error {
	switch {
	case r.memErr.Load() != nil:
		return *r.memErr.Load()
	case !r.proc.alive():
		return fmt.Errorf("the browser process ended during the run (crashed or killed; a new one replaces it): %w%s", err, r.proc.out.says())
	case r.run.Err() != nil:
		r.timeout = true
		if errors.Is(r.run.Err(), context.Canceled) {
			return fmt.Errorf("cancelled: %w", context.Canceled)
		}
		return fmt.Errorf("timeout: %s before the step's deadline (%w)", timedOut, context.DeadlineExceeded)
	case r.acts.Err() != nil:
		r.timeout = true
		return fmt.Errorf("timeout: %s before the step's deadline (%w)", timedOut, context.DeadlineExceeded)
	case ctx.Err() != nil:
		r.timeout = true
		return errors.New(timedOut)
	}
	return err
}

// evidence is what the page did wrong, for a reason that already says which action
// failed: failed requests and console errors often say why.
func evidence(b *expect.BrowserInfo) string {
	var parts []string
	if b.NFailed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed request(s): %s", b.NFailed, strings.Join(b.Failed, " | ")))
	}
	if b.NConsole > 0 {
		parts = append(parts, fmt.Sprintf("%d console error(s): %s", b.NConsole, strings.Join(b.Console, " | ")))
	}
	return strings.Join(parts, "; ")
}

// secretRedactor redacts the config's secrets (as the run's template data holds them),
// in every form a page could write them.
func secretRedactor(data tmpl.Data) func(string) string {
	values := make([]string, 0, 4)
	if secrets, ok := data["secret"].(map[string]string); ok {
		for _, v := range secrets {
			values = append(values, v)
		}
	}
	return scrub.NewWithForms(values...).String
}

// jsString quotes s as a JavaScript string literal (JSON's are).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// facts reads what the page got to (also after a failed action, so a reason can say
// what the page showed) into the exchange: timings, LCP, CLS, console errors, failed
// requests, bytes, the document's status and headers, and the browser's memory.
func (r *browserRun) facts(ex *Exchange, step *config.Step) {
	b := &expect.BrowserInfo{}
	r.events.fill(b)
	ex.Obs.Browser = b
	if r.doc != nil {
		ex.Obs.Status = int(r.doc.Status)
		ex.Obs.Headers = httpHeader(r.doc.Headers)
	}
	if r.proc.alive() && !r.hung && r.run.Err() == nil {
		r.pageFacts(ex, b)
		if step.Checks.NeedsBody() || needsRegex(step.Extract) {
			html, err := chromedp.Run(r.run, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`))
			if err == nil {
				ex.Obs.Body = []byte(html[:min(len(html), browserMaxBody)])
			}
		}
	}
	info := ex.Info
	info["requests"], info["bytes"] = strconv.Itoa(b.Requests), strconv.FormatInt(b.Bytes, 10)
	info["console_errors"], info["failed_requests"] = strconv.Itoa(b.NConsole), strconv.Itoa(b.NFailed)
	if len(b.Console) > 0 {
		info["console_error"] = b.Console[0]
	}
	if len(b.Failed) > 0 {
		info["failed_request"] = b.Failed[0]
	}
	if r.mem = r.proc.memory(); r.mem > 0 {
		info["browser_memory_mb"] = strconv.FormatInt(r.mem>>20, 10)
	}
}

func (r *browserRun) pageFacts(ex *Exchange, b *expect.BrowserInfo) {
	wait := min(browserLCPWait, time.Until(deadlineOf(r.run))/4)
	raw, err := chromedp.Run(r.run, chromedp.Evaluate[[]byte](fmt.Sprintf(collectFacts, wait.Milliseconds()), chromedp.EvalAwaitPromise))
	var f pageFacts
	if err != nil || json.Unmarshal(raw, &f) != nil {
		return
	}
	b.LCP, b.CLS, b.Navigated = msDur(f.LCP), f.CLS, f.Nav != nil
	ex.Phases = f.phases()
	info := ex.Info
	info["url"], info["title"] = scrub.Excerpt([]byte(r.redact(f.URL)), 200), scrub.Excerpt([]byte(r.redact(f.Title)), 120)
	info["lcp_ms"], info["cls"] = strconv.FormatInt(b.LCP.Milliseconds(), 10), strconv.FormatFloat(f.CLS, 'f', 4, 64)
	if f.Nav != nil {
		b.Load = msDur(f.Nav.Load)
		info["dom_content_loaded_ms"], info["load_ms"] = strconv.FormatInt(int64(f.Nav.DCL), 10), strconv.FormatInt(int64(f.Nav.Load), 10)
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func needsRegex(ex []config.Extractor) bool {
	for _, e := range ex {
		if e.Regex != nil {
			return true
		}
	}
	return false
}

// extract reads the text of each selector the step extracts from, for the journey.
func (r *browserRun) extract(ex *Exchange, step *config.Step) {
	for _, e := range step.Extract {
		if e.Selector == "" {
			continue
		}
		text, err := chromedp.Run(r.run, chromedp.Evaluate[*string](fmt.Sprintf(
			`(() => { const el = document.querySelector(%s); return el ? el.innerText.trim() : null })()`, jsString(e.Selector))))
		if err != nil || text == nil {
			continue
		}
		if ex.Obs.Browser.Texts == nil {
			ex.Obs.Browser.Texts = map[string]string{}
		}
		ex.Obs.Browser.Texts[e.Selector] = *text
	}
}

// httpHeader turns the protocol's headers into Go's, for header expectations.
func httpHeader(h network.Headers) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		for _, line := range strings.Split(fmt.Sprint(v), "\n") {
			out.Add(k, line)
		}
	}
	return out
}

// pageLook is what one look at the page found for an expect action.
type pageLook struct {
	Found bool   `json:"found"`
	Value string `json:"value"`
}

// expect looks at the page every expectEvery until it shows what the action wants, or
// the action's time runs out; a page that is navigating is looked at again.
func (r *browserRun) expect(ctx context.Context, a config.BrowserAction, data tmpl.Data, timeout time.Duration) error {
	want, js, err := expectQuery(a, data)
	if err != nil {
		return err
	}
	var last pageLook
	for {
		look, err := chromedp.Run(ctx, chromedp.Evaluate[pageLook](js))
		var exc *chromedp.ExceptionError
		switch {
		case errors.As(err, &exc):
			return fmt.Errorf("the page refused the selector: %s", exc.Error())
		case err == nil:
			last = look
			if look.Found && strings.Contains(look.Value, want) {
				return nil
			}
		}
		if !sleepUntil(ctx, time.Now().Add(expectEvery)) {
			last.Value = r.redact(last.Value)
			return r.explain(ctx.Err(), ctx, expectFailure(a, want, last, timeout))
		}
	}
}

// expectQuery is the text an expect action wants and the script that reads the page.
func expectQuery(a config.BrowserAction, data tmpl.Data) (want, js string, err error) {
	render := func(t *tmpl.Template) (string, error) {
		if t == nil {
			return "", nil
		}
		return t.Render(data)
	}
	switch {
	case a.Title != nil:
		want, err = render(a.Title)
		return want, `({found: true, value: document.title})`, err
	case a.URL != nil:
		want, err = render(a.URL)
		return want, `({found: true, value: location.href})`, err
	case a.Selector != "":
		want, err = render(a.Text)
		return want, fmt.Sprintf(`(() => { const el = document.querySelector(%s);
			return el ? {found: true, value: el.innerText} : {found: false, value: ""} })()`, jsString(a.Selector)), err
	}
	want, err = render(a.Text)
	return want, `({found: !!document.body, value: document.body ? document.body.innerText : ""})`, err
}

// expectFailure says what the page showed instead.
func expectFailure(a config.BrowserAction, want string, last pageLook, timeout time.Duration) string {
	shown := strconv.Quote(scrub.Excerpt([]byte(strings.Join(strings.Fields(last.Value), " ")), 80))
	switch {
	case a.Title != nil:
		return fmt.Sprintf("title is %s, want it to contain %q (waited %s)", shown, want, timeout)
	case a.URL != nil:
		return fmt.Sprintf("URL is %s, want it to contain %q (waited %s)", shown, want, timeout)
	case a.Selector != "" && !last.Found:
		return fmt.Sprintf("no element matches within %s", timeout)
	case a.Selector != "":
		return fmt.Sprintf("%q not in it within %s (it reads %s)", want, timeout, shown)
	}
	return fmt.Sprintf("%q not on the page within %s (the page reads %s)", want, timeout, shown)
}
