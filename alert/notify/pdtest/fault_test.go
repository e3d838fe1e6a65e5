package pdtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultAnswers(t *testing.T) {
	cases := []struct {
		name           string
		fault          Fault
		wantStatus     int
		wantBodyStatus string
		wantRetryAfter string
	}{
		{name: "400", fault: Fault{Status: 400, Count: 2}, wantStatus: 400, wantBodyStatus: statusInvalidEvent},
		{name: "429 with Retry-After", fault: Fault{Status: 429, RetryAfter: 2 * time.Second, Count: 2},
			wantStatus: 429, wantBodyStatus: "throttle exceeded", wantRetryAfter: "2"},
		{name: "429 Retry-After rounds up", fault: Fault{Status: 429, RetryAfter: 1500 * time.Millisecond, Count: 2},
			wantStatus: 429, wantBodyStatus: "throttle exceeded", wantRetryAfter: "2"},
		{name: "429 without Retry-After", fault: Fault{Status: 429, Count: 2}, wantStatus: 429, wantBodyStatus: "throttle exceeded"},
		{name: "500", fault: Fault{Status: 500, Count: 2}, wantStatus: 500, wantBodyStatus: "Internal Server Error"},
		{name: "502", fault: Fault{Status: 502, Count: 2}, wantStatus: 502, wantBodyStatus: "Bad Gateway"},
		{name: "503 with Retry-After", fault: Fault{Status: 503, RetryAfter: time.Second, Count: 2},
			wantStatus: 503, wantBodyStatus: "Service Unavailable", wantRetryAfter: "1"},
		{name: "500 with delay", fault: Fault{Status: 500, Delay: 30 * time.Millisecond, Count: 2},
			wantStatus: 500, wantBodyStatus: "Internal Server Error"},
		{name: "unservable status answers 500", fault: Fault{Status: 42, Count: 2}, wantStatus: 500, wantBodyStatus: "Internal Server Error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, Options{})
			c := client(t)
			r.SetFault(tc.fault)
			for i := range tc.fault.Count {
				begin := time.Now()
				rep := post(t, c, r.URL(), event(t, nil))
				if rep.status != tc.wantStatus || rep.body.Status != tc.wantBodyStatus {
					t.Fatalf("request %d: answer %d %s, want %d with status %q", i, rep.status, rep.raw, tc.wantStatus, tc.wantBodyStatus)
				}
				if got := rep.header.Get("Retry-After"); got != tc.wantRetryAfter {
					t.Errorf("Retry-After %q, want %q", got, tc.wantRetryAfter)
				}
				if took := time.Since(begin); took < tc.fault.Delay {
					t.Errorf("answered after %s, before the %s delay", took, tc.fault.Delay)
				}
			}
			// Count used up: the next request is served normally.
			if rep := post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
				t.Fatalf("after %d faulted requests: answer %d %s, want recovery (202)", tc.fault.Count, rep.status, rep.raw)
			}
			if n, reqs := len(r.Events()), r.Requests(); n != 1 || reqs != tc.fault.Count+1 {
				t.Errorf("Events() = %d, Requests() = %d; want 1 and %d (faulted requests are not events)", n, reqs, tc.fault.Count+1)
			}
		})
	}
}

func TestFaultUntilCleared(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	r.SetFault(Fault{Status: http.StatusServiceUnavailable})
	for i := range 3 {
		if rep := post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d, want 503 until cleared", i, rep.status)
		}
	}
	r.ClearFault()
	if rep := post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
		t.Fatalf("after ClearFault: %d %s, want 202", rep.status, rep.raw)
	}
	r.SetFault(Fault{Status: 500, Count: 1})
	r.SetFault(Fault{Status: 429, Count: 1}) // replaces, does not stack
	if rep := post(t, c, r.URL(), event(t, nil)); rep.status != 429 {
		t.Fatalf("after replacing the fault: %d, want 429", rep.status)
	}
	if rep := post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
		t.Fatalf("replaced fault lingers: %d, want 202", rep.status)
	}
}

func TestFaultDelayThenNormal(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	const delay = 150 * time.Millisecond
	r.SetFault(Fault{Delay: delay, Count: 1})
	begin := time.Now()
	rep := post(t, c, r.URL(), event(t, nil))
	took := time.Since(begin)
	if rep.status != http.StatusAccepted || took < delay {
		t.Fatalf("answer %d after %s, want 202 after at least %s", rep.status, took, delay)
	}
	if len(r.Events()) != 1 {
		t.Errorf("a slow but normal answer must record the event")
	}
	begin = time.Now()
	post(t, c, r.URL(), event(t, nil))
	if took := time.Since(begin); took >= delay {
		t.Errorf("second request took %s: the delay outlived its count", took)
	}
}

func TestFaultDelayBoundedByClientContext(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	r.SetFault(Fault{Delay: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := send(ctx, c, r.URL(), event(t, nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("POST = %v, want the client's deadline", err)
	}
	r.ClearFault()
	if rep := post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
		t.Fatalf("after the abandoned request: %d, want 202", rep.status)
	}
	if n := len(r.Events()); n != 1 {
		t.Errorf("Events() = %d, want only the answered request (the abandoned one is not an event)", n)
	}
}

func TestCloseCancelsDelays(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t)
	r.SetFault(Fault{Delay: time.Minute})
	done := make(chan error, 1)
	body := event(t, nil)
	go func() {
		_, err := send(context.Background(), c, r.URL(), body)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for r.Requests() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	begin := time.Now()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("Close took %s with a pending delay, want it cancelled", took)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the delayed request got an answer from a closing receiver, want the connection cut")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still pending 5s after Close")
	}
}

func TestFaultCloseDropsConnection(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	r.SetFault(Fault{Close: true, Count: 2})
	for i := range 2 {
		status, err := send(t.Context(), c, r.URL(), event(t, nil))
		if err == nil {
			t.Fatalf("request %d answered %d, want the connection dropped", i, status)
		}
	}
	if rep := post(t, c, r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
		t.Fatalf("after the dropped connections: %d, want 202", rep.status)
	}
	if n, reqs := len(r.Events()), r.Requests(); n != 1 || reqs != 3 {
		t.Errorf("Events() = %d, Requests() = %d; want 1 and 3", n, reqs)
	}
}

func TestFaultJSON(t *testing.T) {
	f := Fault{Status: 429, RetryAfter: 2 * time.Second, Delay: 1500 * time.Millisecond, Close: false, Count: 3}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"status":429,"retry_after":"2s","delay":"1.5s","count":3}`; string(data) != want {
		t.Errorf("Marshal = %s, want %s", data, want)
	}
	var back Fault
	if err := json.Unmarshal(data, &back); err != nil || back != f {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, f)
	}
	for _, bad := range []string{
		`{"delay":"soon"}`, `{"retry_after":5}`, `{"status":99}`, `{"status":600}`,
		`{"count":-1}`, `{"delay":"-1s"}`, `[]`,
	} {
		var f Fault
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", bad, f)
		} else if !strings.Contains(err.Error(), "fault") {
			t.Errorf("Unmarshal(%s) error %q does not say it is about the fault", bad, err)
		}
	}
}

// TestAbandonedRequestIsNotRecorded: a client that gives up during an injected delay
// must not find its event recorded afterwards.
func TestAbandonedRequestIsNotRecorded(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetFault(Fault{Delay: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	body := `{"routing_key":"abcdefghijklmnopqrstuvwxyz012345","event_action":"trigger","dedup_key":"k","payload":{"summary":"s","source":"x","severity":"error"}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.URL(), strings.NewReader(body))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request should have timed out")
	}
	time.Sleep(500 * time.Millisecond) // past the delay
	if n := len(r.Events()); n != 0 {
		t.Errorf("%d events recorded from an abandoned request", n)
	}
}
