package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

// maxHeaderBytes bounds what a hostile server can make us hold in response headers.
const maxHeaderBytes = 256 << 10

// userAgent tells the platform's operators who is knocking.
const userAgent = "picket/1 (+synthetic probe)"

// HTTPProber runs HTTP steps like a new customer would: every run opens a fresh
// connection, so DNS, connect and TLS are measured (and can fail) every time. A step
// with keep_alive reuses pooled connections instead, as an SDK would: far cheaper at
// thousands of runs a second, but a listener that stops taking new connections is
// noticed only once the pooled ones close.
type HTTPProber struct {
	mu         sync.Mutex
	transports map[transportKey]*http.Transport // one per TLS config of a step, server name and keep-alive
	bufs       sync.Pool
	closed     atomic.Bool // a run that ends after Close closes what it put back in a pool
}

// NewHTTPProber returns a prober with no connections open.
func NewHTTPProber() *HTTPProber {
	return &HTTPProber{
		transports: map[transportKey]*http.Transport{},
		bufs:       sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

// Close closes idle pooled connections (keep_alive steps), now and as the runs still in
// flight end, so that a reload's old prober leaves no connection or goroutine behind.
func (p *HTTPProber) Close() {
	p.closed.Store(true)
	p.closeIdle()
}

func (p *HTTPProber) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.transports {
		t.CloseIdleConnections()
	}
}

// transportKey: a step's TLS config, and the server name when it is a template (one
// per region, typically), so that transports stay few and reusable; steps that keep
// connections alive share a pool apart from those that do not.
type transportKey struct {
	tls       *tls.Config
	sni       string
	keepAlive bool
}

// Pooled connections (keep_alive): enough idle ones per host for the runs in flight at
// once at thousands of runs a second; more are closed after their request. One left
// idle longer than pooledIdle is closed, so that a pool follows DNS and load balancer
// changes.
const (
	pooledPerHost = 64
	pooledIdle    = 30 * time.Second
)

func (p *HTTPProber) transport(base *tls.Config, sni string, keepAlive bool) *http.Transport {
	key := transportKey{base, sni, keepAlive}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.transports[key]; ok {
		return t
	}
	tc := base
	if sni != "" {
		tc = tlsConfigFor(base, "", sni)
	}
	t := &http.Transport{
		Proxy: nil, // out of band: never through a proxy the host may share with the platform
		// TCP keep-alive probes would start after 15 s, past any step's deadline; turning
		// them off saves four setsockopt calls per connection.
		DialContext:            dialRefusingInvalid((&net.Dialer{KeepAlive: -1}).DialContext),
		DisableKeepAlives:      !keepAlive,
		MaxIdleConnsPerHost:    pooledPerHost,
		IdleConnTimeout:        pooledIdle,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: maxHeaderBytes,
		// A fresh connection carries one request: 1 KiB buffers each way (4 KiB by default)
		// hold a probe's request and the start of its answer, and a third less garbage a
		// run (19 → 13 KB) is less GC at thousands of runs a second. Longer header lines
		// and bodies are read in more pieces, not cut.
		WriteBufferSize: 1 << 10,
		ReadBufferSize:  1 << 10,
		TLSClientConfig: tc,
	}
	p.transports[key] = t
	return t
}

// Exchange is what one attempt of a step saw. Release returns its buffer.
type Exchange struct {
	Obs    expect.Observation
	Phases Phases
	Err    error // the exchange did not complete (refused, timeout, bad TLS, body too large)
	Cert   time.Time
	Info   map[string]string // facts for the step's result (non-HTTP kinds)
	Wire   Wire              // protocol facts for the blackbox-compatible series
	buf    *bytes.Buffer
	pool   *sync.Pool
	// A browser step's tab stays open until Release: failed takes a screenshot of the
	// failure the journey judged, release closes the tab.
	failed  func() (string, error)
	release func()
}

// Release gives the body buffer back (and closes a browser step's tab); the Exchange
// must not be used afterwards.
func (e *Exchange) Release() {
	if e.buf != nil && e.pool != nil && e.buf.Cap() <= 4<<20 {
		e.buf.Reset()
		e.pool.Put(e.buf)
	}
	e.buf = nil
	if e.release != nil {
		e.release()
		e.release, e.failed = nil, nil
	}
}

// Probe performs one HTTP request of step with data.
func (p *HTTPProber) Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange {
	h := step.HTTP
	ex := &Exchange{}
	tr := &tracer{}
	// The trace goes into the context the request is built with, not through
	// req.WithContext, which would copy the request.
	req, err := p.newRequest(httptrace.WithClientTrace(ctx, tr.trace()), h, data)
	if err != nil {
		ex.Err = err
		return ex
	}
	sni, err := renderSNI(h.ServerName, data)
	if err != nil {
		ex.Err = err
		return ex
	}
	client := &http.Client{Transport: p.transport(h.TLS, sni, h.KeepAlive), CheckRedirect: redirectPolicy(h, &ex.Wire.Redirects)}
	start := time.Now()
	tr.start = start
	if h.KeepAlive {
		// Runs after the body's Close below, which puts the connection back in the pool.
		defer func() {
			if p.closed.Load() {
				p.closeIdle()
			}
		}()
	}
	resp, err := client.Do(req)
	if err != nil {
		ex.Err = describeTransportError(ctx, err)
		ex.Phases = tr.phases(time.Now())
		ex.Obs.Latency = time.Since(start)
		return ex
	}
	defer resp.Body.Close()
	ex.buf = p.bufs.Get().(*bytes.Buffer)
	ex.pool = &p.bufs
	n, err := io.Copy(ex.buf, io.LimitReader(resp.Body, h.MaxBodyBytes+1))
	end := time.Now()
	ex.Phases = tr.phases(end)
	ex.Obs = expect.Observation{
		Status:  resp.StatusCode,
		Headers: resp.Header,
		Body:    ex.buf.Bytes(),
		Latency: end.Sub(start),
		Now:     end,
	}
	ex.Wire.HTTPVersion = float64(resp.ProtoMajor) + float64(resp.ProtoMinor)/10
	if resp.TLS != nil {
		ex.Obs.Certs = resp.TLS.PeerCertificates
		ex.Cert = earliestExpiry(resp.TLS.PeerCertificates)
		ex.Wire.HTTPSSL = true
		ex.Wire.TLSVersion = tlsVersionName(resp.TLS.Version)
	}
	switch {
	case n > h.MaxBodyBytes:
		ex.Err = fmt.Errorf("body larger than %d bytes (max_body_bytes); stopped reading", h.MaxBodyBytes)
	case err != nil:
		ex.Err = fmt.Errorf("reading body after %d bytes: %w", n, describeTransportError(ctx, err))
	}
	return ex
}

func (p *HTTPProber) newRequest(ctx context.Context, h *config.HTTPRequest, data tmpl.Data) (*http.Request, error) {
	url, err := h.URL.Render(data)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	var body io.Reader
	if h.Body != nil && h.Body.Raw != "" {
		b, err := h.Body.Render(data)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		body = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, h.Method, url, body)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	for _, hd := range h.Headers {
		v, err := hd.Value.Render(data)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", hd.Name, err)
		}
		if hd.Name == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(hd.Name, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// errRedirect marks our own refusals to follow, so the message stays ours.
var errRedirect = errors.New("redirect")

// redirectPolicy follows h's redirect rules and counts the redirects followed in *followed.
func redirectPolicy(h *config.HTTPRequest, followed *int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !h.FollowRedirects {
			return http.ErrUseLastResponse
		}
		// A loop is the same request again; POST /form -> 303 -> GET /form is not one.
		for _, prev := range via {
			if prev.Method == req.Method && prev.URL.String() == req.URL.String() {
				return fmt.Errorf("%w loop: %s was already visited after %d redirects", errRedirect, req.URL.Redacted(), len(via))
			}
		}
		if len(via) > h.MaxRedirects {
			return fmt.Errorf("%w: more than %d redirects (max_redirects)", errRedirect, h.MaxRedirects)
		}
		if req.URL.Hostname() != via[0].URL.Hostname() {
			dropSecretHeaders(req, h)
		}
		*followed = len(via)
		return nil
	}
}

// dropSecretHeaders removes, on a redirect to another host, every header whose value
// comes from a secret: Go strips only Authorization and Cookie, and an X-Api-Key must
// not reach whatever host a redirect names.
func dropSecretHeaders(req *http.Request, h *config.HTTPRequest) {
	for _, hd := range h.Headers {
		if hd.Value != nil && strings.Contains(hd.Value.Raw, ".secret") {
			req.Header.Del(hd.Name)
		}
	}
}

// dialRefusingInvalid refuses names under .invalid before any lookup (as probeLookup
// does for the other kinds): RFC 6761 reserves them never to resolve, and the system
// resolver would still ask the network's name server.
func dialRefusingInvalid(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && reservedInvalid(host) {
			return nil, fmt.Errorf("resolve %q: no such host (.invalid is reserved never to resolve, RFC 6761; no query sent)", host)
		}
		return dial(ctx, network, addr)
	}
}

// describeTransportError turns net/http's nested errors into one line that says what
// happened, without the request URL (which the step name already identifies).
func describeTransportError(ctx context.Context, err error) error {
	if errors.Is(err, errRedirect) {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			return ue.Unwrap()
		}
		return err
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timeout: no complete answer before the deadline (%w)", context.DeadlineExceeded)
		}
		return fmt.Errorf("cancelled: %w", ctx.Err())
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: %w", ne.Op, ne.Err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("connection closed by the server before a complete answer: %w", err)
	}
	return err
}

func earliestExpiry(chain []*x509.Certificate) time.Time {
	var min time.Time
	for _, c := range chain {
		if min.IsZero() || c.NotAfter.Before(min) {
			min = c.NotAfter
		}
	}
	return min
}

// tracer records phase boundaries. Callbacks can come from several goroutines (DNS,
// dual-stack dials), hence the mutex.
type tracer struct {
	mu                            sync.Mutex
	start                         time.Time
	dnsStart, connStart, tlsStart time.Time
	wrote, firstByte              time.Time
	dns, connect, tls             time.Duration
}

func (t *tracer) trace() *httptrace.ClientTrace {
	now := time.Now
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { t.mu.Lock(); t.dnsStart = now(); t.mu.Unlock() },
		DNSDone: func(httptrace.DNSDoneInfo) {
			t.mu.Lock()
			t.dns += now().Sub(t.dnsStart)
			t.mu.Unlock()
		},
		ConnectStart: func(_, _ string) { t.mu.Lock(); t.connStart = now(); t.mu.Unlock() },
		ConnectDone: func(_, _ string, err error) {
			t.mu.Lock()
			t.connect += now().Sub(t.connStart)
			t.mu.Unlock()
		},
		TLSHandshakeStart: func() { t.mu.Lock(); t.tlsStart = now(); t.mu.Unlock() },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			t.mu.Lock()
			t.tls += now().Sub(t.tlsStart)
			t.mu.Unlock()
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { t.mu.Lock(); t.wrote = now(); t.mu.Unlock() },
		GotFirstResponseByte: func() {
			t.mu.Lock()
			t.firstByte = now()
			t.mu.Unlock()
		},
	}
}

func (t *tracer) phases(end time.Time) Phases {
	t.mu.Lock()
	defer t.mu.Unlock()
	ph := Phases{DNS: t.dns, Connect: t.connect, TLS: t.tls}
	if !t.firstByte.IsZero() {
		ph.TTFB = t.firstByte.Sub(t.start)
		ph.Transfer = end.Sub(t.firstByte)
		if !t.wrote.IsZero() && t.firstByte.After(t.wrote) {
			ph.Processing = t.firstByte.Sub(t.wrote)
		}
	}
	return ph
}
