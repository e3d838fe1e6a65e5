package pdtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKey is a well-formed routing key; tests look for it where it must not be.
const testKey = "R0UT1NGKEY0123456789abcdefABCDEF"

// start runs a receiver for one test and closes it (and checks Close) after.
func start(t *testing.T, opts Options) *Receiver {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// client is an HTTP client whose idle connections end with the test, so
// goleak sees no leftover connection goroutines.
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type reply struct {
	status int
	header http.Header
	body   apiResponse
	raw    string
}

func do(t *testing.T, c *http.Client, method, url, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	rep := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		_ = json.Unmarshal(raw, &rep.body) // control replies are not apiResponses; callers use raw
	}
	return rep
}

func post(t *testing.T, c *http.Client, url, body string) reply {
	t.Helper()
	return do(t, c, http.MethodPost, url, body)
}

// send is post for goroutines other than the test's: it returns what
// happened instead of failing the test.
func send(ctx context.Context, c *http.Client, url, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// event builds an enqueue body from a base valid trigger, with members
// replaced (or, with a nil value, removed).
func event(t *testing.T, changes map[string]any) string {
	t.Helper()
	ev := map[string]any{
		"routing_key":  testKey,
		"event_action": "trigger",
		"dedup_key":    "logs/search@eu1",
		"payload": map[string]any{
			"summary":  "logs search down in eu1",
			"source":   "picket.test",
			"severity": "critical",
		},
	}
	for k, v := range changes {
		if v == nil {
			delete(ev, k)
			continue
		}
		ev[k] = v
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("marshal event: %v", err)
	}
	return string(data)
}

func TestNewRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0", "no-port"} {
		t.Run(addr, func(t *testing.T) {
			r, err := New(Options{Addr: addr})
			if err == nil {
				r.Close()
				t.Fatalf("New(%q) = nil error, want a refusal of a non-loopback address", addr)
			}
		})
	}
}

func TestNewLoopbackAddrs(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:0", "localhost:0"} {
		t.Run(addr, func(t *testing.T) {
			r := start(t, Options{Addr: addr})
			if !strings.HasPrefix(r.URL(), "http://") || !strings.HasSuffix(r.URL(), "/v2/enqueue") {
				t.Errorf("URL() = %q, want http://host:port/v2/enqueue", r.URL())
			}
			if r.URL() != r.BaseURL()+"/v2/enqueue" || r.BaseURL() != "http://"+r.ServeAddr() {
				t.Errorf("URL %q, BaseURL %q, ServeAddr %q disagree", r.URL(), r.BaseURL(), r.ServeAddr())
			}
			if rep := post(t, client(t), r.URL(), event(t, nil)); rep.status != http.StatusAccepted {
				t.Errorf("POST = %d %s, want 202", rep.status, rep.raw)
			}
		})
	}
}

func TestCloseIsIdempotentAndStopsServing(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c := client(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL(), strings.NewReader(event(t, nil)))
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("POST after Close answered %d, want a connection error", resp.StatusCode)
	}
}

// TestRoutingKeyLeaksNowhere sends accepted, rejected and faulted events and
// looks for the key in logs, answers and the control surface.
func TestRoutingKeyLeaksNowhere(t *testing.T) {
	var logs testkit.Buffer
	r := start(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := client(t)
	shortKey := testKey[:31]
	var answers []string
	for _, body := range []string{
		event(t, nil),
		event(t, map[string]any{"event_action": "resolve"}),
		event(t, map[string]any{"routing_key": shortKey}),
		event(t, map[string]any{"event_action": "explode"}),
	} {
		answers = append(answers, post(t, c, r.URL(), body).raw)
	}
	r.SetFault(Fault{Status: http.StatusTooManyRequests, Count: 1})
	answers = append(answers, post(t, c, r.URL(), event(t, nil)).raw)
	for _, path := range []string{PathEvents, PathOpen, PathFault, PathRequests} {
		answers = append(answers, do(t, c, http.MethodGet, r.BaseURL()+path, "").raw)
	}
	post(t, c, r.URL(), event(t, nil)) // an open alert again, so /open has content
	answers = append(answers, do(t, c, http.MethodGet, r.BaseURL()+PathOpen, "").raw)

	for _, secret := range []string{testKey, shortKey} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs carry the routing key:\n%s", logs.String())
		}
		for i, a := range answers {
			if strings.Contains(a, secret) {
				t.Errorf("answer %d carries the routing key: %s", i, a)
			}
		}
	}
	if !strings.Contains(logs.String(), "event accepted") {
		t.Errorf("logs lack the accepted events, so this test saw nothing:\n%s", logs.String())
	}
}

func TestConcurrentEvents(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	body := event(t, map[string]any{"dedup_key": nil}) // each gets a generated key
	for i := range n {
		wg.Go(func() {
			status, err := send(t.Context(), c, r.URL(), body)
			if err != nil {
				t.Errorf("POST %d: %v", i, err)
			}
			statuses[i] = status
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusAccepted {
			t.Errorf("request %d: status %d, want 202", i, s)
		}
	}
	events := r.Events()
	keys := map[string]bool{}
	for _, ev := range events {
		keys[ev.DedupKey] = true
	}
	if len(events) != n || len(keys) != n || r.Requests() != n || len(r.Open()) != n {
		t.Errorf("events %d, distinct dedup keys %d, requests %d, open %d; want %d of each",
			len(events), len(keys), r.Requests(), len(r.Open()), n)
	}
}

func TestEventsReturnsACopy(t *testing.T) {
	r := start(t, Options{})
	post(t, client(t), r.URL(), event(t, map[string]any{"links": []any{map[string]any{"href": "https://x.test"}}}))
	got := r.Events()
	got[0].Payload.Summary = "changed"
	got[0].Raw[0] = 'X'
	got[0].Links[0][0] = 'X'
	again := r.Events()[0]
	if again.Payload.Summary == "changed" || again.Raw[0] == 'X' || again.Links[0][0] == 'X' {
		t.Errorf("changing Events()' result changed the record: %+v", again)
	}
}

func TestWaitFor(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	hasResolve := func(events []Event) bool {
		for _, ev := range events {
			if ev.Action == ActionResolve {
				return true
			}
		}
		return false
	}

	t.Run("already true returns at once", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := r.WaitFor(ctx, func([]Event) bool { return true }); err != nil {
			t.Fatalf("WaitFor: %v", err)
		}
	})

	t.Run("wakes on a later event", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		defer wg.Wait()
		trigger, resolve := event(t, nil), event(t, map[string]any{"event_action": "resolve"})
		wg.Go(func() {
			time.Sleep(50 * time.Millisecond)
			for _, body := range []string{trigger, resolve} {
				if status, err := send(ctx, c, r.URL(), body); status != http.StatusAccepted {
					t.Errorf("POST = %d, %v; want 202", status, err)
				}
			}
		})
		begin := time.Now()
		if err := r.WaitFor(ctx, hasResolve); err != nil {
			t.Fatalf("WaitFor: %v", err)
		}
		if took := time.Since(begin); took > 3*time.Second {
			t.Errorf("WaitFor took %s; it should wake on the event, not poll slowly", took)
		}
	})

	t.Run("times out", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := r.WaitFor(ctx, func([]Event) bool { return false })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitFor = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestWaitForEndsOnClose(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.WaitFor(context.Background(), func([]Event) bool { return false }) }()
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitFor = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitFor still waiting 5s after Close")
	}
}
