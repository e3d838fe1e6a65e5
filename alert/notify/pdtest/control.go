package pdtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Control surface paths, for tests and tools in another process.
const (
	PathEvents   = "/events"   // GET: accepted events, routing keys redacted
	PathOpen     = "/open"     // GET: open alerts by dedup key, routing keys redacted
	PathRequests = "/requests" // GET: {"requests": N}
	PathFault    = "/fault"    // GET current, POST to set (Fault as JSON), DELETE to clear
)

// maxFaultBody bounds a POST /fault body; a fault is a few dozen bytes.
const maxFaultBody = 4 << 10

func (r *Receiver) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc(PathEvents, getOnly(r.handleEvents))
	mux.HandleFunc(PathOpen, getOnly(r.handleOpen))
	mux.HandleFunc(PathRequests, getOnly(r.handleRequests))
	mux.HandleFunc(PathFault, r.handleFault)
}

// getOnly answers 405 to anything but GET (and HEAD, which net/http derives).
func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			methodNotAllowed(w, req, "GET")
			return
		}
		h(w, req)
	}
}

func methodNotAllowed(w http.ResponseWriter, req *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, apiResponse{
		Status:  "method not allowed",
		Message: fmt.Sprintf("expected %s, got %s", allow, req.Method),
	})
}

func (r *Receiver) handleEvents(w http.ResponseWriter, _ *http.Request) {
	events := r.Events()
	for i := range events {
		events[i] = events[i].redacted()
	}
	writeJSON(w, http.StatusOK, events)
}

func (r *Receiver) handleOpen(w http.ResponseWriter, _ *http.Request) {
	open := r.Open()
	for key, ev := range open {
		open[key] = ev.redacted()
	}
	writeJSON(w, http.StatusOK, open)
}

func (r *Receiver) handleRequests(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"requests": r.Requests()})
}

func (r *Receiver) handleFault(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, r.currentFault())
	case http.MethodPost:
		f, err := decodeFault(req.Body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiResponse{Status: "invalid fault", Message: err.Error()})
			return
		}
		r.SetFault(f)
		r.log.Info("pdtest: fault set", "status", f.Status, "retry_after", f.RetryAfter,
			"delay", f.Delay, "close", f.Close, "count", f.Count)
		writeJSON(w, http.StatusOK, f)
	case http.MethodDelete:
		r.ClearFault()
		r.log.Info("pdtest: fault cleared")
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, req, "GET, POST, DELETE")
	}
}

// decodeFault reads one Fault; unknown members are an error, so a typo such as
// "retryAfter" does not silently set nothing.
func decodeFault(body io.Reader) (Fault, error) {
	data, err := io.ReadAll(io.LimitReader(body, maxFaultBody+1))
	if err != nil {
		return Fault{}, fmt.Errorf("read fault: %w", err)
	}
	if len(data) > maxFaultBody {
		return Fault{}, fmt.Errorf("fault: expected at most %d bytes, got more", maxFaultBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w faultJSON
	if err := dec.Decode(&w); err != nil {
		return Fault{}, fmt.Errorf("fault: expected {status, retry_after, delay, close, count}: %w", err)
	}
	return w.fault()
}
