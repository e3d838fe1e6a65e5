package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logStore is a tiny intake + query API: POST /v1/logs stores the body under a new id
// and answers 202 {"id": ...}; GET /v1/logs/{id} answers 200 with the body once it is
// readable (readableAfter after the write), 404 before. A negative readableAfter means
// never.
type logStore struct {
	readableAfter time.Duration
	mu            sync.Mutex
	next          int
	items         map[string]logItem
	reads         atomic.Int32
}

type logItem struct {
	body    []byte
	written time.Time
}

func (s *logStore) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		s.mu.Lock()
		s.next++
		id := fmt.Sprintf("log-%d", s.next)
		if s.items == nil {
			s.items = map[string]logItem{}
		}
		s.items[id] = logItem{body: body, written: time.Now()}
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":%q}`, id)
	})
	mux.HandleFunc("GET /v1/logs/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.reads.Add(1)
		s.mu.Lock()
		it, found := s.items[r.PathValue("id")]
		s.mu.Unlock()
		if !found || s.readableAfter < 0 || time.Since(it.written) < s.readableAfter {
			http.Error(w, "no such log (yet)", http.StatusNotFound)
			return
		}
		w.Write(it.body)
	})
	return mux
}

const submitAndRead = `
	- name: submit-and-read
	  timeout: 5s
	  steps:
	    - name: submit
	      http: {method: POST, url: "{{.region.api}}/v1/logs", body: '{"m":"{{.run.id}}"}'}
	      expect: {status: [202]}
	      extract: {id: {json: id}}
	    - name: read-back
	      http: {url: "{{.region.api}}/v1/logs/{{.vars.id}}"}
	      %s
	      expect: {status: [200], json: {m: "{{.run.id}}"}}
`

func TestJourneySubmitThenReadBack(t *testing.T) {
	store := &logStore{}
	srv := startServer(t, store.handler())
	tg := targetFor(t, srv.URL, fmt.Sprintf(submitAndRead, ""))
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusUp {
		t.Fatalf("want up, got %s: %s", res.Status, res.Error)
	}
	if len(res.Steps) != 2 || res.Steps[0].HTTPStatus != 202 || res.Steps[1].HTTPStatus != 200 {
		t.Fatalf("steps: %+v", res.Steps)
	}
	if store.reads.Load() != 1 {
		t.Errorf("read-back ran %d times, want 1", store.reads.Load())
	}
	// The read-back's URL held the extracted id, and its json check the run's id.
	store.mu.Lock()
	got := string(store.items["log-1"].body)
	store.mu.Unlock()
	if want := fmt.Sprintf(`{"m":%q}`, res.RunID); got != want {
		t.Errorf("submitted %s, want %s", got, want)
	}
}

func TestExtractFromHeaderAndRegex(t *testing.T) {
	var gotQuery atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Session", "sess-77")
		io.WriteString(w, "<html>csrf=tok_AbC9; other=1</html>")
	})
	mux.HandleFunc("/use", func(w http.ResponseWriter, r *http.Request) {
		gotQuery.Store(r.URL.RawQuery)
		if r.URL.Query().Get("s") != "sess-77" || r.URL.Query().Get("c") != "tok_AbC9" {
			http.Error(w, "bad session", http.StatusForbidden)
		}
	})
	srv := startServer(t, mux)
	tg := targetFor(t, srv.URL, `
		- name: j
		  timeout: 2s
		  steps:
		    - name: login
		      http: {url: "{{.region.api}}/login"}
		      extract: {session: {header: x-session}, csrf: {regex: 'csrf=(\w+);'}}
		    - name: use
		      http: {url: "{{.region.api}}/use?s={{.vars.session}}&c={{.vars.csrf}}"}
	`)
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusUp {
		t.Fatalf("want up, got %s: %s (server saw %v)", res.Status, res.Error, gotQuery.Load())
	}
}

func TestExtractFailureNamesTheVar(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(answerOK))
	tg := targetFor(t, srv.URL, `
		- name: j
		  timeout: 2s
		  steps:
		    - {name: a, http: {url: "{{.region.api}}/"}, extract: {id: {json: data.id}}}
		    - {name: b, http: {url: "{{.region.api}}/{{.vars.id}}"}}
	`)
	res := newRunner(t).Run(context.Background(), tg)
	want := `step a: extract id: json path data.id missing (body: {"status":"ok"})`
	if res.Status != StatusDown || res.Error != want {
		t.Errorf("got %s %q, want down %q", res.Status, res.Error, want)
	}
}

func TestFailingStepStopsTheJourney(t *testing.T) {
	var thirdRan atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/one", answerOK)
	mux.HandleFunc("/two", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/three", func(w http.ResponseWriter, r *http.Request) { thirdRan.Add(1); answerOK(w, r) })
	srv := startServer(t, mux)
	tg := targetFor(t, srv.URL, `
		- name: j
		  timeout: 2s
		  steps:
		    - {name: first, http: {url: "{{.region.api}}/one"}}
		    - {name: second, http: {url: "{{.region.api}}/two"}}
		    - {name: third, http: {url: "{{.region.api}}/three"}}
	`)
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusDown || res.FailedStep != "second" {
		t.Fatalf("want down at second, got %s at %q", res.Status, res.FailedStep)
	}
	if want := "step second: status 500, want 2xx or 3xx (body: boom)"; res.Error != want {
		t.Errorf("error %q, want %q", res.Error, want)
	}
	if len(res.Steps) != 2 || res.Steps[0].Status != StatusUp || res.Steps[1].Status != StatusDown {
		t.Errorf("steps %+v, want first up and second down only", res.Steps)
	}
	if thirdRan.Load() != 0 {
		t.Error("the step after the failed one ran")
	}
}

func TestPollUntilReadable(t *testing.T) {
	store := &logStore{readableAfter: 300 * time.Millisecond}
	srv := startServer(t, store.handler())
	tg := targetFor(t, srv.URL, fmt.Sprintf(submitAndRead, "poll: {every: 50ms, within: 2s}"))
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusUp {
		t.Fatalf("want up, got %s: %s", res.Status, res.Error)
	}
	rb := res.Steps[1]
	if rb.Attempts < 2 || int(store.reads.Load()) != rb.Attempts {
		t.Errorf("attempts %d (server saw %d reads), want > 1 and equal", rb.Attempts, store.reads.Load())
	}
	// Readable 300 ms after the write; the first read starts just after it.
	// The write lands a few ms before the first read; a loaded machine widens the gap.
	if rb.PollWait < 200*time.Millisecond || rb.PollWait > time.Second {
		t.Errorf("poll wait %v, want about 300ms", rb.PollWait)
	}
	if rb.Error != "" || res.Steps[0].PollWait != 0 {
		t.Errorf("error %q, submit's poll wait %v", rb.Error, res.Steps[0].PollWait)
	}
}

func TestPollNeverReadable(t *testing.T) {
	store := &logStore{readableAfter: -1}
	srv := startServer(t, store.handler())
	tg := targetFor(t, srv.URL, fmt.Sprintf(submitAndRead, "poll: {every: 50ms, within: 500ms}"))
	began := time.Now()
	res := newRunner(t).Run(context.Background(), tg)
	elapsed := time.Since(began)
	rb := res.Steps[len(res.Steps)-1]
	if res.Status != StatusDown || res.FailedStep != "read-back" {
		t.Fatalf("want down at read-back, got %s at %q: %s", res.Status, res.FailedStep, res.Error)
	}
	// Every 50ms within 500ms is 10 attempts when each is quick; fewer on a loaded machine.
	if rb.Attempts < 3 || rb.Attempts > 10 || int(store.reads.Load()) != rb.Attempts {
		t.Errorf("attempts %d (server saw %d), want 3..10 and equal", rb.Attempts, store.reads.Load())
	}
	want := fmt.Sprintf("step read-back: not ready within 500ms (%d attempts); last: status 404, want 200; body is not JSON (\"no such log (yet)\"), want JSON for m (body: no such log (yet))", rb.Attempts)
	if res.Error != want {
		t.Errorf("error\n %q\nwant\n %q", res.Error, want)
	}
	if elapsed > 1500*time.Millisecond {
		t.Errorf("took %v, want about the 500ms poll window", elapsed)
	}
}

// TestPollStoppedByJourneyTimeout: a deadline that ends mid-poll (here the caller's)
// stops the poll at once and still gives a reason.
func TestPollStoppedByJourneyTimeout(t *testing.T) {
	store := &logStore{readableAfter: -1}
	srv := startServer(t, store.handler())
	tg := targetFor(t, srv.URL, strings.Replace(fmt.Sprintf(submitAndRead, "poll: {every: 100ms, within: 1s}"), "timeout: 5s", "timeout: 1100ms", 1))
	r := newRunner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	res := r.Run(ctx, tg)
	if res.Status != StatusDown || !strings.Contains(res.Error, "stopped by the journey timeout") {
		t.Errorf("got %s %q, want down stopped by the journey timeout", res.Status, res.Error)
	}
}

func TestRetriesReRunAFailedJourney(t *testing.T) {
	cases := []struct {
		name       string
		failFirst  int32
		retries    int
		wantStatus Status
		wantTries  int
	}{
		{"one dropped answer then up", 1, 2, StatusUp, 2},
		{"retries exhausted", 100, 2, StatusDown, 3},
		{"no retries by default", 100, 0, StatusDown, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= tc.failFirst {
					http.Error(w, "flaky", http.StatusBadGateway)
					return
				}
				answerOK(w, r)
			}))
			retries := ""
			if tc.retries > 0 {
				retries = fmt.Sprintf("retries: %d, ", tc.retries)
			}
			tg := targetFor(t, srv.URL, fmt.Sprintf(`[{name: j, %stimeout: 2s, steps: [{name: s, http: {url: "{{.region.api}}/"}}]}]`, retries))
			res := newRunner(t).Run(context.Background(), tg)
			if res.Status != tc.wantStatus || res.Tries != tc.wantTries || int(calls.Load()) != tc.wantTries {
				t.Errorf("got %s after %d tries (%d requests), want %s after %d: %s", res.Status, res.Tries, calls.Load(), tc.wantStatus, tc.wantTries, res.Error)
			}
			if tc.wantStatus == StatusDown && res.Error != "step s: status 502, want 2xx or 3xx (body: flaky)" {
				t.Errorf("error %q", res.Error)
			}
		})
	}
}

func TestDegradedAfter(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(150 * time.Millisecond):
		case <-r.Context().Done():
		}
		answerOK(w, r)
	}))
	tg := targetFor(t, srv.URL, `[{name: j, timeout: 2s, degraded_after: 50ms, steps: [{http: {url: "{{.region.api}}/"}}]}]`)
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusDegraded || !res.Up() {
		t.Fatalf("want degraded (a pass), got %s: %s", res.Status, res.Error)
	}
	if !strings.HasPrefix(res.Error, "journey took ") || !strings.HasSuffix(res.Error, ", degraded after 50ms") {
		t.Errorf("reason %q", res.Error)
	}
	if res.Tries != 1 {
		t.Errorf("a degraded run is not retried: tries %d", res.Tries)
	}
}

func TestRunIDIsPerRunAndSharedByItsSteps(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Query().Get("run")+"|"+r.Header.Get("X-Run"))
		mu.Unlock()
		answerOK(w, r)
	}))
	tg := targetFor(t, srv.URL, `
		- name: j
		  timeout: 2s
		  steps:
		    - {name: a, http: {url: "{{.region.api}}/a?run={{.run.id}}", headers: {X-Run: "{{.run.id}}"}}}
		    - {name: b, http: {url: "{{.region.api}}/b?run={{.run.id}}", headers: {X-Run: "{{.run.id}}"}}}
	`)
	r := newRunner(t)
	first := r.Run(context.Background(), tg)
	second := r.Run(context.Background(), tg)
	if first.Status != StatusUp || second.Status != StatusUp {
		t.Fatalf("runs: %s %s", first.Error, second.Error)
	}
	if first.RunID == "" || first.RunID == second.RunID {
		t.Errorf("run ids %q and %q: want different, non-empty", first.RunID, second.RunID)
	}
	want := []string{first.RunID + "|" + first.RunID, first.RunID + "|" + first.RunID, second.RunID + "|" + second.RunID, second.RunID + "|" + second.RunID}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("server saw %v, want %v", seen, want)
	}
}

// TestSecretsNeverReachResults: a server that echoes the request (URL with the key in
// the query, and the Authorization header) into an error body must not get the secret
// into any error of the result.
func TestSecretsNeverReachResults(t *testing.T) {
	const secret = "sk-live-9f8e7d6c5b4a"
	t.Setenv("PICKET_TEST_API_KEY", secret)
	var received atomic.Int32
	mux := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, secret) && strings.Contains(r.Header.Get("Authorization"), secret) {
			received.Add(1)
		}
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "cannot serve %s for %s", r.URL, r.Header.Get("Authorization"))
	}
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"status": "down", "url": r.URL.String()})
	})
	// The secret straddles the end of the excerpt: a cut secret must not show either.
	mux.HandleFunc("/cut", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "%s %s", strings.Repeat("x", excerptLen-16), r.URL.Query().Get("key"))
	})
	mux.HandleFunc("/jsoncut", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"status": strings.Repeat("y", 106) + r.URL.Query().Get("key")})
	})
	mux.HandleFunc("/header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", strings.Repeat("z", 106)+r.URL.Query().Get("key"))
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.String(), http.StatusFound)
	})
	srv := startServer(t, mux)
	top := "secrets:\n  api_key: {env: PICKET_TEST_API_KEY}\n"
	for _, path := range []string{"echo", "json", "cut", "jsoncut", "header", "loop"} {
		t.Run(path, func(t *testing.T) {
			tgs := targetsFor(t, srv.URL, top, fmt.Sprintf(`
				- name: j
				  timeout: 2s
				  steps:
				    - name: call
				      http: {url: "{{.region.api}}/%s?key={{.secret.api_key}}", headers: {Authorization: "Bearer {{.secret.api_key}}"}}
				      expect: {json: {status: ok}, headers: {X-Echo: "^z*$"}}
			`, path))
			res := newRunner(t).Run(context.Background(), tgs[0])
			t.Logf("reason: %s", res.Error)
			if res.Status != StatusDown {
				t.Fatalf("want down, got %s", res.Status)
			}
			texts := []string{res.Error}
			for _, s := range res.Steps {
				texts = append(texts, s.Error)
			}
			for _, text := range texts {
				if strings.Contains(text, secret[:6]) {
					t.Errorf("secret (or its start) in %q", text)
				}
			}
			// The echo did come back, redacted: the test would see a leak.
			if !strings.Contains(res.Error, "[redacted]") {
				t.Errorf("error %q shows no redacted echo", res.Error)
			}
		})
	}
	if received.Load() == 0 {
		t.Error("the server never received the secret; the test proves nothing")
	}
}

// --- RunAll -------------------------------------------------------------------------

func TestRunAllKeepsTargetOrderAndBoundsConcurrency(t *testing.T) {
	const n, bound = 8, 3
	var inFlight, maxInFlight atomic.Int32
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if now <= m || maxInFlight.CompareAndSwap(m, now) {
				break
			}
		}
		// Earlier targets answer later, so completion order differs from target order.
		var i int
		fmt.Sscanf(r.URL.Path, "/t/%d", &i)
		select {
		case <-time.After(time.Duration(n-i) * 15 * time.Millisecond):
		case <-r.Context().Done():
		}
		answerOK(w, r)
	}))
	var journeys strings.Builder
	for i := range n {
		fmt.Fprintf(&journeys, "- {name: j%d, timeout: 2s, steps: [{http: {url: \"{{.region.api}}/t/%d\"}}]}\n", i, i)
	}
	targets := targetsFor(t, srv.URL, "", journeys.String())
	results := newRunner(t).RunAll(context.Background(), targets, bound)
	if len(results) != n {
		t.Fatalf("%d results for %d targets", len(results), n)
	}
	for i, res := range results {
		if res.Target != targets[i].ID || res.Status != StatusUp {
			t.Errorf("result %d: %s %s (%s), want %s up", i, res.Target, res.Status, res.Error, targets[i].ID)
		}
	}
	if m := maxInFlight.Load(); m > bound || m < 2 {
		t.Errorf("max concurrent requests %d, want 2..%d", m, bound)
	}
}

func TestRunAllStopsPromptlyOnCancel(t *testing.T) {
	release := make(chan struct{})
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(func() { close(release) }) // runs before srv.Close: handlers end first
	var journeys strings.Builder
	for i := range 6 {
		fmt.Fprintf(&journeys, "- {name: j%d, timeout: 10s, retries: 2, steps: [{http: {url: \"{{.region.api}}/\"}}]}\n", i)
	}
	targets := targetsFor(t, srv.URL, "", journeys.String())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	results := newRunner(t).RunAll(ctx, targets, 2)
	if elapsed := time.Since(began); elapsed > time.Second {
		t.Errorf("RunAll took %v after a cancel at 100ms", elapsed)
	}
	for i, res := range results {
		if res.Target != targets[i].ID || res.Status != StatusDown || !strings.Contains(res.Error, "cancelled") || res.Tries != 1 {
			t.Errorf("result %d: %s %s after %d tries: %q, want down, cancelled, 1 try", i, res.Target, res.Status, res.Tries, res.Error)
		}
	}
}
