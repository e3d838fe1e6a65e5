package notify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(runOutboxChild(mode)) // see the SIGKILL tests: this process is the one killed
	}
	goleak.VerifyTestMain(m)
}

// The *store.Store is the OutboxStore the daemon wires in.
var _ OutboxStore = (*store.Store)(nil)

// fakeNotifier is the outbox's collaborator: respond decides each call's answer.
type fakeNotifier struct {
	name    string
	id      string                                                    // its Identity; "": it cannot say
	respond func(ctx context.Context, n Notification, call int) error // nil: accept

	mu          sync.Mutex
	calls       []Notification // every call, in order
	accepted    []Notification
	inFlight    int
	maxInFlight int
}

func (f *fakeNotifier) Name() string     { return f.name }
func (f *fakeNotifier) Kind() string     { return "fake" }
func (f *fakeNotifier) Identity() string { return f.id }

func (f *fakeNotifier) Notify(ctx context.Context, n Notification) error {
	f.mu.Lock()
	f.calls = append(f.calls, n)
	call := len(f.calls)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	var err error
	if f.respond != nil {
		err = f.respond(ctx, n, call)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	if err == nil {
		f.accepted = append(f.accepted, n)
	}
	return err
}

func (f *fakeNotifier) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// acceptedList renders accepted notifications as "action:dedup" in order.
func (f *fakeNotifier) acceptedList() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return render(f.accepted)
}

func (f *fakeNotifier) callList() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return render(f.calls)
}

func render(ns []Notification) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.Action + ":" + n.DedupKey
	}
	return strings.Join(parts, " ")
}

func alwaysFail(err error) func(context.Context, Notification, int) error {
	return func(context.Context, Notification, int) error { return err }
}

var errDown = errors.New("expected 202, got 503 Service Unavailable")

func notification(action, dedup string) Notification {
	return Notification{
		ID: action + "-" + dedup, Action: action, DedupKey: dedup, Scope: "region", Subject: "eu1",
		Summary: "[REGION eu1] logs down", Severity: SeverityCritical, Source: "test",
		Details: map[string]any{"targets": []string{"logs/search@eu1"}}, Created: time.Now().UTC(),
	}
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return s
}

// results collects OnResult calls and when they came.
type results struct {
	mu   sync.Mutex
	list []AttemptResult
	at   []time.Time
}

func (r *results) add(a AttemptResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, a)
	r.at = append(r.at, time.Now())
}

// failingFor is how long ago the first result of notifier ("" for any) came, 0 if none.
func (r *results) failingFor(notifier string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, a := range r.list {
		if notifier == "" || a.Notifier == notifier {
			return time.Since(r.at[i])
		}
	}
	return 0
}

func (r *results) all() []AttemptResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AttemptResult(nil), r.list...)
}

// harness is one outbox on a real store, with fast backoff and captured logs.
type harness struct {
	t       *testing.T
	store   *store.Store
	outbox  *Outbox
	logs    *testkit.Buffer
	results *results
}

func newHarness(t *testing.T, s *store.Store, tweak func(*OutboxOptions), notifiers ...Notifier) *harness {
	t.Helper()
	h := &harness{t: t, store: s, logs: &testkit.Buffer{}, results: &results{}}
	opts := OutboxOptions{
		Store:          s,
		Notifiers:      map[string]Notifier{},
		Logger:         slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff:     20 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
		AttemptTimeout: 2 * time.Second,
		OnResult:       h.results.add,
	}
	for _, n := range notifiers {
		opts.Notifiers[n.Name()] = n
	}
	if tweak != nil {
		tweak(&opts)
	}
	o, err := NewOutbox(opts)
	if err != nil {
		t.Fatalf("NewOutbox: %v", err)
	}
	h.outbox = o
	return h
}

// run starts Run; the returned stop (also run at cleanup) cancels it and waits.
func (h *harness) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.outbox.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run = %v, want nil after cancel", err)
				}
			case <-time.After(5 * time.Second):
				h.t.Errorf("Run still running 5s after cancel")
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

func (h *harness) enqueue(d Delivery) {
	h.t.Helper()
	if err := h.outbox.Enqueue(d); err != nil {
		h.t.Fatalf("Enqueue: %v", err)
	}
}

// stored lists the keys of the outbox bucket as the store has them.
func (h *harness) stored() []string {
	h.t.Helper()
	var keys []string
	err := h.store.ForEach(OutboxBucket, func(key string, _ []byte) error {
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		h.t.Fatalf("store ForEach: %v", err)
	}
	return keys
}

func (h *harness) waitDrained(limit time.Duration) {
	h.t.Helper()
	testkit.WaitFor(h.t, limit, "outbox empty", func() bool { return h.outbox.Pending() == 0 })
	if keys := h.stored(); len(keys) != 0 {
		h.t.Errorf("store still holds %v after the outbox drained", keys)
	}
}

func TestDeliveredOnceAndRemoved(t *testing.T) {
	pd := &fakeNotifier{name: "pd"}
	h := newHarness(t, openStore(t, t.TempDir()), nil, pd)
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "region/eu1"), Notify: []string{"pd"}})

	// Durable before anything is sent.
	if keys := h.stored(); len(keys) != 1 || !strings.HasSuffix(keys[0], "-pd") {
		t.Fatalf("stored after Enqueue: %v, want one entry for pd", keys)
	}
	entries := h.outbox.Entries()
	if len(entries) != 1 || entries[0].Notifier != "pd" || entries[0].DedupKey != "region/eu1" ||
		entries[0].Action != ActionTrigger || entries[0].Attempts != 0 || entries[0].NotificationID != "trigger-region/eu1" {
		t.Fatalf("Entries = %+v", entries)
	}

	h.run()
	h.waitDrained(5 * time.Second)
	if got := pd.acceptedList(); got != "trigger:region/eu1" || pd.callCount() != 1 {
		t.Errorf("pd accepted %q in %d calls, want the trigger once", got, pd.callCount())
	}
	rs := h.results.all()
	if len(rs) != 1 || !rs[0].OK || rs[0].Attempt != 1 || rs[0].Notifier != "pd" || rs[0].DedupKey != "region/eu1" ||
		rs[0].Action != ActionTrigger || rs[0].Fallback || rs[0].Err != nil {
		t.Errorf("OnResult = %+v", rs)
	}
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if got := pd.accepted[0].Details["targets"]; fmt.Sprint(got) != "[logs/search@eu1]" {
		t.Errorf("details arrived as %v", got)
	}
}

// pdNotifier is a tiny PagerDuty Events API v2 client for these tests (the real one
// lives in its own package): 202 is accepted, 429 and 5xx are retried (with
// Retry-After), anything else is permanent.
type pdNotifier struct {
	name, url string
	client    *http.Client
	afterOK   func() // optional: runs after an accepted event, before returning
}

const pdRoutingKey = "R0UT1NGKEY0123456789abcdefABCDEF"

func newPDNotifier(t *testing.T, name, url string) *pdNotifier {
	tr := &http.Transport{}
	if t != nil {
		t.Cleanup(tr.CloseIdleConnections)
	}
	return &pdNotifier{name: name, url: url, client: &http.Client{Transport: tr}}
}

func (p *pdNotifier) Name() string { return p.name }
func (p *pdNotifier) Kind() string { return "pagerduty" }

func (p *pdNotifier) Notify(ctx context.Context, n Notification) error {
	event := map[string]any{"routing_key": pdRoutingKey, "event_action": n.Action, "dedup_key": n.DedupKey}
	if n.Action == ActionTrigger {
		event["payload"] = map[string]any{"summary": n.Summary, "source": n.Source, "severity": n.Severity}
	}
	body, err := json.Marshal(event)
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("post event: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	status := fmt.Errorf("expected 202, got %d", resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusAccepted:
		if p.afterOK != nil {
			p.afterOK()
		}
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			return &RetryAfterError{After: time.Duration(secs) * time.Second, Err: status}
		}
		return status
	default:
		return Permanent(status)
	}
}

func startReceiver(t *testing.T) *pdtest.Receiver {
	t.Helper()
	r, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatalf("pdtest.New: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("receiver Close: %v", err)
		}
	})
	return r
}

// TestRetriesThroughHTTPFaults sends to a real Events API receiver that answers 500
// three times, then 429 with Retry-After: 1, then accepts.
func TestRetriesThroughHTTPFaults(t *testing.T) {
	recv := startReceiver(t)
	recv.SetFault(pdtest.Fault{Status: http.StatusInternalServerError, Count: 3})
	h := newHarness(t, openStore(t, t.TempDir()), func(o *OutboxOptions) {
		next := o.OnResult
		o.OnResult = func(r AttemptResult) {
			if r.Attempt == 3 { // OnResult comes before the next attempt: no race here
				recv.SetFault(pdtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 1})
			}
			next(r)
		}
	}, newPDNotifier(t, "pd", recv.URL()))

	h.enqueue(Delivery{Notification: notification(ActionTrigger, "global"), Notify: []string{"pd"}})
	h.run()
	testkit.WaitFor(t, 5*time.Second, "a 429 recorded", func() bool {
		info := h.outbox.Entries()
		return len(info) == 1 && info[0].Attempts == 4
	})
	info := h.outbox.Entries()
	if !strings.Contains(info[0].LastError, "429") ||
		info[0].NextAttempt.Before(time.Now().Add(500*time.Millisecond)) {
		t.Errorf("Entries during Retry-After = %+v, want 4 attempts, the 429, next try ~1s away", info)
	}
	h.waitDrained(5 * time.Second)

	if n := recv.Count("global", ActionTrigger); n != 1 {
		t.Errorf("receiver accepted the trigger %d times, want once", n)
	}
	if n := recv.Requests(); n != 5 {
		t.Errorf("receiver saw %d requests, want 5 (3×500, 429, 202)", n)
	}
	rs := h.results.all()
	if len(rs) != 5 || !rs[4].OK || rs[4].Attempt != 5 || RetryAfter(rs[3].Err) != time.Second {
		t.Fatalf("results %+v", rs)
	}
	h.results.mu.Lock()
	gap := h.results.at[4].Sub(h.results.at[3])
	h.results.mu.Unlock()
	if gap < 950*time.Millisecond {
		t.Errorf("retried %s after a 429 with Retry-After: 1, want at least 1s", gap)
	}
	logs := h.logs.String()
	for _, want := range []string{`"level":"WARN"`, `"notifier":"pd"`, `"dedup_key":"global"`, `"attempt":3`,
		`"err":"expected 202, got 500"`, `"err":"expected 202, got 429 (retry after 1s)"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, pdRoutingKey) {
		t.Error("logs carry the routing key")
	}
}

func TestPermanentFailureFallsBackAtOnce(t *testing.T) {
	cases := []struct {
		name   string
		notify []string
	}{
		{"400 from the notifier", []string{"pd"}},
		{"unknown notifier", []string{"missing"}},
		{"both", []string{"pd", "missing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := &fakeNotifier{name: "pd", respond: alwaysFail(Permanent(errors.New("expected 202, got 400")))}
			hook := &fakeNotifier{name: "hook"}
			h := newHarness(t, openStore(t, t.TempDir()), nil, pd, hook)
			h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: tc.notify,
				Fallback: []string{"hook"}, FallbackAfter: time.Hour})
			h.run()
			h.waitDrained(5 * time.Second) // an hour's FallbackAfter: only "at once" passes

			if got := hook.acceptedList(); got != "trigger:k" {
				t.Errorf("fallback got %q, want the trigger once", got)
			}
			if slicesContain(tc.notify, "pd") && pd.callCount() != 1 {
				t.Errorf("pd called %d times, want 1: a permanent failure is not retried", pd.callCount())
			}
			var permanent, fallbackOK int
			for _, r := range h.results.all() {
				if r.Permanent && !r.OK && r.Err != nil {
					permanent++
				}
				if r.Fallback && r.OK && r.Notifier == "hook" {
					fallbackOK++
				}
			}
			if permanent != len(tc.notify) || fallbackOK != 1 {
				t.Errorf("results: %d permanent (want %d), %d fallback deliveries (want 1)", permanent, len(tc.notify), fallbackOK)
			}
			logs := h.logs.String()
			if !strings.Contains(logs, `"level":"ERROR","msg":"outbox: notification refused for good`) ||
				!strings.Contains(logs, "falling back") {
				t.Errorf("logs lack the ERROR and the fallback:\n%s", logs)
			}
			if slicesContain(tc.notify, "missing") && !strings.Contains(logs, `expected a notifier named \"missing\"`) {
				t.Errorf("logs do not say the notifier is unknown:\n%s", logs)
			}
		})
	}
}

func slicesContain(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// failFor fails (retryably) until d has passed since the first call.
func failFor(d time.Duration) func(context.Context, Notification, int) error {
	var mu sync.Mutex
	var first time.Time
	return func(context.Context, Notification, int) error {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) < d {
			return errDown
		}
		return nil
	}
}

func TestFallbackAfterRetryingTooLong(t *testing.T) {
	pd := &fakeNotifier{name: "pd", respond: failFor(600 * time.Millisecond)}
	hook := &fakeNotifier{name: "hook"}
	chat := &fakeNotifier{name: "chat"}
	h := newHarness(t, openStore(t, t.TempDir()), nil, pd, hook, chat)
	begin := time.Now()
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd"},
		Fallback: []string{"hook", "chat"}, FallbackAfter: 200 * time.Millisecond})
	h.run()

	testkit.WaitFor(t, 3*time.Second, "the fallbacks delivered", func() bool {
		return hook.acceptedList() != "" && chat.acceptedList() != ""
	})
	if took := time.Since(begin); took < 200*time.Millisecond {
		t.Errorf("fell back after %s, want at least FallbackAfter (200ms)", took)
	}
	if pd.acceptedList() != "" {
		t.Errorf("pd delivered before the fallback; the test's timing is off")
	}
	h.waitDrained(5 * time.Second)
	if pd.acceptedList() != "trigger:k" || hook.acceptedList() != "trigger:k" || chat.acceptedList() != "trigger:k" {
		t.Errorf("accepted: pd %q, hook %q, chat %q; want the trigger once each (primary still delivered)",
			pd.acceptedList(), hook.acceptedList(), chat.acceptedList())
	}
	if pd.callCount() < 4 {
		t.Errorf("pd called %d times in 600ms with 20–50ms backoff; it should have kept retrying", pd.callCount())
	}
}

func TestNoFallbackWhenAnyPrimaryDelivers(t *testing.T) {
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
	chat := &fakeNotifier{name: "chat"}
	hook := &fakeNotifier{name: "hook"}
	h := newHarness(t, openStore(t, t.TempDir()), nil, pd, chat, hook)
	const fallbackAfter = 100 * time.Millisecond
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd", "chat"},
		Fallback: []string{"hook"}, FallbackAfter: fallbackAfter})
	h.run()
	testkit.WaitFor(t, 3*time.Second, "pd failing for 4×FallbackAfter", func() bool {
		return h.results.failingFor("pd") > 4*fallbackAfter && pd.callCount() >= 4
	})
	if chat.acceptedList() != "trigger:k" {
		t.Fatalf("chat accepted %q", chat.acceptedList())
	}
	if hook.callCount() != 0 {
		t.Errorf("fallback called %d times although chat delivered", hook.callCount())
	}
	if n := h.outbox.Pending(); n != 1 {
		t.Errorf("Pending = %d, want pd's entry still retrying", n)
	}
}

// TestFIFOPerKey: a resolve waits for its trigger to the same notifier even while
// the trigger fails; another key and another notifier are not held up.
// TestFIFOPerKey: a resolve never overtakes its trigger: while the trigger is being
// sent, the resolve behind it waits (another key does not). (A trigger that failed is
// not retried once its resolve is queued: coalesce_test.go.)
func TestFIFOPerKey(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	pd := &fakeNotifier{name: "pd", respond: func(_ context.Context, n Notification, _ int) error {
		if n.DedupKey == "A" && n.Action == ActionTrigger {
			close(started)
			<-release
		}
		return nil
	}}
	chat := &fakeNotifier{name: "chat"}
	h := newHarness(t, openStore(t, t.TempDir()), nil, pd, chat)
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd", "chat"}})
	h.run()
	<-started
	h.enqueue(Delivery{Notification: notification(ActionResolve, "A"), Notify: []string{"pd", "chat"}})
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "B"), Notify: []string{"pd"}})
	testkit.WaitFor(t, 5*time.Second, "B accepted while A's trigger is in flight", func() bool {
		return strings.Contains(pd.acceptedList(), "trigger:B")
	})
	if got := pd.callList(); got != "trigger:A trigger:B" {
		t.Errorf("pd calls %q while A's trigger is in flight, want A's resolve to wait", got)
	}
	close(release)
	h.waitDrained(5 * time.Second)
	if got := pd.acceptedList(); got != "trigger:B trigger:A resolve:A" {
		t.Errorf("pd accepted %q, want B first (not blocked by A), then A's trigger, then resolve", got)
	}
	if got := chat.acceptedList(); got != "trigger:A resolve:A" {
		t.Errorf("chat accepted %q, want A's trigger then resolve, not held up by pd", got)
	}
}

func TestEnqueueIsNotBlockedBySending(t *testing.T) {
	release := make(chan struct{})
	slow := &fakeNotifier{name: "slow", respond: func(ctx context.Context, _ Notification, _ int) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	fast := &fakeNotifier{name: "fast"}
	h := newHarness(t, openStore(t, t.TempDir()), nil, slow, fast)
	h.run()
	for i := range 3 {
		h.enqueue(Delivery{Notification: notification(ActionTrigger, fmt.Sprint("slow", i)), Notify: []string{"slow"}})
	}
	testkit.WaitFor(t, 3*time.Second, "slow sends under way", func() bool { return slow.callCount() == 2 })

	begin := time.Now()
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "F"), Notify: []string{"fast"}})
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Enqueue took %s while sends were blocked", took)
	}
	testkit.WaitFor(t, 3*time.Second, "fast delivered beside the blocked slow sends", func() bool {
		return fast.acceptedList() == "trigger:F"
	})
	slow.mu.Lock()
	maxSlow := slow.maxInFlight
	slow.mu.Unlock()
	if maxSlow != maxInFlightPerNotifier || slow.callCount() != 2 {
		t.Errorf("slow: %d in flight at most, %d calls; want %d (the per-notifier bound)", maxSlow, slow.callCount(), maxInFlightPerNotifier)
	}
	close(release)
	h.waitDrained(5 * time.Second)
}

func TestParallelSendsAreBounded(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	respond := func(context.Context, Notification, int) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	}
	var notifiers []Notifier
	var names []string
	for i := range 4 {
		name := fmt.Sprint("n", i)
		notifiers = append(notifiers, &fakeNotifier{name: name, respond: respond})
		names = append(names, name)
	}
	h := newHarness(t, openStore(t, t.TempDir()), nil, notifiers...)
	for i := range 6 {
		h.enqueue(Delivery{Notification: notification(ActionTrigger, fmt.Sprint("k", i)), Notify: names})
	}
	h.run()
	h.waitDrained(10 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if most != maxInFlight {
		t.Errorf("at most %d sends at once, want %d", most, maxInFlight)
	}
}

// TestRestartReplays: entries left by one outbox are delivered, in order, by the
// next one on the same store.
func TestRestartReplays(t *testing.T) {
	s := openStore(t, t.TempDir())
	down := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
	first := newHarness(t, s, nil, down)
	first.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}})
	first.enqueue(Delivery{Notification: notification(ActionTrigger, "B"), Notify: []string{"pd"}})
	stop := first.run()
	testkit.WaitFor(t, 3*time.Second, "failed attempts", func() bool { return down.callCount() >= 2 })
	stop()
	// Queued while nothing delivers (the daemon stopping): the resolve of B behind its
	// trigger, and an update of A.
	first.enqueue(Delivery{Notification: notification(ActionResolve, "B"), Notify: []string{"pd"}})
	if down.acceptedList() != "" || first.outbox.Pending() != 3 {
		t.Fatalf("before restart: accepted %q, pending %d", down.acceptedList(), first.outbox.Pending())
	}

	up := &fakeNotifier{name: "pd"}
	second := newHarness(t, s, nil, up)
	if info := second.outbox.Entries(); len(info) != 3 || info[1].Action != ActionTrigger || info[2].Action != ActionResolve {
		t.Fatalf("replayed entries %+v, want A's trigger, B's trigger, then B's resolve", info)
	}
	if !strings.Contains(second.logs.String(), "replaying") {
		t.Errorf("the replay is not logged")
	}
	second.run()
	second.waitDrained(5 * time.Second)
	// B is over: its trigger is not replayed, its resolve is (the trigger may have
	// arrived before the crash). A is still open: its trigger is.
	got := strings.Fields(up.acceptedList())
	slices.Sort(got) // two lanes: sent side by side
	if strings.Join(got, " ") != "resolve:B trigger:A" {
		t.Errorf("after restart accepted %q, want A's trigger and B's resolve, once each", up.acceptedList())
	}
}

// TestRestartRemembersFallbackState: what decides a fallback survives a restart.
func TestRestartRemembersFallbackState(t *testing.T) {
	const fallbackAfter = 100 * time.Millisecond
	hang := func(ctx context.Context, _ Notification, _ int) error { <-ctx.Done(); return ctx.Err() }
	cases := []struct {
		name              string
		pdBefore, chatBef func(context.Context, Notification, int) error
		before            func(h *harness, pd, chat, hook *fakeNotifier) bool // the state to restart in
		wantHookAfter     int                                                 // fallback deliveries after the restart
	}{
		{
			name:     "a primary delivered: no fallback after restart",
			pdBefore: alwaysFail(errDown), chatBef: nil,
			before: func(h *harness, _, chat, _ *fakeNotifier) bool {
				return chat.acceptedList() != "" && h.outbox.Pending() == 1
			},
			wantHookAfter: 0,
		},
		{
			// chat hangs before the restart, so no fallback can happen then.
			name:     "a primary failed for good: still counts after restart",
			pdBefore: alwaysFail(Permanent(errors.New("400"))), chatBef: hang,
			before: func(h *harness, _, chat, _ *fakeNotifier) bool {
				return chat.callCount() == 1 && h.outbox.Pending() == 1
			},
			wantHookAfter: 1,
		},
		{
			name:     "fallback already enqueued: not again after restart",
			pdBefore: alwaysFail(errDown), chatBef: alwaysFail(errDown),
			before: func(h *harness, _, _, hook *fakeNotifier) bool {
				return hook.acceptedList() != "" && h.outbox.Pending() == 2
			},
			wantHookAfter: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			pd := &fakeNotifier{name: "pd", respond: tc.pdBefore}
			chat := &fakeNotifier{name: "chat", respond: tc.chatBef}
			hook := &fakeNotifier{name: "hook"}
			first := newHarness(t, s, nil, pd, chat, hook)
			first.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd", "chat"},
				Fallback: []string{"hook"}, FallbackAfter: fallbackAfter})
			stop := first.run()
			testkit.WaitFor(t, 3*time.Second, "the state before restart", func() bool { return tc.before(first, pd, chat, hook) })
			stop()

			pd2 := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
			chat2 := &fakeNotifier{name: "chat", respond: alwaysFail(errDown)}
			hook2 := &fakeNotifier{name: "hook"}
			second := newHarness(t, s, nil, pd2, chat2, hook2)
			second.run()
			// What is left fails for well over FallbackAfter after the restart.
			testkit.WaitFor(t, 3*time.Second, "failing for 4×FallbackAfter after restart", func() bool {
				return second.results.failingFor("") > 4*fallbackAfter && len(second.results.all()) >= 4
			})
			if got := len(strings.Fields(hook2.acceptedList())); got != tc.wantHookAfter {
				t.Errorf("fallback delivered %d times after restart, want %d", got, tc.wantHookAfter)
			}
		})
	}
}

func TestFlush(t *testing.T) {
	t.Run("delivers everything and returns", func(t *testing.T) {
		pd := &fakeNotifier{name: "pd", respond: func(_ context.Context, _ Notification, call int) error {
			if call == 1 {
				return errDown
			}
			return nil
		}}
		h := newHarness(t, openStore(t, t.TempDir()), nil, pd)
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}})
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "B"), Notify: []string{"pd"}})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := h.outbox.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		if h.outbox.Pending() != 0 || len(h.stored()) != 0 || len(strings.Fields(pd.acceptedList())) != 2 {
			t.Errorf("after Flush: pending %d, stored %v, accepted %q", h.outbox.Pending(), h.stored(), pd.acceptedList())
		}
	})
	t.Run("includes the fallback", func(t *testing.T) {
		pd := &fakeNotifier{name: "pd", respond: alwaysFail(Permanent(errors.New("400")))}
		hook := &fakeNotifier{name: "hook"}
		h := newHarness(t, openStore(t, t.TempDir()), nil, pd, hook)
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}, Fallback: []string{"hook"}})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := h.outbox.Flush(ctx); err != nil || hook.acceptedList() != "trigger:A" {
			t.Errorf("Flush = %v, fallback accepted %q", err, hook.acceptedList())
		}
	})
	t.Run("says what is left when ctx ends", func(t *testing.T) {
		pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
		h := newHarness(t, openStore(t, t.TempDir()), nil, pd)
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}})
		ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
		defer cancel()
		err := h.outbox.Flush(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 entries still pending") {
			t.Errorf("Flush = %v, want a deadline error counting 1 pending", err)
		}
		if len(h.stored()) != 1 {
			t.Errorf("the undelivered entry left the store")
		}
	})
}

func TestInterruptedSendIsNotAFailure(t *testing.T) {
	started := make(chan struct{}, 1)
	pd := &fakeNotifier{name: "pd", respond: func(ctx context.Context, _ Notification, _ int) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	h := newHarness(t, openStore(t, t.TempDir()), nil, pd)
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}})
	stop := h.run()
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("no send started")
	}
	stop()
	if rs := h.results.all(); len(rs) != 0 {
		t.Errorf("a send cut by shutdown was reported as %+v", rs)
	}
	if info := h.outbox.Entries(); len(info) != 1 || info[0].Attempts != 0 || info[0].Sending {
		t.Errorf("after shutdown Entries = %+v, want the entry untouched", info)
	}
}

func TestUnreadableEntryIsSkippedAndKept(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.Put(OutboxBucket, "00000000000000000000-garbage", "not an entry"); err != nil {
		t.Fatal(err)
	}
	pd := &fakeNotifier{name: "pd"}
	h := newHarness(t, s, nil, pd)
	if !strings.Contains(h.logs.String(), "unreadable entry") || h.outbox.Pending() != 0 {
		t.Errorf("pending %d, logs %s", h.outbox.Pending(), h.logs.String())
	}
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}})
	h.run()
	testkit.WaitFor(t, 3*time.Second, "delivery", func() bool { return h.outbox.Pending() == 0 })
	if keys := h.stored(); len(keys) != 1 || keys[0] != "00000000000000000000-garbage" {
		t.Errorf("stored %v, want only the unreadable entry kept for a human", keys)
	}
}

func TestOutboxRejectsBadInput(t *testing.T) {
	s := openStore(t, t.TempDir())
	if _, err := NewOutbox(OutboxOptions{}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Errorf("NewOutbox without a store = %v", err)
	}
	if _, err := NewOutbox(OutboxOptions{Store: s, MinBackoff: time.Minute, MaxBackoff: time.Second}); err == nil {
		t.Error("NewOutbox with MinBackoff > MaxBackoff succeeded")
	}
	if _, err := NewOutbox(OutboxOptions{Store: s, Notifiers: map[string]Notifier{"x": nil}}); err == nil {
		t.Error("NewOutbox with a nil notifier succeeded")
	}
	h := newHarness(t, s, nil)
	if err := h.outbox.Enqueue(Delivery{Notification: notification(ActionTrigger, "A")}); err == nil ||
		!strings.Contains(err.Error(), "at least one notifier") {
		t.Errorf("Enqueue without notifiers = %v", err)
	}
	bad := notification(ActionTrigger, "A")
	bad.Details = map[string]any{"f": func() {}}
	if err := h.outbox.Enqueue(Delivery{Notification: bad, Notify: []string{"pd"}}); err == nil {
		t.Error("Enqueue of a notification JSON cannot encode succeeded")
	}
	if len(h.stored()) != 0 {
		t.Errorf("rejected deliveries were stored: %v", h.stored())
	}
}

func TestBackoff(t *testing.T) {
	o := &Outbox{minBackoff: time.Second, maxBackoff: time.Minute, jitter: rand.Float64}
	cases := []struct {
		attempt int
		err     error
		base    time.Duration
	}{
		{1, errDown, time.Second},
		{2, errDown, 2 * time.Second},
		{3, errDown, 4 * time.Second},
		{6, errDown, 32 * time.Second},
		{7, errDown, time.Minute},
		{1000, errDown, time.Minute},
		{1, &RetryAfterError{After: 90 * time.Second, Err: errDown}, 90 * time.Second},      // longer: wins
		{3, &RetryAfterError{After: 100 * time.Millisecond, Err: errDown}, 4 * time.Second}, // shorter: backoff
		{1, &RetryAfterError{After: 24 * time.Hour, Err: errDown}, MaxRetryAfter},
	}
	for _, tc := range cases {
		lo, hi := tc.base, tc.base
		if RetryAfter(tc.err) < tc.base {
			lo, hi = time.Duration(float64(tc.base)*0.8), time.Duration(float64(tc.base)*1.2)
		}
		seen := map[time.Duration]bool{}
		for range 50 {
			d := o.backoff(tc.attempt, tc.err)
			if d < lo || d > hi {
				t.Fatalf("backoff(%d, %v) = %s, want within [%s, %s]", tc.attempt, tc.err, d, lo, hi)
			}
			seen[d] = true
		}
		if lo != hi && len(seen) < 10 {
			t.Errorf("backoff(%d) took %d distinct values in 50 draws; the jitter is missing", tc.attempt, len(seen))
		}
	}
}

// The SIGKILL tests re-run this test binary as a child that enqueues one trigger
// and runs an outbox against a pdtest receiver until the parent kills it; TestMain
// sends the child to runOutboxChild.
const (
	childModeEnv = "PICKET_OUTBOX_CHILD" // childBeforeSend or childAfterAccept
	childDirEnv  = "PICKET_OUTBOX_DIR"
	childURLEnv  = "PICKET_OUTBOX_URL"

	childBeforeSend  = "before-send"  // the receiver is down: killed while retrying
	childAfterAccept = "after-accept" // killed after the receiver accepted, before the delete
	childDedupKey    = "killed/child"
)

func runOutboxChild(mode string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := store.Open(os.Getenv(childDirEnv), store.Options{})
	if err != nil {
		log.Error("child: open store", "err", err)
		return 3
	}
	pd := newPDNotifier(nil, "pd", os.Getenv(childURLEnv))
	if mode == childAfterAccept {
		pd.afterOK = func() {
			fmt.Println("accepted")      // the receiver has it; the outbox has not deleted it
			time.Sleep(30 * time.Second) // the parent kills us here
		}
	}
	o, err := NewOutbox(OutboxOptions{Store: s, Notifiers: map[string]Notifier{"pd": pd}, Logger: log,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		log.Error("child: outbox", "err", err)
		return 3
	}
	if err := o.Enqueue(Delivery{Notification: notification(ActionTrigger, childDedupKey), Notify: []string{"pd"}}); err != nil {
		log.Error("child: enqueue", "err", err)
		return 3
	}
	// Enqueue has returned: the entry is durable. Run is bounded if nobody kills us.
	fmt.Println("enqueued")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = o.Run(ctx)
	return 0
}

// child is a running child process and its stdout lines.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stderr *testkit.Buffer
	guard  *time.Timer
}

func startChild(t *testing.T, mode, dir, url string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childDirEnv+"="+dir, childURLEnv+"="+url)
	c := &child{t: t, cmd: cmd, stderr: &testkit.Buffer{}}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	// A child that hangs is killed anyway, so reads of its stdout end.
	c.guard = time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	c.lines = bufio.NewScanner(stdout)
	return c
}

// waitLine reads stdout until the child prints want.
func (c *child) waitLine(want string) {
	c.t.Helper()
	for c.lines.Scan() {
		if c.lines.Text() == want {
			return
		}
	}
	c.kill()
	c.t.Fatalf("child ended without printing %q; stderr:\n%s", want, c.stderr.String())
}

// kill SIGKILLs the child and waits until it is gone (and its flock with it).
func (c *child) kill() {
	c.t.Helper()
	defer c.guard.Stop()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	for c.lines.Scan() { // drain, so Wait does not wait on the pipe
	}
	_ = c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("child was not killed by SIGKILL: %v; stderr:\n%s", c.cmd.ProcessState, c.stderr.String())
	}
}

// restartAndFlush is the next daemon start: a new outbox on the same state dir.
func restartAndFlush(t *testing.T, dir, url string) *harness {
	t.Helper()
	h := newHarness(t, openStore(t, dir), nil, newPDNotifier(t, "pd", url))
	if n := h.outbox.Pending(); n != 1 {
		t.Fatalf("after restart %d entries pending, want the child's one", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := h.outbox.Flush(ctx); err != nil {
		t.Fatalf("Flush after restart: %v", err)
	}
	if keys := h.stored(); len(keys) != 0 {
		t.Errorf("store holds %v after the replay", keys)
	}
	return h
}

func TestKilledBeforeSendIsDeliveredOnceAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	recv := startReceiver(t)
	recv.SetFault(pdtest.Fault{Status: http.StatusServiceUnavailable}) // down until cleared
	dir := t.TempDir()
	c := startChild(t, childBeforeSend, dir, recv.URL())
	c.waitLine("enqueued")
	testkit.WaitFor(t, 5*time.Second, "the child's sends failing", func() bool { return recv.Requests() >= 2 })
	c.kill()
	if n := recv.Count(childDedupKey, ""); n != 0 {
		t.Fatalf("the receiver accepted %d events while down", n)
	}

	recv.ClearFault()
	restartAndFlush(t, dir, recv.URL())
	if n := recv.Count(childDedupKey, ActionTrigger); n != 1 {
		t.Errorf("delivered %d times after the restart, want exactly once", n)
	}
}

// TestKilledAfterAcceptIsDeliveredAtMostTwice shows the documented limit: a crash
// between the receiver's acceptance and the delete sends the entry once more after
// the restart, which the dedup key makes harmless (one open alert).
func TestKilledAfterAcceptIsDeliveredAtMostTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	recv := startReceiver(t)
	dir := t.TempDir()
	c := startChild(t, childAfterAccept, dir, recv.URL())
	c.waitLine("accepted")
	c.kill()
	if n := recv.Count(childDedupKey, ActionTrigger); n != 1 {
		t.Fatalf("before the restart the receiver has %d events, want 1", n)
	}

	restartAndFlush(t, dir, recv.URL())
	if n := recv.Count(childDedupKey, ActionTrigger); n != 2 {
		t.Errorf("delivered %d times in all, want 2: once before the kill, once on replay", n)
	}
	if open := recv.Open(); len(open) != 1 {
		t.Errorf("open alerts %v, want one: the repeat shares the dedup key", open)
	}
}

// faultyStore is the real store with disk errors switched on per key: the outbox's
// answer to a failing disk cannot be provoked otherwise. A commit is all or nothing, as
// the real store's transaction: one refused write fails it.
type faultyStore struct {
	*store.Store
	failPut    func(key string) bool                  // refuses storing an outbox record under key
	failDelete bool                                   // refuses every commit that deletes an outbox record
	seeCommit  func(writes map[string]map[string]any) // sees each commit's writes before they land
}

var errDisk = errors.New("disk full")

func (f *faultyStore) Commit(bucket string, n int, after uint64, fill func(uint64) (map[string]map[string]any, error)) (uint64, error) {
	return f.Store.Commit(bucket, n, after, func(first uint64) (map[string]map[string]any, error) {
		writes, err := fill(first)
		if f.seeCommit != nil {
			f.seeCommit(writes)
		}
		for key, v := range writes[OutboxBucket] {
			if v == nil && f.failDelete || v != nil && f.failPut != nil && f.failPut(key) {
				return nil, errDisk
			}
		}
		return writes, err
	})
}

func TestStoreErrors(t *testing.T) {
	t.Run("a delivery the store refuses: its entries are delivered from memory, so no fallback", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: alwaysFail(Permanent(errors.New("400")))}
		chat := &fakeNotifier{name: "chat"}
		hook := &fakeNotifier{name: "hook"}
		fs := &faultyStore{Store: s, failPut: func(key string) bool { return strings.HasSuffix(key, "-pd") }}
		h := newHarness(t, s, func(o *OutboxOptions) { o.Store = fs }, pd, chat, hook)
		err := h.outbox.Enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd", "chat"},
			Fallback: []string{"hook"}, FallbackAfter: time.Hour})
		if err != nil {
			t.Fatalf("Enqueue = %v, want nil: the entries are held in memory", err)
		}
		if keys := h.stored(); len(keys) != 0 {
			t.Fatalf("stored %v, want none: a delivery's entries are stored in one transaction, all or none", keys)
		}
		h.run()
		h.waitDrained(5 * time.Second)
		if chat.acceptedList() != "trigger:k" || hook.callCount() != 0 {
			t.Errorf("chat got %q, fallback called %d times; want the trigger at chat and no fallback (pd refused, chat delivered)",
				chat.acceptedList(), hook.callCount())
		}
	})
	t.Run("a failed delete: delivered once now, again only after a restart", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd"}
		fs := &faultyStore{Store: s, failDelete: true}
		h := newHarness(t, s, func(o *OutboxOptions) { o.Store = fs }, pd)
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd"}})
		h.run()
		testkit.WaitFor(t, 3*time.Second, "delivery", func() bool { return h.outbox.Pending() == 0 })
		time.Sleep(100 * time.Millisecond) // a resend, if any, would come within backoff
		if pd.callCount() != 1 || len(h.stored()) != 1 || !strings.Contains(h.logs.String(), "deleting a handled entry failed") {
			t.Errorf("calls %d, stored %v; want one call, the entry left in the store, and an ERROR log",
				pd.callCount(), h.stored())
		}
	})
}

// TestFallbackIsStoredWithThePrimarysRefusal: when the last primary fails for good,
// the transaction that records the refusal also holds the fallback, so no crash point
// loses the notification.
func TestFallbackIsStoredWithThePrimarysRefusal(t *testing.T) {
	s := openStore(t, t.TempDir())
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(Permanent(errors.New("400")))}
	hook := &fakeNotifier{name: "hook"}
	var mu sync.Mutex
	var seen []string // at each commit recording pd's refusal: does it hold hook's part?
	fs := &faultyStore{Store: s, seeCommit: func(writes map[string]map[string]any) {
		for _, v := range writes[OutboxBucket] {
			rec, ok := v.(deliveryRecord)
			if !ok || !slices.ContainsFunc(rec.Parts, func(p partRecord) bool { return p.Notifier == "pd" && p.Outcome == partRefused }) {
				continue
			}
			mu.Lock()
			seen = append(seen, fmt.Sprint(slices.ContainsFunc(rec.Parts, func(p partRecord) bool { return p.Notifier == "hook" })))
			mu.Unlock()
		}
	}}
	h := newHarness(t, s, func(o *OutboxOptions) { o.Store = fs }, pd, hook)
	h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd"}, Fallback: []string{"hook"}})
	h.run()
	testkit.WaitFor(t, 3*time.Second, "fallback delivered", func() bool { return hook.acceptedList() == "trigger:k" })
	h.waitDrained(3 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, " ") != "true" {
		t.Errorf("commits recording pd's refusal held hook's part: %v, want [true] (one commit, with the fallback)", seen)
	}
}

// A retry's time is a wall time: after the wall clock steps back, the retry must not
// wait for the length of the step (case 10 of the trust issue, outbox part).
func TestRetrySurvivesBackwardClockStep(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	st := openStore(t, t.TempDir())
	n := &flakyNotifier{fails: 1}
	o, err := NewOutbox(OutboxOptions{Store: st, Notifiers: map[string]Notifier{"pd": n}, Clock: clk,
		Jitter: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(Delivery{Notification: Notification{ID: "n1", Action: ActionTrigger, DedupKey: "k"}, Notify: []string{"pd"}}); err != nil {
		t.Fatal(err)
	}
	o.Step(context.Background()) // first try fails: retry in about 1 s
	clk.Advance(-10 * time.Minute)
	o.Step(context.Background()) // sees the step: the retry is at most its wait away
	clk.Advance(time.Second)
	o.Step(context.Background())
	if got := n.calls(); got != 2 {
		t.Fatalf("one backoff after a 10-minute step back: %d attempts, want the retry (2)", got)
	}
	if o.Pending() != 0 {
		t.Fatalf("pending after the retry: %d", o.Pending())
	}
}

// flakyNotifier fails its first fails calls (retryably), then accepts.
type flakyNotifier struct {
	mu    sync.Mutex
	fails int
	n     int
}

func (f *flakyNotifier) Name() string { return "pd" }
func (f *flakyNotifier) Kind() string { return "webhook" }
func (f *flakyNotifier) Notify(context.Context, Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.n <= f.fails {
		return errors.New("503 from the receiver")
	}
	return nil
}
func (f *flakyNotifier) calls() int { f.mu.Lock(); defer f.mu.Unlock(); return f.n }

// TestEachChangeOfADeliveryIsOneTransaction: a delivery to two notifiers with a fallback
// is one record, and each change of it one commit (before: an entry per notifier, the
// fallback state rewritten onto each sibling, the fallback and its open record in
// writes of their own).
func TestEachChangeOfADeliveryIsOneTransaction(t *testing.T) {
	s := openStore(t, t.TempDir())
	var mu sync.Mutex
	var commits []string // per commit: the buckets it writes, and how many outbox records
	fs := &faultyStore{Store: s, seeCommit: func(writes map[string]map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		commits = append(commits, fmt.Sprintf("outbox:%d open:%d", len(writes[OutboxBucket]), len(writes[FallbackOpenBucket])))
	}}
	check := func(what, want string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(commits, " | "); got != want {
			t.Errorf("%s: commits %q, want %q", what, got, want)
		}
		commits = nil
	}
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
	chat := &fakeNotifier{name: "chat", respond: alwaysFail(Permanent(errors.New("400")))}
	hook := &fakeNotifier{name: "hook"}
	st := newStepper(t, s, pd, chat, hook)
	st.outbox.store = fs
	st.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd", "chat"},
		Fallback: []string{"hook"}, FallbackAfter: time.Minute})
	check("enqueue", "outbox:1 open:0")
	st.outbox.Step(t.Context()) // chat refuses for good, pd fails for now
	check("chat's refusal", "outbox:1 open:0")
	st.clock.Advance(2 * time.Minute)
	st.outbox.Step(t.Context()) // pd again: the fallback, with its open record; hook accepts
	check("the fallback, then hook's acceptance", "outbox:1 open:1 | outbox:1 open:0")
	if keys := st.stored(); len(keys) != 1 || !strings.HasSuffix(keys[0], "-pd") {
		t.Errorf("stored %v, want the one record of the delivery", keys)
	}
}
