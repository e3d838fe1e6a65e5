// Package statussynctest is a local stand-in for a Statuspage-compatible API on
// loopback, for tests and the demo: it takes PATCH /v1/pages/{page}/components/{id}
// with Authorization: OAuth {key} and a JSON body {"component": {"status": S}} as the
// real API does, refuses anything else with the real API's kind of answer (401, 404,
// 415, 422), keeps each component's status, and can be told to fail the next requests.
package statussynctest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/picket-dev/picket/internal/loopback"
)

// Options configure a Server.
type Options struct {
	Addr       string   // loopback only; "" means 127.0.0.1:0
	PageID     string   // the page the components belong to
	Key        string   // the API key the Authorization header must carry
	Components []string // the ids that exist, all operational at first
}

// Server is a running stand-in; its methods are safe for concurrent use.
type Server struct {
	o   Options
	ln  net.Listener
	srv *http.Server

	mu         sync.Mutex
	status     map[string]string
	requests   int
	problems   []string
	failNext   []int
	retryAfter string
}

// Statuses a component may be set to (Statuspage's).
var Statuses = map[string]bool{"operational": true, "degraded_performance": true, "partial_outage": true, "major_outage": true, "under_maintenance": true}

// New starts the stand-in.
func New(o Options) (*Server, error) {
	ln, err := loopback.Listen("statussynctest", o.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, ln: ln, status: map[string]string{}}
	for _, id := range o.Components {
		s.status[id] = "operational"
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the API base to configure as public.sync.url.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/v1" }

// Close stops the stand-in.
func (s *Server) Close() error {
	if err := s.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// FailNext answers the next requests with these statuses (a 429 with Retry-After:
// retryAfter seconds), after checking them as usual.
func (s *Server) FailNext(retryAfter string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.retryAfter = append(s.failNext, statuses...), retryAfter
}

// Set changes a component as a person would by hand.
func (s *Server) Set(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[id] = status
}

// Snapshot returns every component's status, the requests seen and the problems found.
func (s *Server) Snapshot() (status map[string]string, requests int, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.status), s.requests, append([]string{}, s.problems...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	id, code, problem := s.check(r)
	if problem != "" {
		s.problems = append(s.problems, problem)
		writeJSON(w, code, map[string]string{"error": problem})
		return
	}
	if len(s.failNext) > 0 {
		code := s.failNext[0]
		s.failNext = s.failNext[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		// A careless API quotes what it was sent: Picket must scrub it.
		writeJSON(w, code, map[string]string{"error": "try again later (" + r.Header.Get("Authorization") + ")"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "page_id": s.o.PageID, "status": s.status[id]})
}

// check reads the request as the real API would; held: mu. It sets the status when the
// request is good.
func (s *Server) check(r *http.Request) (id string, code int, problem string) {
	if r.Header.Get("Authorization") != "OAuth "+s.o.Key {
		return "", http.StatusUnauthorized, "expected Authorization: OAuth <api key>; got " + r.Header.Get("Authorization")
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/pages/"+s.o.PageID+"/components/")
	if r.Method != http.MethodPatch || !ok || s.status[id] == "" {
		return "", http.StatusNotFound, fmt.Sprintf("%s %s: no such component", r.Method, r.URL.Path)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return "", http.StatusUnsupportedMediaType, "expected Content-Type: application/json"
	}
	var body struct {
		Component struct {
			Status string `json:"status"`
		} `json:"component"`
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err := json.Unmarshal(raw, &body); err != nil || !Statuses[body.Component.Status] {
		return "", http.StatusUnprocessableEntity, "expected {\"component\": {\"status\": ...}} with a known status, got " + string(raw)
	}
	if len(s.failNext) == 0 {
		s.status[id] = body.Component.Status
	}
	return id, 0, ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
