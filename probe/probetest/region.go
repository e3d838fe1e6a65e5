package probetest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/picket-dev/picket/internal/loopback"
)

// maxBodyBytes bounds every request body the platform reads.
const maxBodyBytes = 1 << 20

// regionServer is one isolated region: its own listener, server, data and counters.
type regionServer struct {
	p        *Platform
	name     string
	url      string
	srv      *http.Server
	mux      *http.ServeMux
	logs     *recordStore
	events   *recordStore
	counters map[string]*atomic.Int64 // by product and "healthz"; fixed after construction
	pages    webPages
	web      *webApp
	tls      *tlsFrontDoor // nil unless Options.TLSAddrs names the region
	line     *lineIntake   // nil unless Options.TCPAddrs names the region
	grpc     *grpcHealth   // nil unless Options.GRPCAddrs names the region
}

func newRegionServer(p *Platform, name string, ln net.Listener) *regionServer {
	rs := &regionServer{
		p:        p,
		name:     name,
		url:      "http://" + ln.Addr().String(),
		logs:     newRecordStore(),
		events:   newRecordStore(),
		counters: map[string]*atomic.Int64{"healthz": new(atomic.Int64)},
		pages:    newWebPages(name),
		web:      newWebApp(name, p.webPassword),
	}
	for _, product := range Products() {
		rs.counters[product] = new(atomic.Int64)
	}
	rs.mux = rs.routes()
	rs.srv = p.newServer(rs)
	return rs
}

// close stops the region's listeners and its gRPC server; open line intake
// connections end with the platform's context.
func (rs *regionServer) close() []error {
	errs := []error{rs.srv.Close()}
	if rs.tls != nil {
		errs = append(errs, rs.tls.srv.Close())
	}
	if rs.line != nil {
		if err := rs.line.ln.Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if rs.grpc != nil {
		rs.grpc.srv.Stop() // not GracefulStop: hung calls must not hold Close up
	}
	return errs
}

func (rs *regionServer) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/logs", rs.handleWrite("logs", rs.logs, logAccepted))
	mux.HandleFunc("GET /v1/logs/{id}", rs.handleRead("logs", rs.logs))
	mux.HandleFunc("POST /v1/metrics", rs.handleMetricsWrite)
	mux.HandleFunc("GET /v1/query", rs.handleMetricsQuery)
	mux.HandleFunc("POST /v1/events", rs.handleWrite("events", rs.events, eventAccepted))
	mux.HandleFunc("GET /v1/events/{id}", rs.handleRead("events", rs.events))
	mux.HandleFunc("GET /{$}", rs.handleWebPage(rs.pages.index))
	mux.HandleFunc("GET /login", rs.handleWebPage(rs.pages.login))
	mux.HandleFunc("GET /healthz", rs.handleHealthz)
	rs.webRoutes(mux)
	return mux
}

// route is what the path alone says about a request.
type route struct {
	product  string // whose faults apply; "" for /healthz and unknown paths (region-wide faults only)
	counter  string // which Requests counter; "" counts nothing
	needsKey bool   // under /v1, so Options.APIKey applies
}

func classify(path string) route {
	switch {
	case path == "/healthz":
		return route{counter: "healthz"}
	case path == "/" || path == "/login", under(path, "/app"):
		return route{product: "web", counter: "web"}
	case under(path, "/v1/logs"):
		return route{product: "logs", counter: "logs", needsKey: true}
	case under(path, "/v1/metrics"), under(path, "/v1/query"):
		return route{product: "metrics", counter: "metrics", needsKey: true}
	case under(path, "/v1/events"):
		return route{product: "events", counter: "events", needsKey: true}
	case under(path, "/v1"):
		return route{needsKey: true}
	}
	return route{}
}

func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// ServeHTTP is the region's front door, in the order a real stack meets a request:
// the infrastructure (faults), then authentication, then the product itself.
func (rs *regionServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !rs.p.enter() {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"shutting down"})
		return
	}
	defer rs.p.leave()
	rt := classify(r.URL.Path)
	if n := rs.counters[rt.counter]; n != nil {
		n.Add(1)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	f, wide := rs.p.faultTable().resolve(rs.name, rt.product)
	if !rs.injectFault(w, r, f, wide) {
		return
	}
	if rt.needsKey && !rs.p.authorized(r) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, errorBody{"unauthorized"})
		return
	}
	rs.mux.ServeHTTP(w, r)
}

// injectFault acts out the infrastructure part of f and reports whether the
// product should still answer (no fault, slow, and the faults the product itself
// shows: wrong_body, stale).
func (rs *regionServer) injectFault(w http.ResponseWriter, r *http.Request, f Fault, wide bool) bool {
	if f.Kind == FaultNone || f.Kind.browserOnly() {
		return true
	}
	if f.Kind == FaultHang {
		hang(r)
		dropConnection(w) // returning alone would send an empty 200
		return false
	}
	delay := f.Delay
	if f.Kind == FaultSlow && delay == 0 {
		delay = defaultSlowDelay
	}
	if !pause(r.Context(), delay) {
		dropConnection(w)
		return false
	}
	switch f.Kind {
	case FaultDown:
		if wide {
			dropConnection(w)
		} else {
			writeJSON(w, http.StatusServiceUnavailable, errorBody{"unavailable"})
		}
		return false
	case FaultError:
		writeJSON(w, http.StatusInternalServerError, errorBody{"internal error (injected fault)"})
		return false
	}
	return true
}

// hang waits until the client gives up or the platform closes. It reads the body
// first because net/http notices a client hang-up (and cancels the request context)
// only once the body has been consumed.
func hang(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// pause waits d and reports whether it did; false means the request ended first
// (client gone or platform closing).
func pause(ctx context.Context, d time.Duration) bool { return loopback.Pause(ctx, d, nil) }

// dropConnection closes the connection without a byte of answer, as a dead load
// balancer would on a connection that was already open.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// No hijacking (not HTTP/1): abort, which also closes without answering.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// dropsAtAccept is the dropListener's test, run once per accepted connection.
func (rs *regionServer) dropsAtAccept() bool {
	return rs.p.faultTable().dropsAtAccept(rs.name)
}
