package pdtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestControlEventsAndOpenAreRedacted(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	post(t, c, r.URL(), event(t, map[string]any{"dedup_key": "A"}))
	post(t, c, r.URL(), event(t, map[string]any{"dedup_key": "B"}))
	post(t, c, r.URL(), event(t, map[string]any{"dedup_key": "A", "event_action": "resolve"}))

	rep := do(t, c, http.MethodGet, r.BaseURL()+PathEvents, "")
	var events []Event
	if err := json.Unmarshal([]byte(rep.raw), &events); rep.status != http.StatusOK || err != nil {
		t.Fatalf("GET /events: %d %v %s", rep.status, err, rep.raw)
	}
	if len(events) != 3 || events[0].DedupKey != "A" || events[2].Action != "resolve" {
		t.Fatalf("GET /events = %+v, want the 3 events in order", events)
	}
	for i, ev := range events {
		var raw map[string]any
		if err := json.Unmarshal(ev.Raw, &raw); err != nil {
			t.Fatalf("event %d raw is not JSON: %s", i, ev.Raw)
		}
		if ev.RoutingKey != "***" || raw["routing_key"] != "***" {
			t.Errorf("event %d: routing key %q, raw routing key %v; want both redacted", i, ev.RoutingKey, raw["routing_key"])
		}
		if raw["dedup_key"] != ev.DedupKey {
			t.Errorf("event %d: raw lost the rest of the body: %s", i, ev.Raw)
		}
	}
	if r.Events()[0].RoutingKey != testKey {
		t.Errorf("redaction for the control surface changed the record itself")
	}

	rep = do(t, c, http.MethodGet, r.BaseURL()+PathOpen, "")
	var open map[string]Event
	if err := json.Unmarshal([]byte(rep.raw), &open); rep.status != http.StatusOK || err != nil {
		t.Fatalf("GET /open: %d %v %s", rep.status, err, rep.raw)
	}
	if len(open) != 1 || open["B"].RoutingKey != "***" || strings.Contains(rep.raw, testKey) {
		t.Errorf("GET /open = %s, want only B, redacted", rep.raw)
	}

	rep = do(t, c, http.MethodGet, r.BaseURL()+PathRequests, "")
	if rep.raw != `{"requests":3}`+"\n" {
		t.Errorf("GET /requests = %s, want 3 (control requests are not counted)", rep.raw)
	}
}

func TestControlFault(t *testing.T) {
	r := start(t, Options{})
	c := client(t)

	rep := post(t, c, r.BaseURL()+PathFault, `{"status":429,"retry_after":"3s","count":1}`)
	if rep.status != http.StatusOK {
		t.Fatalf("POST /fault: %d %s", rep.status, rep.raw)
	}
	rep = do(t, c, http.MethodGet, r.BaseURL()+PathFault, "")
	if rep.raw != `{"status":429,"retry_after":"3s","count":1}`+"\n" {
		t.Errorf("GET /fault = %s", rep.raw)
	}
	rep = post(t, c, r.URL(), event(t, nil))
	if rep.status != http.StatusTooManyRequests || rep.header.Get("Retry-After") != "3" {
		t.Fatalf("enqueue under fault: %d Retry-After %q, want 429 and 3", rep.status, rep.header.Get("Retry-After"))
	}
	if rep = post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
		t.Fatalf("enqueue after count: %d, want 202", rep.status)
	}

	post(t, c, r.BaseURL()+PathFault, `{"status":500}`)
	if rep = post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusInternalServerError {
		t.Fatalf("enqueue under 500 fault: %d", rep.status)
	}
	if rep = do(t, c, http.MethodDelete, r.BaseURL()+PathFault, ""); rep.status != http.StatusNoContent {
		t.Fatalf("DELETE /fault: %d", rep.status)
	}
	if rep = post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
		t.Fatalf("enqueue after DELETE /fault: %d, want 202", rep.status)
	}

	post(t, c, r.BaseURL()+PathFault, `{"delay":"20ms","count":1}`)
	begin := time.Now()
	if rep = post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted || time.Since(begin) < 20*time.Millisecond {
		t.Fatalf("delay fault set over HTTP: %d after %s", rep.status, time.Since(begin))
	}
}

func TestControlFaultRejectsBadInput(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	for _, body := range []string{
		`{"status":429,"retryAfter":"3s"}`, // unknown member: a typo must not pass silently
		`{"delay":"3"}`,
		`{"status":"429"}`,
		`{"status":700}`,
		`not json`,
		`{"delay":"` + strings.Repeat("1", maxFaultBody) + `s"}`,
	} {
		rep := post(t, c, r.BaseURL()+PathFault, body)
		if rep.status != http.StatusBadRequest || rep.body.Status != "invalid fault" || rep.body.Message == "" {
			t.Errorf("POST /fault %.40s: %d %s, want 400 saying why", body, rep.status, rep.raw)
		}
	}
	if f := r.currentFault(); f != (Fault{}) {
		t.Errorf("a rejected fault was set: %+v", f)
	}
}

func TestControlMethods(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	cases := []struct{ method, path, allow string }{
		{http.MethodPost, PathEvents, "GET"},
		{http.MethodDelete, PathOpen, "GET"},
		{http.MethodPut, PathRequests, "GET"},
		{http.MethodPut, PathFault, "GET, POST, DELETE"},
	}
	for _, tc := range cases {
		rep := do(t, c, tc.method, r.BaseURL()+tc.path, "")
		if rep.status != http.StatusMethodNotAllowed || rep.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tc.method, tc.path, rep.status, rep.header.Get("Allow"), tc.allow)
		}
	}
	if r.Requests() != 0 {
		t.Errorf("Requests() = %d, want 0: control requests are not Events API requests", r.Requests())
	}
}
