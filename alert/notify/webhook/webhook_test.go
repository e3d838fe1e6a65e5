package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/apitest"
	"github.com/picket-dev/picket/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request is what the receiving endpoint saw.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// endpoint is a webhook receiver on loopback that records requests and answers with
// answer (204 when nil).
type endpoint struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	answer   http.HandlerFunc
}

func startEndpoint(t *testing.T, answer http.HandlerFunc) *endpoint {
	t.Helper()
	e := &endpoint{answer: answer}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.requests = append(e.requests, request{r.Method, r.URL.Path, r.Header.Clone(), body})
	e.mu.Unlock()
	if e.answer != nil {
		e.answer(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *endpoint) seen() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.requests...)
}

func newNotifier(t *testing.T, url string, headers map[string]string, log *slog.Logger) *Notifier {
	t.Helper()
	secrets := map[string]config.Secret{}
	for k, v := range headers {
		secrets[k] = config.NewSecret(v)
	}
	cfg := &config.Notifier{Name: "hook", Timeout: 5 * time.Second,
		Webhook: &config.Webhook{URL: config.NewSecret(url), Headers: secrets}}
	return New(cfg, Options{HTTPClient: apitest.Client(t), Logger: log})
}

func trigger() notify.Notification {
	return notify.Notification{
		ID: "n-42", Action: notify.ActionTrigger, DedupKey: "picket/product/logs",
		Scope: "product", Subject: "logs", Summary: "[PRODUCT logs] down in 2 regions",
		Severity: notify.SeverityError, Source: "vantage-fra", Component: "logs",
		Details: map[string]any{"regions": []any{"eu1", "us1"}, "count": 2.0, "nested": map[string]any{"a": "b"}},
		Links:   []notify.Link{{Href: "http://status.example/", Text: "status"}},
		Created: time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC),
	}
}

func TestPostsTheNotificationWithHeaders(t *testing.T) {
	ep := startEndpoint(t, nil)
	n := newNotifier(t, ep.URL+"/hooks/picket", map[string]string{"Authorization": "Bearer s3cr3t", "x-team": "sre"}, nil)
	msg := trigger()
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	seen := ep.seen()
	if len(seen) != 1 {
		t.Fatalf("endpoint saw %d requests, want 1", len(seen))
	}
	r := seen[0]
	checks := map[string][2]string{
		"method":          {r.method, "POST"},
		"path":            {r.path, "/hooks/picket"},
		"Content-Type":    {r.header.Get("Content-Type"), "application/json"},
		"User-Agent":      {r.header.Get("User-Agent"), "picket"},
		"Authorization":   {r.header.Get("Authorization"), "Bearer s3cr3t"},
		"X-Team":          {r.header.Get("X-Team"), "sre"},
		"Idempotency-Key": {r.header.Get("Idempotency-Key"), "n-42"},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s %q, want %q", what, c[0], c[1])
		}
	}
	var got Payload
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body: %v\n%s", err, r.body)
	}
	if got.Version != "1" {
		t.Errorf("version %q, want 1", got.Version)
	}
	if !got.Notification.Created.Equal(msg.Created) {
		t.Errorf("created %s, want %s", got.Notification.Created, msg.Created)
	}
	got.Notification.Created = msg.Created
	if !reflect.DeepEqual(got.Notification, msg) {
		t.Errorf("notification round-trip\n got %+v\nwant %+v", got.Notification, msg)
	}
}

func TestRetryMatrix(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter string
		want       apitest.Outcome
		wantWait   time.Duration
	}{
		{status: 200, want: apitest.Delivered},
		{status: 202, want: apitest.Delivered},
		{status: 204, want: apitest.Delivered},
		{status: 301, want: apitest.Permanent},
		{status: 400, want: apitest.Permanent},
		{status: 401, want: apitest.Permanent},
		{status: 403, want: apitest.Permanent},
		{status: 404, want: apitest.Permanent},
		{status: 408, want: apitest.Retryable},
		{status: 413, want: apitest.Permanent},
		{status: 429, want: apitest.Retryable},
		{status: 429, retryAfter: "12", want: apitest.Retryable, wantWait: 12 * time.Second},
		{status: 500, want: apitest.Retryable},
		{status: 502, want: apitest.Retryable},
		{status: 503, retryAfter: "soon", want: apitest.Retryable},
		{status: 504, want: apitest.Retryable},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status)+tc.retryAfter, func(t *testing.T) {
			ep := startEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, "answer "+strconv.Itoa(tc.status))
			})
			err := newNotifier(t, ep.URL, nil, nil).Notify(t.Context(), trigger())
			if got := apitest.OutcomeOf(err); got != tc.want {
				t.Fatalf("status %d: %s (%v), want %s", tc.status, got, err, tc.want)
			}
			if got := notify.RetryAfter(err); got != tc.wantWait {
				t.Errorf("RetryAfter %s, want %s", got, tc.wantWait)
			}
			var se *notify.StatusError
			if err != nil && (!errors.As(err, &se) || se.Status != tc.status || !strings.Contains(err.Error(), "answer "+strconv.Itoa(tc.status))) {
				t.Errorf("error %v: want the status and the body in it", err)
			}
		})
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	ep := startEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	n := newNotifier(t, ep.URL, nil, nil)
	n.Channel = notify.NewChannel(notify.ChannelSpec{Kind: Kind, Name: n.Name(), Matches: true, Timeout: 200 * time.Millisecond, ChannelOptions: notify.ChannelOptions{HTTPClient: n.HTTP, Logger: n.Log}})
	started := time.Now()
	err := n.Notify(t.Context(), trigger())
	if apitest.OutcomeOf(err) != apitest.Retryable || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %v, want a retryable timeout", err)
	}
	if elapsed := time.Since(started); elapsed > 2*time.Second {
		t.Errorf("Notify took %s, want about 200ms", elapsed)
	}
}

func TestConnectionFailuresAreRetryable(t *testing.T) {
	err := newNotifier(t, "http://"+apitest.ClosedAddr(t)+"/hook", nil, nil).Notify(t.Context(), trigger())
	if apitest.OutcomeOf(err) != apitest.Retryable || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("refused: %v, want a retryable refusal", err)
	}
	drop := startEndpoint(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	err = newNotifier(t, drop.URL, nil, nil).Notify(t.Context(), trigger())
	if apitest.OutcomeOf(err) != apitest.Retryable || !strings.Contains(err.Error(), "connection closed before an answer") {
		t.Fatalf("dropped: %v, want a retryable error", err)
	}
}

func TestUnencodableDetailsArePermanent(t *testing.T) {
	ep := startEndpoint(t, nil)
	msg := trigger()
	msg.Details = map[string]any{"f": func() {}}
	if err := newNotifier(t, ep.URL, nil, nil).Notify(t.Context(), msg); !notify.IsPermanent(err) {
		t.Fatalf("error %v, want permanent", err)
	}
	if len(ep.seen()) != 0 {
		t.Errorf("something was posted")
	}
}

// TestSecretsNeverLeak follows Alertmanager's AssertNotifyLeaksNoSecret: the URL (its
// path, query and user info) and the header values are secrets, and an endpoint that
// echoes the request must not get them into an error or a log line.
func TestSecretsNeverLeak(t *testing.T) {
	const marker = "LEAKMARKERwebhook0123"
	echo := startEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString(r.Method + " " + r.URL.String() + "\n")
		r.Header.Write(&b)
		status := http.StatusBadRequest
		if token := r.URL.Query().Get("token"); token != "" {
			b.WriteString("unknown token " + token + "\n")
		}
		if r.URL.Query().Get("mode") == "5xx" {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, b.String(), status)
	})
	log, logs := apitest.Logger()
	headers := map[string]string{"Authorization": "Bearer " + marker, "X-Token": marker + "-2"}
	urls := map[string]string{
		"400 echoing path and headers": echo.URL + "/hook/" + marker,
		"503 echoing the query":        echo.URL + "/hook?token=" + marker + "&mode=5xx",
		"400 echoing a query value":    echo.URL + "/hook?mode=x&token=" + marker,
		"refused":                      "http://" + apitest.ClosedAddr(t) + "/hook/" + marker,
		"user info":                    "http://user:" + marker + "@" + apitest.ClosedAddr(t) + "/",
		"unparsable":                   "http://[::1/" + marker,
	}
	for name, url := range urls {
		err := newNotifier(t, url, headers, log).Notify(t.Context(), trigger())
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("%s: error carries a secret: %v", name, err)
		}
	}
	if seen := echo.seen(); len(seen) != 3 || !strings.Contains(seen[0].header.Get("Authorization"), marker) {
		t.Fatalf("the echoing endpoint saw %d requests; the test proves nothing unless the secrets reached it", len(seen))
	}
	if !strings.Contains(logs.String(), "notification failed") || strings.Contains(logs.String(), marker) {
		t.Errorf("logs lack failures or carry a secret:\n%s", logs.String())
	}
}

// TestDefaultClient: with no client injected, the notifier uses its own, which does not
// follow redirects (a 302 would turn the POST into a GET elsewhere).
func TestDefaultClient(t *testing.T) {
	target := startEndpoint(t, nil)
	redirecting := startEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	})
	cfg := &config.Notifier{Name: "hook", Webhook: &config.Webhook{URL: config.NewSecret(redirecting.URL)}}
	n := New(cfg, Options{})
	t.Cleanup(n.HTTP.CloseIdleConnections)
	err := n.Notify(t.Context(), trigger())
	if !notify.IsPermanent(err) || !strings.Contains(err.Error(), "302") {
		t.Fatalf("error %v, want a permanent 302", err)
	}
	if len(target.seen()) != 0 {
		t.Errorf("the redirect was followed")
	}
	if n.Name() != "hook" || n.Kind() != "webhook" {
		t.Errorf("Name %q Kind %q", n.Name(), n.Kind())
	}
}
