package loopback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configure a local stand-in.
type Options struct {
	Addr   string       // listen address, loopback only; "" means 127.0.0.1:0
	Logger *slog.Logger // nil: discard
}

// shutdownGrace is how long Close waits for requests in flight.
const shutdownGrace = 5 * time.Second

// Server is a local stand-in's HTTP server on loopback: it listens from NewServer and
// serves from Start until Close, which also closes Closing, so that the stand-in's
// delays and waits end.
type Server struct {
	who      string
	Log      *slog.Logger
	ln       net.Listener
	srv      *http.Server
	served   chan struct{} // closed when Serve has returned
	closing  chan struct{}
	closeErr error
	once     sync.Once
}

// NewServer listens on o.Addr (see Listen); who names the stand-in in errors and logs.
func NewServer(who string, o Options) (*Server, error) {
	ln, err := Listen(who, o.Addr)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{who: who, Log: log, ln: ln, served: make(chan struct{}), closing: make(chan struct{})}, nil
}

// Start serves h until Close.
func (s *Server) Start(h http.Handler) {
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug)}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error(s.who+": serve failed", "err", err)
		}
	}()
}

// Addr is the host:port listened on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Closing closes when Close is called.
func (s *Server) Closing() <-chan struct{} { return s.closing }

// Close closes Closing, stops the server (waiting for requests in flight at most
// shutdownGrace) and returns once it has stopped serving. It is safe to call twice.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closing)
		if s.srv == nil { // never started
			s.closeErr = s.ln.Close()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.closeErr = fmt.Errorf("%s: shutdown within %s: %w", s.who, shutdownGrace, err)
			_ = s.srv.Close()
		}
		<-s.served
	})
	return s.closeErr
}

// Pause waits d and reports whether it did; false means ctx ended or closing closed
// first (nil: only ctx counts).
func Pause(ctx context.Context, d time.Duration, closing <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-closing:
		return false
	}
}
