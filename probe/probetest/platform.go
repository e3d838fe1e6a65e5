// Package probetest runs a simulated multi-region SaaS platform on loopback: one
// HTTP server per region serving the public APIs of four products (logs, metrics,
// events, web), plus a control API to inject faults per region and product. Picket's
// tests, benchmarks and `picket demo` probe it as they would a real platform.
package probetest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures Start.
type Options struct {
	Regions     []string          // e.g. eu1, us1, us3, ap1; at least one
	Addrs       map[string]string // optional fixed listen address per region; default 127.0.0.1:0
	ControlAddr string            // optional fixed address of the control API; default 127.0.0.1:0
	APIKey      string            // if set, every /v1 request needs "Authorization: Bearer <APIKey>" else 401
	// IngestDelay is how long a written log or event takes to become readable.
	// Zero means 200ms; a negative value makes writes readable at once.
	IngestDelay time.Duration
	Logger      *slog.Logger
}

const (
	defaultAddr        = "127.0.0.1:0"
	defaultIngestDelay = 200 * time.Millisecond
	// readHeaderTimeout bounds a client that connects and never sends a request.
	readHeaderTimeout = 10 * time.Second
)

// Products lists the products every region serves.
func Products() []string { return []string{"logs", "metrics", "events", "web"} }

// Platform is a running simulated platform. Its methods are safe for concurrent use.
type Platform struct {
	logger      *slog.Logger
	apiKey      []byte
	ingestDelay time.Duration
	regions     []string
	byRegion    map[string]*regionServer
	control     *http.Server
	controlURL  string

	faultMu sync.Mutex // serialises writers; readers load faults without it
	faults  atomic.Pointer[faultTable]

	// ctx is every request's base context: cancelling it on Close ends hung and slow handlers.
	ctx    context.Context
	cancel context.CancelFunc

	// gate admits handlers until Close, so Close can wait for every one to return.
	gateMu   sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	active   atomic.Int64 // handlers running now; lets tests see a hung handler end

	serving   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start listens on every region's address and the control address and serves
// until Close.
func Start(opts Options) (*Platform, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	p := newPlatform(opts)
	listeners, err := listenAll(opts)
	if err != nil {
		return nil, err
	}
	for _, name := range p.regions {
		rs := newRegionServer(p, name, listeners[name])
		p.byRegion[name] = rs
		p.serve(rs.srv, dropListener{Listener: listeners[name], drop: rs.dropsAtAccept})
		p.logger.Info("probetest: region serving", "region", name, "url", rs.url)
	}
	controlLn := listeners[""]
	p.controlURL = "http://" + controlLn.Addr().String()
	p.control = p.newServer(p.controlHandler())
	p.serve(p.control, controlLn)
	p.logger.Info("probetest: control API serving", "url", p.controlURL)
	return p, nil
}

func validate(opts Options) error {
	if len(opts.Regions) == 0 {
		return errors.New("probetest: expected at least one region in Options.Regions, got none")
	}
	seen := map[string]bool{}
	for _, r := range opts.Regions {
		if r == "" || strings.ContainsAny(r, " /\t\n") {
			return fmt.Errorf("probetest: expected region names without spaces or slashes, got %q", r)
		}
		if seen[r] {
			return fmt.Errorf("probetest: expected unique region names, got %q twice", r)
		}
		seen[r] = true
	}
	for r := range opts.Addrs {
		if !seen[r] {
			return fmt.Errorf("probetest: Options.Addrs names region %q, expected one of %v", r, opts.Regions)
		}
	}
	return nil
}

func newPlatform(opts Options) *Platform {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ingest := opts.IngestDelay
	switch {
	case ingest == 0:
		ingest = defaultIngestDelay
	case ingest < 0:
		ingest = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Platform{
		logger:      logger,
		apiKey:      []byte(opts.APIKey),
		ingestDelay: ingest,
		regions:     append([]string(nil), opts.Regions...),
		byRegion:    make(map[string]*regionServer, len(opts.Regions)),
		ctx:         ctx,
		cancel:      cancel,
	}
	p.faults.Store(&faultTable{})
	return p
}

// listenAll opens every listener first, so a busy port fails Start before anything
// serves. The control listener is under key "".
func listenAll(opts Options) (map[string]net.Listener, error) {
	addrs := map[string]string{"": opts.ControlAddr}
	for _, r := range opts.Regions {
		addrs[r] = opts.Addrs[r]
	}
	listeners := make(map[string]net.Listener, len(addrs))
	for name, addr := range addrs {
		if addr == "" {
			addr = defaultAddr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, open := range listeners {
				open.Close()
			}
			what := "region " + name
			if name == "" {
				what = "control API"
			}
			return nil, fmt.Errorf("probetest: listen for %s on %s: %w", what, addr, err)
		}
		listeners[name] = ln
	}
	return listeners, nil
}

func (p *Platform) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return p.ctx },
		ErrorLog:          slog.NewLogLogger(p.logger.Handler(), slog.LevelWarn),
	}
}

func (p *Platform) serve(srv *http.Server, ln net.Listener) {
	p.serving.Add(1)
	go func() {
		defer p.serving.Done()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			p.logger.Error("probetest: server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// URL is the base URL of region, "http://127.0.0.1:PORT", or "" for an unknown region.
func (p *Platform) URL(region string) string {
	if rs, ok := p.byRegion[region]; ok {
		return rs.url
	}
	return ""
}

// ControlURL is the base URL of the control API.
func (p *Platform) ControlURL() string { return p.controlURL }

// Regions lists the regions in the order given to Start.
func (p *Platform) Regions() []string { return append([]string(nil), p.regions...) }

// Requests counts the HTTP requests a region's server read for product, whatever
// it answered. Products are logs, metrics, events, web, and "healthz" for /healthz;
// "" for region or product sums over all. Connections a region-wide "down" closes
// before reading a request are not counted.
func (p *Platform) Requests(region, product string) int {
	total := int64(0)
	for name, rs := range p.byRegion {
		if region != "" && name != region {
			continue
		}
		for prod, n := range rs.counters {
			if product == "" || prod == product {
				total += n.Load()
			}
		}
	}
	return int(total)
}

// Close stops every server, ends hung and slow handlers, and returns once all
// handlers and serving goroutines have. It is safe to call more than once.
func (p *Platform) Close() error {
	p.closeOnce.Do(func() {
		p.gateMu.Lock()
		p.closed = true
		p.gateMu.Unlock()
		p.cancel()
		var errs []error
		for _, rs := range p.byRegion {
			errs = append(errs, rs.srv.Close())
		}
		errs = append(errs, p.control.Close())
		p.serving.Wait()
		p.inflight.Wait()
		p.closeErr = errors.Join(errs...)
		p.logger.Info("probetest: platform closed")
	})
	return p.closeErr
}

// enter admits a handler unless the platform is closing; every true must be paired
// with leave. Taking the mutex orders each Add before Close's Wait.
func (p *Platform) enter() bool {
	p.gateMu.Lock()
	defer p.gateMu.Unlock()
	if p.closed {
		return false
	}
	p.inflight.Add(1)
	p.active.Add(1)
	return true
}

func (p *Platform) leave() {
	p.active.Add(-1)
	p.inflight.Done()
}

func (p *Platform) authorized(r *http.Request) bool {
	if len(p.apiKey) == 0 {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), p.apiKey) == 1
}

// dropListener closes, right after accepting, connections that a region-wide
// "down" would drop anyway: the client sees a dead load balancer, not an HTTP answer.
type dropListener struct {
	net.Listener
	drop func() bool
}

// Accept loops only while it drops; each turn needs a new inbound connection, and
// closing the listener ends it.
func (l dropListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.drop() {
			return c, err
		}
		c.Close()
	}
}
