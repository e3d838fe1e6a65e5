// Package probetest runs a simulated multi-region SaaS platform on loopback: one
// HTTP server per region serving the public APIs of four products (logs, metrics,
// events, web), plus a control API to inject faults per region and product. Picket's
// tests, benchmarks and `picket demo` probe it as they would a real platform.
//
// Optionally, for the probes that speak more than HTTP: an authoritative DNS server
// for the zone sim.test. (dns.go), an HTTPS listener per region with a certificate
// signed by a demo CA (tls.go, ca.go), a plain-text line intake per region on
// raw TCP (line.go), and a gRPC health server per region (grpc.go). Region-wide
// faults reach all of them.
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
	// WebPassword, if set, is the only password the web app's login form (/app/login)
	// accepts; empty: any non-empty password.
	WebPassword string
	// IngestDelay is how long a written log or event takes to become readable.
	// Zero means 200ms; a negative value makes writes readable at once.
	IngestDelay time.Duration
	Logger      *slog.Logger

	// DNSAddr, if set, serves the zone sim.test. authoritatively on UDP and TCP at
	// this address; "127.0.0.1:0" picks a port free for both. See dns.go.
	DNSAddr string
	// TLSAddrs adds, for each region it names, an HTTPS listener serving the region's
	// API with a certificate for intake.<region>.sim.test, api.<region>.sim.test,
	// 127.0.0.1 and ::1. An address "" means 127.0.0.1:0.
	TLSAddrs map[string]string
	// CACertFile and CAKeyFile (PEM, both or neither) name the CA that signs the
	// TLS certificates, such as examples/sim/ca.pem and ca-key.pem. Neither: TLSAddrs
	// get a CA generated at Start, written to a temporary file that Close removes.
	CACertFile string
	CAKeyFile  string
	// TCPAddrs adds, for each region it names, a line intake on raw TCP (see line.go).
	// An address "" means 127.0.0.1:0.
	TCPAddrs map[string]string
	// GRPCAddrs adds, for each region it names, a plaintext gRPC server with the
	// standard health service, answering as the faults say (see grpc.go). An
	// address "" means 127.0.0.1:0.
	GRPCAddrs map[string]string
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
	webPassword string
	ingestDelay time.Duration
	regions     []string
	byRegion    map[string]*regionServer
	control     *http.Server
	controlURL  string
	dns         *dnsServer // nil without Options.DNSAddr
	ca          *authority // nil without TLS or a CA file

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

// Start listens on every address in opts and serves until Close.
func Start(opts Options) (*Platform, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	ca, err := setUpAuthority(opts)
	if err != nil {
		return nil, err
	}
	ls, err := listenAll(opts)
	if err != nil {
		return nil, errors.Join(err, ca.remove())
	}
	p := newPlatform(opts)
	p.ca = ca
	if err := p.assemble(ls); err != nil {
		ls.close()
		p.stopGRPC() // built but never served: Stop only unregisters them
		p.cancel()
		return nil, errors.Join(err, ca.remove())
	}
	if err := p.serveAll(ls); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

// assemble builds every server on the open listeners without serving yet; only
// certificates and DNS records can fail here.
func (p *Platform) assemble(ls *listenSet) error {
	now := time.Now()
	linePorts := map[string]string{}
	for _, name := range p.regions {
		rs := newRegionServer(p, name, ls.http[name])
		p.byRegion[name] = rs
		if ln := ls.tls[name]; ln != nil {
			door, tlsLn, err := newTLSFrontDoor(rs, ln, p.ca, now)
			if err != nil {
				return err
			}
			rs.tls, ls.tls[name] = door, tlsLn
		}
		if ln := ls.line[name]; ln != nil {
			rs.line = &lineIntake{rs: rs, ln: ln, addr: ln.Addr().String()}
			_, linePorts[name], _ = net.SplitHostPort(rs.line.addr)
		}
		if ln := ls.grpc[name]; ln != nil {
			rs.grpc = newGRPCHealth(rs, ln)
		}
	}
	p.controlURL = "http://" + ls.http[""].Addr().String()
	p.control = p.newServer(p.controlHandler())
	if ls.dnsTCP != nil {
		z, err := newDNSZone(p.regions, linePorts)
		if err != nil {
			return err
		}
		p.dns = &dnsServer{p: p, zone: z, addr: ls.dnsTCP.Addr().String()}
	}
	return nil
}

func (p *Platform) serveAll(ls *listenSet) error {
	for _, name := range p.regions {
		rs := p.byRegion[name]
		p.serve(rs.srv, dropListener{Listener: ls.http[name], drop: rs.dropsAtAccept})
		p.logger.Info("probetest: region serving", "region", name, "url", rs.url)
		if rs.tls != nil {
			p.serve(rs.tls.srv, ls.tls[name])
			p.logger.Info("probetest: region serving TLS", "region", name, "url", rs.tls.url)
		}
		if rs.line != nil {
			p.serveLines(rs.line)
			p.logger.Info("probetest: region line intake serving", "region", name, "addr", rs.line.addr)
		}
		if rs.grpc != nil {
			p.serveGRPC(rs.grpc, ls.grpc[name])
			p.logger.Info("probetest: region gRPC health serving", "region", name, "addr", rs.grpc.addr)
		}
	}
	p.serve(p.control, ls.http[""])
	p.logger.Info("probetest: control API serving", "url", p.controlURL)
	if p.dns != nil {
		if err := p.dns.start(ls.dnsTCP, ls.dnsUDP); err != nil {
			return err // Close shuts down whichever half did start
		}
		p.logger.Info("probetest: DNS serving", "zone", p.dns.zone.origin, "addr", p.dns.addr)
	}
	return nil
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
	for field, addrs := range map[string]map[string]string{"Addrs": opts.Addrs, "TLSAddrs": opts.TLSAddrs, "TCPAddrs": opts.TCPAddrs, "GRPCAddrs": opts.GRPCAddrs} {
		for r := range addrs {
			if !seen[r] {
				return fmt.Errorf("probetest: Options.%s names region %q, expected one of %v", field, r, opts.Regions)
			}
		}
	}
	if (opts.CACertFile == "") != (opts.CAKeyFile == "") {
		return fmt.Errorf("probetest: expected both Options.CACertFile and CAKeyFile or neither, got %q and %q", opts.CACertFile, opts.CAKeyFile)
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
		webPassword: opts.WebPassword,
		ingestDelay: ingest,
		regions:     append([]string(nil), opts.Regions...),
		byRegion:    make(map[string]*regionServer, len(opts.Regions)),
		ctx:         ctx,
		cancel:      cancel,
	}
	p.faults.Store(&faultTable{})
	return p
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

// TLSURL is the base URL of region's HTTPS listener, "https://127.0.0.1:PORT", or
// "" for a region without one (see Options.TLSAddrs).
func (p *Platform) TLSURL(region string) string {
	if rs, ok := p.byRegion[region]; ok && rs.tls != nil {
		return rs.tls.url
	}
	return ""
}

// CAFile is the path of the PEM certificate of the CA that signs the TLS
// certificates, for a client's trust roots; "" when there is none.
func (p *Platform) CAFile() string {
	if p.ca == nil {
		return ""
	}
	return p.ca.file
}

// TCPAddr is the address of region's line intake, "127.0.0.1:PORT", or "" for a
// region without one (see Options.TCPAddrs).
func (p *Platform) TCPAddr(region string) string {
	if rs, ok := p.byRegion[region]; ok && rs.line != nil {
		return rs.line.addr
	}
	return ""
}

// GRPCAddr is the address of region's gRPC health server, "127.0.0.1:PORT", or ""
// for a region without one (see Options.GRPCAddrs).
func (p *Platform) GRPCAddr(region string) string {
	if rs, ok := p.byRegion[region]; ok && rs.grpc != nil {
		return rs.grpc.addr
	}
	return ""
}

// DNSAddr is the address the DNS server listens on for UDP and TCP, or "" without
// Options.DNSAddr.
func (p *Platform) DNSAddr() string {
	if p.dns == nil {
		return ""
	}
	return p.dns.addr
}

// ControlURL is the base URL of the control API.
func (p *Platform) ControlURL() string { return p.controlURL }

// Regions lists the regions in the order given to Start.
func (p *Platform) Regions() []string { return append([]string(nil), p.regions...) }

// Requests counts the HTTP requests a region's servers (HTTP and TLS) read for
// product, whatever it answered. Products are logs, metrics, events, web, and "healthz" for /healthz;
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

// Close stops every server (HTTP, TLS, line intake, gRPC, DNS), ends hung and slow
// handlers and open connections, removes a generated CA file, and returns once
// all handlers and serving goroutines have. It is safe to call more than once.
func (p *Platform) Close() error {
	p.closeOnce.Do(func() {
		p.gateMu.Lock()
		p.closed = true
		p.gateMu.Unlock()
		p.cancel()
		var errs []error
		for _, rs := range p.byRegion {
			errs = append(errs, rs.close()...)
		}
		errs = append(errs, p.control.Close())
		if p.dns != nil {
			errs = append(errs, p.dns.shutdown())
		}
		p.serving.Wait()
		p.inflight.Wait()
		errs = append(errs, p.ca.remove())
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
