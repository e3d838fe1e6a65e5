package pdtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	pathEnqueueV2 = "/v2/enqueue"
	pathEnqueue   = "/enqueue"

	statusInvalidEvent  = "invalid event"
	messageInvalidEvent = "Event object is invalid"
)

// apiResponse is every body the Events API answers with.
type apiResponse struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// routes maps the Events API and the control surface. Anything that is not the
// control surface counts as a request to the Events API, so a notifier that
// posts to a wrong path is seen (and answered 404).
func (r *Receiver) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathEnqueueV2, r.handleEnqueue)
	mux.HandleFunc(pathEnqueue, r.handleEnqueue)
	mux.HandleFunc("/", r.handleUnknown)
	r.controlRoutes(mux)
	return mux
}

func (r *Receiver) handleEnqueue(w http.ResponseWriter, req *http.Request) {
	r.countRequest()
	// Read the body before any injected delay: net/http notices a client that gave up
	// (and cancels the request's context) only once the body has been read, and an
	// abandoned request must not be recorded as accepted.
	var body []byte
	var tooLarge bool
	var readErr error
	if req.Method == http.MethodPost {
		body, tooLarge, readErr = readBody(w, req)
	}
	if f, ok := r.takeFault(); ok && r.serveFault(w, req, f) {
		return
	}
	if req.Context().Err() != nil {
		return // the client is gone; PagerDuty would not have processed it either
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, apiResponse{
			Status:  "method not allowed",
			Message: fmt.Sprintf("expected POST, got %s", req.Method),
		})
		return
	}
	switch {
	case tooLarge:
		r.reject(w, http.StatusRequestEntityTooLarge, apiResponse{
			Status:  statusInvalidEvent,
			Message: messageInvalidEvent,
			Errors:  []string{fmt.Sprintf("Event is too large (maximum is %d bytes)", MaxBodyBytes)},
		})
		return
	case readErr != nil:
		// The client went away mid-body; nobody is left to answer.
		r.log.Warn("pdtest: reading event body failed", "err", readErr)
		return
	}
	r.accept(w, body)
}

// accept validates body and, if it is a valid event, records and answers it.
func (r *Receiver) accept(w http.ResponseWriter, body []byte) {
	ev, problems, err := parseEvent(body)
	var unrecognized errUnrecognized
	switch {
	case errors.As(err, &unrecognized):
		r.reject(w, http.StatusBadRequest, apiResponse{
			Status:  "Unrecognized object",
			Message: "Event object format is unrecognized",
			Errors:  []string{unrecognized.reason},
		})
		return
	case len(problems) > 0:
		r.reject(w, http.StatusBadRequest, apiResponse{Status: statusInvalidEvent, Message: messageInvalidEvent, Errors: problems})
		return
	}
	if ev.DedupKey == "" {
		ev.DedupKey = newDedupKey()
	}
	ev.Received = time.Now()
	r.record(ev)
	r.log.Info("pdtest: event accepted",
		"action", ev.Action, "dedup_key", ev.DedupKey, "severity", ev.Payload.Severity, "summary", ev.Payload.Summary)
	writeJSON(w, http.StatusAccepted, apiResponse{Status: "success", Message: "Event processed", DedupKey: ev.DedupKey})
}

// reject answers a bad request. Its problems never quote the routing key.
func (r *Receiver) reject(w http.ResponseWriter, status int, body apiResponse) {
	r.log.Warn("pdtest: event rejected", "status", status, "errors", strings.Join(body.Errors, "; "))
	writeJSON(w, status, body)
}

// readBody reads at most MaxBodyBytes; tooLarge says the body was longer.
func readBody(w http.ResponseWriter, req *http.Request) (body []byte, tooLarge bool, err error) {
	if req.ContentLength > MaxBodyBytes {
		return nil, true, nil
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBodyBytes))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read event body: %w", err)
	}
	return body, false, nil
}

func (r *Receiver) handleUnknown(w http.ResponseWriter, req *http.Request) {
	r.countRequest()
	msg := fmt.Sprintf("no endpoint %s; the Events API v2 is POST %s", req.URL.Path, pathEnqueueV2)
	if strings.HasSuffix(req.URL.Path, pathEnqueueV2) {
		// The mistake go-pagerduty invites: its endpoint option is the base URL.
		msg += " (go-pagerduty appends /v2/enqueue itself: give it the base URL)"
	}
	writeJSON(w, http.StatusNotFound, apiResponse{Status: "not found", Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "pdtest: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
