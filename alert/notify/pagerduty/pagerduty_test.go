package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/apitest"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "R0UT1NGKEY0123456789abcdefABCDEF"

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

func newNotifier(t *testing.T, eventsURL, key string, log *slog.Logger) *Notifier {
	t.Helper()
	cfg := &config.Notifier{
		Name:      "highsev",
		Timeout:   5 * time.Second,
		PagerDuty: &config.PagerDuty{RoutingKey: config.NewSecret(key), EventsURL: eventsURL},
	}
	return New(cfg, Options{HTTPClient: apitest.Client(t), Logger: log})
}

func trigger() notify.Notification {
	return notify.Notification{
		ID:        "n1",
		Action:    notify.ActionTrigger,
		DedupKey:  "picket/region/eu1",
		Scope:     "region",
		Subject:   "eu1",
		Summary:   "[REGION eu1] 3 of 4 products down",
		Severity:  notify.SeverityCritical,
		Source:    "vantage-fra",
		Component: "web",
		Group:     "eu1",
		Class:     "checkout",
		Details: map[string]any{
			"matrix":  map[string]map[string]string{"web": {"eu1": "down", "us1": "up"}},
			"targets": []map[string]any{{"target": "web/checkout@eu1", "status": "down", "error": "connection refused", "since": "2025-01-02T03:04:05Z"}},
			"count":   3,
		},
		Links:   []notify.Link{{Href: "http://status.example/incidents/1", Text: "timeline"}, {Href: "http://status.example/", Text: "status"}},
		Images:  []notify.Image{{Src: "https://status.example/screenshots/a.png", Href: "https://status.example/screenshots/a.png", Alt: "Screenshot of web/checkout@eu1"}},
		Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)),
	}
}

func resolve(dedupKey string) notify.Notification {
	return notify.Notification{ID: "n2", Action: notify.ActionResolve, DedupKey: dedupKey, Summary: "[REGION eu1] recovered"}
}

func TestTriggerThenResolve(t *testing.T) {
	r := startReceiver(t)
	n := newNotifier(t, r.BaseURL(), testKey, nil)
	msg := trigger()
	if n.Name() != "highsev" || n.Kind() != "pagerduty" {
		t.Errorf("Name %q Kind %q", n.Name(), n.Kind())
	}

	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	events := r.Events()
	if len(events) != 1 {
		t.Fatalf("receiver has %d events after trigger, want 1", len(events))
	}
	checkTrigger(t, events[0], msg)
	if _, open := r.OpenFor(testKey)[msg.DedupKey]; !open {
		t.Fatalf("alert %s not open after trigger: %v", msg.DedupKey, r.Open())
	}

	if err := n.Notify(t.Context(), resolve(msg.DedupKey)); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	events = r.Events()
	if len(events) != 2 || events[1].Action != pdtest.ActionResolve || events[1].DedupKey != msg.DedupKey {
		t.Fatalf("events after resolve: %+v, want a resolve of %s", events, msg.DedupKey)
	}
	if got := jsonKeys(t, events[1].Raw); !reflect.DeepEqual(got, []string{"dedup_key", "event_action", "routing_key"}) {
		t.Errorf("resolve sent members %v, want only routing_key, event_action, dedup_key (raw %s)", got, events[1].Raw)
	}
	if open := r.Open(); len(open) != 0 {
		t.Errorf("alerts still open after resolve: %v", open)
	}
}

func checkTrigger(t *testing.T, ev pdtest.Event, msg notify.Notification) {
	t.Helper()
	p := ev.Payload
	want := pdtest.Payload{
		Summary: msg.Summary, Source: msg.Source, Severity: msg.Severity, Timestamp: "2025-01-02T02:04:05Z",
		Component: msg.Component, Group: msg.Group, Class: msg.Class,
	}
	p.CustomDetails = nil
	if !reflect.DeepEqual(p, want) {
		t.Errorf("payload\n got %+v\nwant %+v", p, want)
	}
	if ev.RoutingKey != testKey || ev.Action != "trigger" || ev.DedupKey != msg.DedupKey {
		t.Errorf("routing_key/event_action/dedup_key = %q/%q/%q", ev.RoutingKey, ev.Action, ev.DedupKey)
	}
	if ev.Client != "Picket" || ev.ClientURL != msg.Links[0].Href {
		t.Errorf("client %q client_url %q, want Picket and the first link", ev.Client, ev.ClientURL)
	}
	var links []notify.Link
	for _, raw := range ev.Links {
		var l notify.Link
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("link %s: %v", raw, err)
		}
		links = append(links, l)
	}
	if !reflect.DeepEqual(links, msg.Links) {
		t.Errorf("links %+v, want %+v", links, msg.Links)
	}
	var images []notify.Image
	for _, raw := range ev.Images {
		var im notify.Image
		if err := json.Unmarshal(raw, &im); err != nil {
			t.Fatalf("image %s: %v", raw, err)
		}
		images = append(images, im)
	}
	if !reflect.DeepEqual(images, msg.Images) {
		t.Errorf("images %+v, want %+v", images, msg.Images)
	}
	// custom_details round-trip: what PagerDuty got decodes to what the details encode to.
	if got, want := decodeAny(t, ev.Payload.CustomDetails), roundTrip(t, msg.Details); !reflect.DeepEqual(got, want) {
		t.Errorf("custom_details\n got %v\nwant %v", got, want)
	}
}

func TestSummaryCutAt1024Characters(t *testing.T) {
	r := startReceiver(t)
	n := newNotifier(t, r.BaseURL(), testKey, nil)
	cases := []struct {
		name, summary, want string
	}{
		{"exactly 1024 kept", strings.Repeat("é", 1024), strings.Repeat("é", 1024)},
		{"1025 cut", strings.Repeat("é", 1025), strings.Repeat("é", 1023) + "…"},
		{"5000 cut", strings.Repeat("x", 5000), strings.Repeat("x", 1023) + "…"},
		{"blank gets a stand-in", "  ", "Picket incident picket/region/eu1"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := trigger()
			msg.Summary = tc.summary
			if err := n.Notify(t.Context(), msg); err != nil {
				t.Fatalf("Notify: %v", err) // pdtest answers 400 to a summary over 1024
			}
			got := r.Events()[i].Payload.Summary
			if got != tc.want {
				t.Errorf("summary of %d characters, want %d: %.40q…", utf8.RuneCountInString(got), utf8.RuneCountInString(tc.want), got)
			}
		})
	}
}

func TestEventsURL(t *testing.T) {
	r := startReceiver(t)
	for _, eventsURL := range []string{r.BaseURL(), r.URL(), r.URL() + "/", r.BaseURL() + "/"} {
		n := newNotifier(t, eventsURL, testKey, nil)
		if err := n.Notify(t.Context(), trigger()); err != nil {
			t.Errorf("events_url %s: %v", eventsURL, err)
		}
	}
	if got := len(r.Events()); got != 4 {
		t.Errorf("receiver accepted %d events, want 4", got)
	}
}

func TestEndpointBase(t *testing.T) {
	cases := map[string]string{
		"": "https://events.pagerduty.com",
		"https://events.pagerduty.com/v2/enqueue": "https://events.pagerduty.com",
		"https://events.eu.pagerduty.com/":        "https://events.eu.pagerduty.com",
		"http://127.0.0.1:8080/v2/enqueue/":       "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/pd/v2/enqueue":     "http://127.0.0.1:8080/pd",
	}
	for in, want := range cases {
		if got := EndpointBase(in); got != want {
			t.Errorf("EndpointBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetryMatrix(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter time.Duration
		want       apitest.Outcome
		wantText   string
	}{
		{status: 200, want: apitest.Delivered},
		{status: 202, want: apitest.Delivered},
		{status: 400, want: apitest.Permanent, wantText: "injected fault (pdtest)"},
		{status: 401, want: apitest.Permanent},
		{status: 403, want: apitest.Permanent},
		{status: 404, want: apitest.Permanent},
		{status: 408, want: apitest.Retryable},
		{status: 413, want: apitest.Permanent},
		{status: 429, want: apitest.Retryable, wantText: "throttle exceeded"},
		{status: 429, retryAfter: 7 * time.Second, want: apitest.Retryable},
		{status: 500, want: apitest.Retryable},
		{status: 502, want: apitest.Retryable},
		{status: 503, want: apitest.Retryable},
		{status: 503, retryAfter: 3 * time.Second, want: apitest.Retryable},
		{status: 504, want: apitest.Retryable},
	}
	r := startReceiver(t)
	n := newNotifier(t, r.BaseURL(), testKey, nil)
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status)+"/retry-after-"+tc.retryAfter.String(), func(t *testing.T) {
			r.SetFault(pdtest.Fault{Status: tc.status, RetryAfter: tc.retryAfter, Count: 1})
			err := n.Notify(t.Context(), trigger())
			if got := apitest.OutcomeOf(err); got != tc.want {
				t.Fatalf("status %d: %s (%v), want %s", tc.status, got, err, tc.want)
			}
			if got := notify.RetryAfter(err); got != tc.retryAfter {
				t.Errorf("RetryAfter = %s, want %s", got, tc.retryAfter)
			}
			if err == nil {
				return
			}
			if msg := err.Error(); !strings.Contains(msg, "pagerduty highsev") || !strings.Contains(msg, http.StatusText(tc.status)) ||
				!strings.Contains(msg, tc.wantText) {
				t.Errorf("message %q: want the notifier, the status and %q", msg, tc.wantText)
			}
			var se *notify.StatusError
			if !errors.As(err, &se) || se.Status != tc.status {
				t.Errorf("error %v does not carry status %d", err, tc.status)
			}
		})
	}
}

func TestInvalidEventIsPermanentWithTheAPIErrors(t *testing.T) {
	r := startReceiver(t)
	n := newNotifier(t, r.BaseURL(), testKey, nil)
	msg := trigger()
	msg.DedupKey = strings.Repeat("k", 300)
	err := n.Notify(t.Context(), msg)
	if !notify.IsPermanent(err) || !strings.Contains(err.Error(), "'dedup_key' is too long") {
		t.Fatalf("error %v, want a permanent one quoting PagerDuty's error list", err)
	}
}

func TestRejectedBeforeSending(t *testing.T) {
	r := startReceiver(t)
	cases := map[string]func() (*Notifier, notify.Notification){
		"unknown action": func() (*Notifier, notify.Notification) {
			m := trigger()
			m.Action = "acknowledge"
			return newNotifier(t, r.BaseURL(), testKey, nil), m
		},
		"resolve without dedup key": func() (*Notifier, notify.Notification) {
			return newNotifier(t, r.BaseURL(), testKey, nil), resolve("")
		},
		"details that do not encode": func() (*Notifier, notify.Notification) {
			m := trigger()
			m.Details = map[string]any{"bad": make(chan int)}
			return newNotifier(t, r.BaseURL(), testKey, nil), m
		},
		"not a pagerduty config": func() (*Notifier, notify.Notification) {
			return New(&config.Notifier{Name: "chat", Slack: &config.Slack{}}, Options{HTTPClient: apitest.Client(t)}), trigger()
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			n, msg := build()
			if err := n.Notify(t.Context(), msg); !notify.IsPermanent(err) {
				t.Errorf("error %v, want permanent", err)
			}
		})
	}
	if got := r.Requests(); got != 0 {
		t.Errorf("receiver saw %d requests, want none", got)
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	r := startReceiver(t)
	r.SetFault(pdtest.Fault{Delay: 5 * time.Second})
	t.Run("config timeout", func(t *testing.T) {
		n := newNotifier(t, r.BaseURL(), testKey, nil)
		n.Channel = notify.NewChannel(notify.ChannelSpec{Kind: Kind, Name: n.Name(), Matches: true, Timeout: 200 * time.Millisecond, ChannelOptions: notify.ChannelOptions{HTTPClient: n.HTTP, Logger: n.Log}})
		checkTimedOut(t, func() error { return n.Notify(t.Context(), trigger()) })
	})
	t.Run("caller deadline", func(t *testing.T) {
		n := newNotifier(t, r.BaseURL(), testKey, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		checkTimedOut(t, func() error { return n.Notify(ctx, trigger()) })
	})
}

func checkTimedOut(t *testing.T, notifyOnce func() error) {
	t.Helper()
	started := time.Now()
	err := notifyOnce()
	elapsed := time.Since(started)
	if apitest.OutcomeOf(err) != apitest.Retryable || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %v, want a retryable timeout", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Notify returned after %s, want about 200ms", elapsed)
	}
}

func TestConnectionFailuresAreRetryable(t *testing.T) {
	r := startReceiver(t)
	t.Run("refused", func(t *testing.T) {
		n := newNotifier(t, "http://"+apitest.ClosedAddr(t), testKey, nil)
		err := n.Notify(t.Context(), trigger())
		if apitest.OutcomeOf(err) != apitest.Retryable || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("error %v, want a retryable refusal", err)
		}
	})
	t.Run("dropped", func(t *testing.T) {
		r.SetFault(pdtest.Fault{Close: true, Count: 1})
		n := newNotifier(t, r.BaseURL(), testKey, nil)
		if err := n.Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Retryable {
			t.Fatalf("error %v, want retryable", err)
		}
	})
}

// closedAddr is a loopback address nothing listens on any more.
// TestForeignAnswers covers answers that are not the Events API's: a proxy's HTML page,
// an empty 202, a redirect.
func TestForeignAnswers(t *testing.T) {
	cases := []struct {
		name     string
		handler  http.HandlerFunc
		want     apitest.Outcome
		wantText string
	}{
		{"html 502", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html>\n<body>Bad   gateway</body>"+strings.Repeat("x", 1000))
		}, apitest.Retryable, "<html> <body>Bad gateway</body>"},
		{"empty 202", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202) }, apitest.Delivered, ""},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		}, apitest.Permanent, "302"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			err := newNotifier(t, srv.URL, testKey, nil).Notify(t.Context(), trigger())
			if apitest.OutcomeOf(err) != tc.want || (err != nil && !strings.Contains(err.Error(), tc.wantText)) {
				t.Fatalf("error %v, want %s quoting %q", err, tc.want, tc.wantText)
			}
			if err != nil && len(err.Error()) > 400 {
				t.Errorf("message of %d bytes, want the body cut: %s", len(err.Error()), err)
			}
		})
	}
}

func TestUserAgent(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.Header.Get("User-Agent"))
		mu.Unlock()
		w.WriteHeader(202)
		io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"k"}`)
	}))
	defer srv.Close()
	if err := newNotifier(t, srv.URL, testKey, nil).Notify(t.Context(), trigger()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(agents, []string{"picket"}) {
		t.Errorf("User-Agent %q, want picket", agents)
	}
}

// TestRoutingKeyNeverLeaks follows Alertmanager's AssertNotifyLeaksNoSecret: in every
// failure, no error and no log line carries the routing key, even when the receiver
// echoes the request.
func TestRoutingKeyNeverLeaks(t *testing.T) {
	const marker = "LEAKMARKER0123456789abcdefLEAKMK" // 32 characters, as PagerDuty requires
	log, logs := apitest.Logger()
	r := startReceiver(t)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": string(body), "errors": []string{"bad key " + marker}})
	}))
	defer echo.Close()

	failures := map[string]func() error{
		"echoing 400": func() error { return newNotifier(t, echo.URL, marker, log).Notify(t.Context(), trigger()) },
		"refused": func() error {
			return newNotifier(t, "http://"+apitest.ClosedAddr(t), marker, log).Notify(t.Context(), trigger())
		},
	}
	for _, f := range []pdtest.Fault{{Status: 400}, {Status: 429, RetryAfter: time.Second}, {Status: 500}, {Status: 503}, {Close: true}, {Delay: 2 * time.Second}} {
		failures["fault "+apitest.MustJSON(t, f)] = func() error {
			r.SetFault(f)
			defer r.ClearFault()
			n := newNotifier(t, r.BaseURL(), marker, log)
			n.Channel = notify.NewChannel(notify.ChannelSpec{Kind: Kind, Name: n.Name(), Matches: true, Timeout: 100 * time.Millisecond, ChannelOptions: notify.ChannelOptions{HTTPClient: n.HTTP, Logger: n.Log}})
			return n.Notify(t.Context(), trigger())
		}
	}
	for name, fail := range failures {
		err := fail()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("%s: error carries the routing key: %v", name, err)
		}
	}
	// A success too, so that the receiver holds the key and the payload can be checked.
	msg := trigger()
	if err := newNotifier(t, r.BaseURL(), marker, log).Notify(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), marker) {
		t.Errorf("logs carry the routing key:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "notification failed") {
		t.Errorf("no failure was logged, the log check proves nothing:\n%s", logs.String())
	}
	events := r.Events()
	last := events[len(events)-1]
	if last.RoutingKey != marker {
		t.Fatalf("receiver got routing key %q, want the marker (else this test proves nothing)", last.RoutingKey)
	}
	if strings.Contains(string(last.Payload.CustomDetails), marker) || strings.Contains(last.Payload.Summary, marker) {
		t.Errorf("payload carries the routing key: %s", last.Raw)
	}
}

func jsonKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func decodeAny(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

func roundTrip(t *testing.T, v any) any { return decodeAny(t, []byte(apitest.MustJSON(t, v))) }
