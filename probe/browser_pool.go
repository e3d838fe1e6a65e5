package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
)

// Bounds of the browser processes.
const (
	// browserStartLimit bounds a browser's start when the run's deadline is further.
	browserStartLimit = 30 * time.Second
	// browserPingLimit is how long a browser that a run left in doubt (a timeout) has
	// to answer before it counts as hung and is killed.
	browserPingLimit = 500 * time.Millisecond
	// browserOutputTail is how much of a browser's own output is kept to explain a
	// crash.
	browserOutputTail = 4 << 10
)

var errPoolClosed = errors.New("the browser pool is closed (a reload or shutdown replaced it)")

// browserPool is a fixed number of browser slots, each running one run at a time. A
// slot holds a live browser, or nil until one is needed (or after one was killed).
type browserPool struct {
	set      config.BrowserSettings
	free     chan *browserProc
	retiring sync.WaitGroup // tabs being closed and browsers being killed in the background

	mu     sync.Mutex
	closed bool
}

func newBrowserPool(set config.BrowserSettings) *browserPool {
	p := &browserPool{set: set, free: make(chan *browserProc, set.Pool)}
	for range set.Pool {
		p.free <- nil
	}
	return p
}

// acquire takes a free slot, starting its browser when it has none (or a dead one),
// within ctx.
func (p *browserPool) acquire(ctx context.Context) (*browserProc, error) {
	var proc *browserProc
	select {
	case proc = <-p.free:
	case <-ctx.Done():
		return nil, fmt.Errorf("timeout: no browser free before the deadline (all %d of browser.pool busy): %w", p.set.Pool, ctx.Err())
	}
	if p.isClosed() {
		p.free <- nil
		proc.kill()
		return nil, errPoolClosed
	}
	if proc != nil && proc.alive() {
		return proc, nil
	}
	proc.kill() // died while idle: wait for it before starting another
	proc, err := startBrowser(ctx, p.set)
	if err != nil {
		p.free <- nil
		return nil, err
	}
	return proc, nil
}

// release gives the slot back; a browser that should not run again is killed first.
func (p *browserPool) release(proc *browserProc, keep bool) {
	if !keep || p.isClosed() {
		proc.kill()
		proc = nil
	}
	p.free <- proc
}

// recycle closes a run's tab (and disposes of its incognito context) in the background,
// then gives the browser back: the run need not wait for the browser to tidy up.
func (p *browserPool) recycle(proc *browserProc, closeTab func()) {
	p.retiring.Go(func() {
		closeTab()
		p.release(proc, proc.alive())
	})
}

// retire kills a browser that must not run again in the background, so that the run
// that found it dead, hung or too big ends now; its slot is free once it is gone.
// after runs once the browser is gone (closing the run's tab, at once then).
func (p *browserPool) retire(proc *browserProc, after func()) {
	p.retiring.Go(func() {
		proc.kill()
		after()
		p.free <- nil
	})
}

func (p *browserPool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// close kills the idle browsers and waits for them and for the ones being retired; a
// browser in use is killed when its run releases it. It does not wait for runs in
// flight.
func (p *browserPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	killed := 0
	for range p.set.Pool {
		select {
		case proc := <-p.free:
			proc.kill()
			killed++
		default:
		}
	}
	for range killed {
		p.free <- nil
	}
	p.retiring.Wait()
}

// browserProc is one running browser.
type browserProc struct {
	ctx    context.Context // the browser's own context: done once the browser is gone
	cancel func()          // kills the browser and waits for it and its folder to go
	once   sync.Once
	pid    int
	out    *tailBuffer
}

// startBrowser starts Chromium headless, within ctx; the browser itself lives until it
// is killed, not until ctx ends.
func startBrowser(ctx context.Context, set config.BrowserSettings) (*browserProc, error) {
	if set.Path == "" {
		return nil, errors.New("no browser: browser.path is not set and none was found at load")
	}
	out := &tailBuffer{max: browserOutputTail}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browserFlags(set, out)...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	proc := &browserProc{ctx: bctx, out: out, cancel: func() { cancelBrowser(); cancelAlloc() }}
	limit, cancelLimit := context.WithTimeout(ctx, browserStartLimit)
	defer cancelLimit()
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx) }() // the first Do binds the browser to bctx
	select {
	case err := <-started:
		if err != nil {
			proc.kill()
			first, _, _ := strings.Cut(err.Error(), "\n") // chromedp appends all the browser said
			return nil, fmt.Errorf("start the browser %s: %s%s", set.Path, first, out.says())
		}
	case <-limit.Done():
		proc.kill()
		<-started
		return nil, fmt.Errorf("timeout: the browser %s did not start before the deadline%s", set.Path, out.says())
	}
	if b := chromedp.FromContext(bctx).Browser; b != nil && b.Process() != nil {
		proc.pid = b.Process().Pid
	}
	return proc, nil
}

// browserFlags: chromedp's defaults (headless, no first run, no background
// networking...), plus what an out-of-band prober needs: no proxy (it must not go
// through infrastructure it may share with the platform), no GPU, no QUIC, no
// component updates.
func browserFlags(set config.BrowserSettings, out *tailBuffer) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(set.Path),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(config.DefaultViewportWidth, config.DefaultViewportHeight),
		chromedp.CombinedOutput(out),
	)
	if set.NoSandbox {
		opts = append(opts, chromedp.NoSandbox)
	}
	return opts
}

func (b *browserProc) alive() bool { return b != nil && b.ctx.Err() == nil }

// kill ends the browser (SIGKILL through its context) and waits until it and its
// profile folder are gone. It is safe on nil and more than once.
func (b *browserProc) kill() {
	if b == nil {
		return
	}
	b.once.Do(b.cancel)
}

// responsive asks the browser for its version: a browser that cannot answer within
// browserPingLimit is hung.
func (b *browserProc) responsive() bool {
	if !b.alive() {
		return false
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserPingLimit)
	defer cancel()
	_, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	return err == nil
}

// memory is what the browser and every process under it (renderers, the GPU and
// network services) hold: their proportional set sizes summed (shared pages split
// between the processes that share them, so the sum is the real footprint), or the
// resident sets where smaps_rollup cannot be read. 0 where /proc is not there.
func (b *browserProc) memory() int64 {
	if b == nil || b.pid == 0 {
		return 0
	}
	return proportional(procTree(b.pid))
}

// procTree is pid and its descendants, found through /proc/*/stat, with the resident
// bytes of each.
func procTree(pid int) (pids []int, rss map[int]int64) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil
	}
	children := map[int][]int{}
	rss = map[int]int64{}
	page := int64(os.Getpagesize())
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, pages, ok := readStat(id); ok {
			children[ppid] = append(children[ppid], id)
			rss[id] = pages * page
		}
	}
	pids = []int{pid}
	for i := 0; i < len(pids) && len(pids) < 10_000; i++ {
		pids = append(pids, children[pids[i]]...)
	}
	return pids, rss
}

// proportional sums the proportional set sizes of pids, or the resident set where
// smaps_rollup cannot be read.
func proportional(pids []int, rss map[int]int64) int64 {
	total := int64(0)
	for _, id := range pids {
		if pss, ok := readPSS(id); ok {
			total += pss
		} else {
			total += rss[id]
		}
	}
	return total
}

// readPSS reads "Pss: N kB" from /proc/PID/smaps_rollup.
func readPSS(pid int) (int64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// readStat reads the parent and the resident pages of a process from /proc/PID/stat
// ("pid (comm) state ppid ... rss ...": comm may hold spaces and parentheses).
func readStat(pid int) (ppid int, pages int64, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 22 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pages, err2 := strconv.ParseInt(f[21], 10, 64)
	return ppid, pages, err1 == nil && err2 == nil
}

// tailBuffer keeps the last max bytes written: what a browser said before it died.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		rest := t.buf[over:]
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:] // whole lines only
		}
		t.buf = append(t.buf[:0], rest...)
	}
	return len(p), nil
}

// says is the browser's last output line, for an error: "" when it said nothing.
func (t *tailBuffer) says() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := ""
	for line := range strings.SplitSeq(string(t.buf), "\n") {
		// D-Bus complaints are noise on a host without a session bus (servers, containers).
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "dbus") {
			last = line
		}
	}
	if last == "" {
		return ""
	}
	return " (the browser said: " + scrub.Excerpt([]byte(last), 200) + ")"
}
