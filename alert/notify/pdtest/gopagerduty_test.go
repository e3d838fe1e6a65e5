package pdtest

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty"
)

// pdClient is go-pagerduty v1.8.0 pointed at r. Its endpoint option takes the
// base URL: the client appends /v2/enqueue itself.
func pdClient(t *testing.T, endpoint string) *pagerduty.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(endpoint))
	c.HTTPClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return c
}

func pdEvent(action, dedup string) *pagerduty.V2Event {
	ev := &pagerduty.V2Event{RoutingKey: testKey, Action: action, DedupKey: dedup}
	if action == "trigger" {
		ev.Payload = &pagerduty.V2Payload{
			Summary: "web checkout down in eu1", Source: "picket", Severity: "critical",
			Details: map[string]any{"scope": "region"},
		}
	}
	return ev
}

func TestGoPagerDutyLifecycle(t *testing.T) {
	r := start(t, Options{})
	pd := pdClient(t, r.BaseURL())

	resp, err := pd.ManageEventWithContext(t.Context(), pdEvent("trigger", ""))
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	if resp.Status != "success" || resp.Message != "Event processed" || len(resp.DedupKey) != 32 {
		t.Fatalf("trigger answer %+v, want success with a generated dedup key", resp)
	}
	key := resp.DedupKey
	if _, ok := r.Open()[key]; !ok {
		t.Fatalf("Open() = %v, want %s open", r.Open(), key)
	}
	for _, action := range []string{"acknowledge", "resolve"} {
		resp, err := pd.ManageEventWithContext(t.Context(), pdEvent(action, key))
		if err != nil || resp.DedupKey != key {
			t.Fatalf("%s: %+v, %v", action, resp, err)
		}
	}
	if len(r.Open()) != 0 {
		t.Errorf("Open() = %v after resolve, want none", r.Open())
	}
	events := r.Events()
	if len(events) != 3 || string(events[0].Payload.CustomDetails) != `{"scope":"region"}` {
		t.Errorf("events %+v", events)
	}
}

func TestGoPagerDutyErrors(t *testing.T) {
	cases := []struct {
		name          string
		fault         Fault
		event         *pagerduty.V2Event
		wantStatus    int
		wantTemporary bool
	}{
		{name: "429 is temporary", fault: Fault{Status: 429, RetryAfter: time.Second}, wantStatus: 429, wantTemporary: true},
		{name: "500 is temporary", fault: Fault{Status: 500}, wantStatus: 500, wantTemporary: true},
		{name: "502 is temporary", fault: Fault{Status: 502}, wantStatus: 502, wantTemporary: true},
		{name: "503 is temporary", fault: Fault{Status: 503}, wantStatus: 503, wantTemporary: true},
		{name: "injected 400 is permanent", fault: Fault{Status: 400}, wantStatus: 400},
		{name: "invalid event is permanent",
			event:      &pagerduty.V2Event{RoutingKey: "too-short", Action: "trigger", Payload: &pagerduty.V2Payload{}},
			wantStatus: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, Options{})
			pd := pdClient(t, r.BaseURL())
			if tc.fault.Status != 0 {
				tc.fault.Count = 1
				r.SetFault(tc.fault)
			}
			ev := tc.event
			if ev == nil {
				ev = pdEvent("trigger", "k")
			}
			_, err := pd.ManageEventWithContext(t.Context(), ev)
			var apiErr pagerduty.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T), want a pagerduty.APIError", err, err)
			}
			if apiErr.StatusCode != tc.wantStatus || apiErr.Temporary() != tc.wantTemporary {
				t.Errorf("APIError status %d Temporary %v, want %d and %v (%v)",
					apiErr.StatusCode, apiErr.Temporary(), tc.wantStatus, tc.wantTemporary, err)
			}
			if len(r.Events()) != 0 {
				t.Errorf("a failed event was recorded")
			}
		})
	}
}

// TestGoPagerDutyGivenEnqueueURL pins down a trap: go-pagerduty appends
// /v2/enqueue to its endpoint, so configuring the full enqueue URL fails with
// a 404, as it would against PagerDuty.
func TestGoPagerDutyGivenEnqueueURL(t *testing.T) {
	r := start(t, Options{})
	pd := pdClient(t, r.URL())
	_, err := pd.ManageEventWithContext(t.Context(), pdEvent("trigger", "k"))
	var apiErr pagerduty.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Temporary() {
		t.Fatalf("error %v, want a permanent 404 APIError", err)
	}
	if r.Requests() != 1 || len(r.Events()) != 0 {
		t.Errorf("Requests() %d, Events() %d; want the wrong-path request seen but not accepted", r.Requests(), len(r.Events()))
	}
}
