package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths served by a HostileHTTP server.
const (
	PathDrip      = "/drip"         // 200, then one byte every DripEvery, forever
	PathEndless   = "/endless"      // 200 with Content-Length 10 GB, generated as it is sent
	PathRedirect  = "/redirect/"    // /redirect/N answers 302 to /redirect/N+1, up to RedirectChain
	PathHeaders   = "/headers"      // 200 with HeaderBytes of response headers
	PathOK        = "/ok"           // a healthy answer, for comparison
	RedirectChain = 100             // redirects before the chain ends in a 200
	HeaderBytes   = 1 << 20         // what /headers sends in headers
	EndlessLength = int64(10) << 30 // what /endless claims, and would send if read
	DripEvery     = 50 * time.Millisecond
)

// headerLineBytes is the size of one header value of /headers.
const headerLineBytes = 1 << 10

// HostileHTTP serves the hostile endpoints on 127.0.0.1. Close ends every handler.
type HostileHTTP struct {
	ln      net.Listener
	srv     *http.Server
	closing chan struct{}
	once    sync.Once
	served  chan struct{}
	chunk   []byte // what /endless sends again and again; 10 GB is never allocated
	pad     string // one header value of /headers

	endlessBytes atomic.Int64 // bytes /endless managed to write, over all requests
	endlessRuns  atomic.Int64
}

// StartHostileHTTP listens on 127.0.0.1:0 and serves until Close.
func StartHostileHTTP() (*HostileHTTP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hostile http listen: %w", err)
	}
	h := &HostileHTTP{
		ln: ln, closing: make(chan struct{}), served: make(chan struct{}),
		chunk: []byte(strings.Repeat("picket!\n", 4096)), // 32 KiB
		pad:   strings.Repeat("x", headerLineBytes-32),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathDrip, h.drip)
	mux.HandleFunc("GET "+PathEndless, h.endless)
	mux.HandleFunc("GET "+PathRedirect+"{n}", h.redirect)
	mux.HandleFunc("GET "+PathHeaders, h.headers)
	mux.HandleFunc("GET "+PathOK, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(h.served)
		_ = h.srv.Serve(ln)
	}()
	return h, nil
}

// URL is the server's base URL.
func (h *HostileHTTP) URL() string { return "http://" + h.ln.Addr().String() }

// EndlessServed is how many /endless requests there were and how many bytes they
// wrote in all before the client stopped reading.
func (h *HostileHTTP) EndlessServed() (requests, bytes int64) {
	return h.endlessRuns.Load(), h.endlessBytes.Load()
}

// Close closes the listener and every connection, and waits for Serve to return.
// Handlers end on their own: each waits on its request's context or on closing.
func (h *HostileHTTP) Close() error {
	var err error
	h.once.Do(func() {
		close(h.closing)
		err = h.srv.Close()
		<-h.served
	})
	return err
}

// gone reports whether the request is over: client gone or server closing.
func (h *HostileHTTP) gone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-h.closing:
		return true
	default:
		return false
	}
}

func (h *HostileHTTP) drip(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	t := time.NewTicker(DripEvery)
	defer t.Stop()
	for {
		if _, err := w.Write([]byte{'.'}); err != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		}
	}
}

func (h *HostileHTTP) endless(w http.ResponseWriter, r *http.Request) {
	h.endlessRuns.Add(1)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(EndlessLength, 10))
	w.WriteHeader(http.StatusOK)
	for sent := int64(0); sent < EndlessLength && !h.gone(r.Context()); {
		n, err := w.Write(h.chunk[:min(int64(len(h.chunk)), EndlessLength-sent)])
		sent += int64(n)
		h.endlessBytes.Add(int64(n))
		if err != nil {
			return
		}
	}
}

func (h *HostileHTTP) redirect(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		http.Error(w, "want /redirect/N", http.StatusBadRequest)
		return
	}
	if n >= RedirectChain {
		_, _ = io.WriteString(w, "end of the chain\n")
		return
	}
	http.Redirect(w, r, PathRedirect+strconv.Itoa(n+1), http.StatusFound)
}

func (h *HostileHTTP) headers(w http.ResponseWriter, _ *http.Request) {
	hd := w.Header()
	for i := 0; i < HeaderBytes/headerLineBytes; i++ {
		hd.Set(fmt.Sprintf("X-Pad-%04d", i), h.pad) // the value string is shared, not copied
	}
	_, _ = io.WriteString(w, "ok\n")
}

// TCPSink accepts TCP connections, reads and discards what they send, and never writes
// a byte: a TLS server whose handshake stalls after the ClientHello, or a service whose
// banner never comes. Close closes every connection and waits for every goroutine.
type TCPSink struct {
	ln    net.Listener
	wg    sync.WaitGroup
	once  sync.Once
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	shut  bool

	accepted atomic.Int64
}

// StartTCPSink listens on 127.0.0.1:0.
func StartTCPSink() (*TCPSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcp sink listen: %w", err)
	}
	s := &TCPSink{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is the sink's address.
func (s *TCPSink) Addr() string { return s.ln.Addr().String() }

// Accepted is how many connections the sink took.
func (s *TCPSink) Accepted() int64 { return s.accepted.Load() }

// Close stops accepting, closes every connection and waits.
func (s *TCPSink) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		s.mu.Lock()
		s.shut = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

func (s *TCPSink) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.shut {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.swallow(c)
	}
}

// swallow reads until the client (or Close) closes the connection. Each connection
// is one goroutine, and it lives only as long as the probe that opened it.
func (s *TCPSink) swallow(c net.Conn) {
	defer s.wg.Done()
	_, _ = io.Copy(io.Discard, c)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// UDPSink reads datagrams (DNS questions) and drops them: a name server that never
// answers. Close ends its one goroutine.
type UDPSink struct {
	pc   net.PacketConn
	done chan struct{}
	once sync.Once

	received atomic.Int64
}

// StartUDPSink listens on 127.0.0.1:0 (UDP).
func StartUDPSink() (*UDPSink, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("udp sink listen: %w", err)
	}
	s := &UDPSink{pc: pc, done: make(chan struct{})}
	go s.readLoop()
	return s, nil
}

// Addr is the sink's address.
func (s *UDPSink) Addr() string { return s.pc.LocalAddr().String() }

// Received is how many datagrams arrived (and were dropped).
func (s *UDPSink) Received() int64 { return s.received.Load() }

// Close closes the socket and waits for the reader.
func (s *UDPSink) Close() error {
	var err error
	s.once.Do(func() {
		err = s.pc.Close()
		<-s.done
	})
	return err
}

func (s *UDPSink) readLoop() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.pc.ReadFrom(buf); err != nil {
			return // closed
		}
		s.received.Add(1)
	}
}
