// Package apitest is the loopback base of the channel stand-ins that tests run
// (Opsgenie's Alert API, Teams Workflows, Slack's Web API, templated webhooks): a real
// HTTP server on 127.0.0.1 that records every request and answers it through the
// stand-in's own check, the part that knows the real API, unless a fault was queued
// first. It also holds what every channel's tests ask of an outcome: the class of an
// error under the outbox's retry contract, and that no secret leaked.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/internal/testkit"
)

// MaxBodyBytes bounds what the server reads of a request.
const MaxBodyBytes = 1 << 20

// Request is one request as the server saw it.
type Request struct {
	Method string
	Path   string // unescaped
	// RawPath is the path as sent (escaped): a router that splits it into segments,
	// as real APIs do, reads this one.
	RawPath string
	Query   string // raw
	Header  http.Header
	Body    []byte
}

// Decode reads the body as JSON into v, refusing fields v does not have (as the
// strictest real APIs do, it catches a misspelt field).
func (r Request) Decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Answer is what the server sends back.
type Answer struct {
	Status int
	Header map[string]string
	Body   string
}

// JSON is an answer with v as its JSON body.
func JSON(status int, v any) Answer {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // a test's own literal
	}
	return Answer{Status: status, Header: map[string]string{"Content-Type": "application/json"}, Body: string(data)}
}

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	check func(Request) Answer

	mu       sync.Mutex
	requests []Request
	faults   []Answer
}

// Start serves on loopback until the test ends; check answers each request that no
// queued fault answers.
func Start(t testing.TB, check func(Request) Answer) *Server {
	t.Helper()
	s := &Server{check: check}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Fail queues answers given, in order, to the next requests instead of check's.
func (s *Server) Fail(answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, answers...)
}

// Requests returns what was received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		http.Error(w, "request body too large or cut", http.StatusRequestEntityTooLarge)
		return
	}
	req := Request{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	var answer Answer
	fault := len(s.faults) > 0
	if fault {
		answer, s.faults = s.faults[0], s.faults[1:]
	}
	s.mu.Unlock()
	if !fault {
		answer = s.check(req)
	}
	for k, v := range answer.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(answer.Status)
	_, _ = io.WriteString(w, answer.Body)
}

// Client is an HTTP client like the notifiers' own (no redirects), whose idle
// connections close when the test ends (goleak).
func Client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: notify.NoRedirects}
}

// Outcome is an error's class under the outbox's retry contract.
type Outcome int

const (
	Delivered Outcome = iota // nil
	Retryable                // any error not marked Permanent
	Permanent                // notify.Permanent: dropped, the fallback told
)

func (o Outcome) String() string { return [...]string{"delivered", "retryable", "permanent"}[o] }

// OutcomeOf classifies err.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Delivered
	case notify.IsPermanent(err):
		return Permanent
	}
	return Retryable
}

// Logger is a debug logger into a buffer, for the leak checks.
func Logger() (*slog.Logger, *testkit.Buffer) {
	buf := &testkit.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// NoLeak fails t when any of texts contains secret.
func NoLeak(t testing.TB, secret string, texts map[string]string) {
	t.Helper()
	if secret == "" {
		t.Fatal("NoLeak: empty secret")
	}
	for what, text := range texts {
		if strings.Contains(text, secret) {
			t.Errorf("%s leaks the secret: %s", what, text)
		}
	}
}

// TimeoutText is the error text of send against a stand-in that answers only after the
// 50 ms deadline of send's ctx has passed: the timeout leg of a leak check. A send that
// succeeds anyway fails t.
func TimeoutText(t testing.TB, send func(ctx context.Context, baseURL string) error) string {
	t.Helper()
	slow := Start(t, func(Request) Answer {
		time.Sleep(300 * time.Millisecond)
		return Answer{Status: http.StatusOK}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := send(ctx, slow.URL)
	if err == nil {
		t.Error("TimeoutText: send succeeded: the timeout leg checks nothing")
	}
	return ErrText(err)
}

// ClosedAddr is a loopback host:port where nothing listens (it was listened on, then
// closed): a connection there is refused.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// MustJSON is v as JSON; t fails at once if v cannot be encoded.
func MustJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// ErrText is err's text, "" for nil.
func ErrText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// HasRetryAfter reports whether err asks for a wait of its own (a Retry-After).
func HasRetryAfter(err error) bool {
	var ra *notify.RetryAfterError
	return errors.As(err, &ra)
}
