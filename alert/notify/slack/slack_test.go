package slack

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// hookPath is the shape of a Slack webhook path; its last part is the credential.
const hookPath = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"

// request is what the fake Slack saw.
type request struct {
	method, path, userAgent, contentType string
	body                                 []byte
}

// fakeSlack is an incoming-webhook endpoint on loopback that records requests and
// answers with answer (Slack's own 200 "ok" when nil).
type fakeSlack struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	answer   http.HandlerFunc
}

func startSlack(t *testing.T, answer http.HandlerFunc) *fakeSlack {
	t.Helper()
	f := &fakeSlack{answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, request{r.Method, r.URL.Path, r.UserAgent(), r.Header.Get("Content-Type"), body})
	f.mu.Unlock()
	if f.answer != nil {
		f.answer(w, r)
		return
	}
	io.WriteString(w, "ok")
}

func (f *fakeSlack) seen() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func newNotifier(t *testing.T, url string, log *slog.Logger) *Notifier {
	t.Helper()
	cfg := &config.Notifier{Name: "chat", Timeout: 5 * time.Second,
		Slack: &config.Slack{WebhookURL: config.NewSecret(url), Channel: "#ops"}}
	return New(cfg, Options{HTTPClient: apitest.Client(t), Logger: log})
}

func trigger() notify.Notification {
	return notify.Notification{
		ID: "n1", Action: notify.ActionTrigger, DedupKey: "picket/region/eu1",
		Scope: "region", Subject: "eu1", Summary: "[REGION eu1] 2 of 3 products down",
		Severity: notify.SeverityCritical, Source: "vantage-fra", Group: "eu1",
		Details: map[string]any{
			"matrix": map[string]map[string]string{
				"web":     {"eu1": "down", "us1": "up", "ap1": "up"},
				"logs":    {"eu1": "degraded", "us1": "up"},
				"metrics": {"eu1": "down", "us1": "up", "ap1": "pending"},
			},
			"targets": []map[string]any{
				{"target": "web/checkout@eu1", "status": "down", "error": "connect: connection refused <!channel>", "since": "2025-01-02T03:04:05Z"},
				{"target": "logs/search@eu1", "status": "degraded", "error": "took 4.2s, want < 2s", "since": time.Date(2025, 1, 2, 3, 5, 0, 0, time.UTC)},
			},
		},
		Links:   []notify.Link{{Href: "http://status.example/incidents/1", Text: "timeline"}, {Href: "http://status.example/", Text: "status page"}},
		Created: time.Date(2025, 1, 2, 3, 6, 0, 0, time.UTC),
	}
}

func TestTriggerPostsABlockKitMessage(t *testing.T) {
	slack := startSlack(t, nil)
	n := newNotifier(t, slack.URL+hookPath, nil)
	if err := n.Notify(t.Context(), trigger()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if n.Name() != "chat" || n.Kind() != "slack" {
		t.Errorf("Name %q Kind %q", n.Name(), n.Kind())
	}
	seen := slack.seen()
	if len(seen) != 1 {
		t.Fatalf("Slack saw %d requests, want 1", len(seen))
	}
	r := seen[0]
	if r.method != http.MethodPost || r.path != hookPath || r.userAgent != "picket" || r.contentType != "application/json" {
		t.Errorf("request %s %s UA %q type %q, want POST %s UA picket, JSON", r.method, r.path, r.userAgent, r.contentType, hookPath)
	}
	var msg Message
	if err := json.Unmarshal(r.body, &msg); err != nil {
		t.Fatalf("body is not a message: %v\n%s", err, r.body)
	}
	if msg.Text != "🔴 [REGION eu1] 2 of 3 products down (critical)" || msg.Channel != "#ops" {
		t.Errorf("text %q channel %q", msg.Text, msg.Channel)
	}
	wantTypes := []string{"header", "section", "section", "section", "context"}
	if got := blockTypes(msg); strings.Join(got, ",") != strings.Join(wantTypes, ",") {
		t.Fatalf("blocks %v, want %v", got, wantTypes)
	}
	if got := msg.Blocks[0].Text; got.Type != "plain_text" || got.Text != "🔴 [REGION eu1] 2 of 3 products down" {
		t.Errorf("header %+v", got)
	}
	facts := fieldTexts(msg.Blocks[1])
	for _, want := range []string{"*Severity*\ncritical", "*Scope*\nregion eu1", "*Source*\nvantage-fra", "*Region*\neu1"} {
		if !strings.Contains(facts, want) {
			t.Errorf("facts %q lack %q", facts, want)
		}
	}
	matrix := "```\n" +
		"         ap1  eu1  us1\n" +
		"logs          ⚠️   ✅ \n" +
		"metrics  ❔   ❌   ✅ \n" +
		"web      ✅   ❌   ✅ \n" +
		"```"
	if got := msg.Blocks[2].Text.Text; !strings.Contains(got, matrix) {
		t.Errorf("matrix section\n%s\nwant it to hold\n%s", got, matrix)
	}
	targets := msg.Blocks[3].Text.Text
	for _, want := range []string{
		"*Affected targets* (2)",
		"• ❌ `web/checkout@eu1` down since 2025-01-02 03:04Z: connect: connection refused &lt;!channel&gt;",
		"• ⚠️ `logs/search@eu1` degraded since 2025-01-02 03:05Z: took 4.2s, want &lt; 2s",
	} {
		if !strings.Contains(targets, want) {
			t.Errorf("targets section\n%s\nlacks %q", targets, want)
		}
	}
	if got := msg.Blocks[4].Elements[0].Text; got != "<http://status.example/incidents/1|timeline> · <http://status.example/|status page> · dedup key `picket/region/eu1`" {
		t.Errorf("footer %q", got)
	}
}

// TestDetailsFromJSON: the outbox stores notifications as JSON, so details come back
// as map[string]any and []any; they must render as the typed ones do.
func TestDetailsFromJSON(t *testing.T) {
	typed := trigger()
	raw, err := json.Marshal(typed)
	if err != nil {
		t.Fatal(err)
	}
	var decoded notify.Notification
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	if _, ok := decoded.Details["matrix"].(map[string]any); !ok {
		t.Fatalf("decoded matrix is %T, the test assumes map[string]any", decoded.Details["matrix"])
	}
	want, got := apitest.MustJSON(t, BuildMessage(typed, "")), apitest.MustJSON(t, BuildMessage(decoded, ""))
	if want != got {
		t.Errorf("decoded details render differently:\n got %s\nwant %s", got, want)
	}
}

func TestResolveIsShortAndGreen(t *testing.T) {
	msg := trigger()
	msg.Action = notify.ActionResolve
	m := BuildMessage(msg, "")
	if m.Text != "✅ Resolved: [REGION eu1] 2 of 3 products down" {
		t.Errorf("text %q", m.Text)
	}
	if got := strings.Join(blockTypes(m), ","); got != "header,section,context" {
		t.Errorf("blocks %s, want header,section,context", got)
	}
	if facts := fieldTexts(m.Blocks[1]); strings.Contains(facts, "Severity") {
		t.Errorf("a resolve shows a severity: %q", facts)
	}
}

func TestMessageStaysWithinSlackLimits(t *testing.T) {
	msg := trigger()
	msg.Summary = strings.Repeat("long summary ", 100)
	matrix := map[string]map[string]string{}
	var targets []any
	for p := range 60 {
		row := map[string]string{}
		for r := range 30 {
			row["region-with-a-long-name-"+strconv.Itoa(r)] = "down"
		}
		matrix["product-"+strconv.Itoa(p)] = row
		targets = append(targets, map[string]any{"target": "t" + strconv.Itoa(p), "status": "down", "error": strings.Repeat("& ", 500)})
	}
	msg.Details = map[string]any{"matrix": matrix, "targets": targets}
	m := BuildMessage(msg, "")
	if n := runes(m.Blocks[0].Text.Text); n > maxHeaderRunes {
		t.Errorf("header of %d characters, Slack allows %d", n, maxHeaderRunes)
	}
	if len(m.Blocks) != 5 {
		t.Fatalf("blocks %v, want the matrix and targets kept (cut)", blockTypes(m))
	}
	for i, b := range m.Blocks[1:] {
		if b.Text != nil && runes(b.Text.Text) > maxSectionRunes {
			t.Errorf("block %d of %d characters, Slack allows %d", i+1, runes(b.Text.Text), maxSectionRunes)
		}
	}
	if got := m.Blocks[2].Text.Text; !strings.Contains(got, "more products") || !strings.Contains(got, "18 more regions not shown") ||
		strings.Count(got, "```") != 2 {
		t.Errorf("cut matrix does not say what it hides or lost its fences:\n%s", got)
	}
	if got := m.Blocks[3].Text.Text; !strings.HasSuffix(got, "… and "+strconv.Itoa(60-strings.Count(got, "\n• "))+" more") {
		t.Errorf("targets do not say what they hide:\n%s", got)
	}
}

func TestRetryMatrix(t *testing.T) {
	cases := []struct {
		status     int
		body       string
		retryAfter string
		want       apitest.Outcome
		wantWait   time.Duration
	}{
		{status: 200, body: "ok", want: apitest.Delivered},
		{status: 202, want: apitest.Delivered},
		{status: 400, body: "invalid_payload", want: apitest.Permanent},
		{status: 401, want: apitest.Permanent},
		{status: 403, body: "action_prohibited", want: apitest.Permanent},
		{status: 404, body: "no_service", want: apitest.Permanent},
		{status: 408, want: apitest.Retryable},
		{status: 413, want: apitest.Permanent},
		{status: 429, body: "rate_limited", want: apitest.Retryable},
		{status: 429, body: "rate_limited", retryAfter: "30", want: apitest.Retryable, wantWait: 30 * time.Second},
		{status: 500, want: apitest.Retryable},
		{status: 502, want: apitest.Retryable},
		{status: 503, retryAfter: time.Now().Add(time.Hour + time.Minute).UTC().Format(http.TimeFormat), want: apitest.Retryable, wantWait: time.Hour},
		{status: 504, want: apitest.Retryable},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status)+tc.retryAfter, func(t *testing.T) {
			slack := startSlack(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			err := newNotifier(t, slack.URL+hookPath, nil).Notify(t.Context(), trigger())
			if got := apitest.OutcomeOf(err); got != tc.want {
				t.Fatalf("status %d: %s (%v), want %s", tc.status, got, err, tc.want)
			}
			if got := notify.RetryAfter(err); got != tc.wantWait {
				t.Errorf("RetryAfter %s, want %s", got, tc.wantWait)
			}
			var se *notify.StatusError
			if err != nil && (!errors.As(err, &se) || se.Status != tc.status || !strings.Contains(err.Error(), tc.body)) {
				t.Errorf("error %v: want status %d and body %q in it", err, tc.status, tc.body)
			}
		})
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	slack := startSlack(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	n := newNotifier(t, slack.URL+hookPath, nil)
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

func TestConnectionRefusedIsRetryable(t *testing.T) {
	err := newNotifier(t, "http://"+apitest.ClosedAddr(t)+hookPath, nil).Notify(t.Context(), trigger())
	if apitest.OutcomeOf(err) != apitest.Retryable || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v, want a retryable refusal", err)
	}
}

func TestRejectedBeforeSending(t *testing.T) {
	slack := startSlack(t, nil)
	bad := trigger()
	bad.Action = "acknowledge"
	if err := newNotifier(t, slack.URL+hookPath, nil).Notify(t.Context(), bad); !notify.IsPermanent(err) {
		t.Errorf("unknown action: %v, want permanent", err)
	}
	notSlack := New(&config.Notifier{Name: "hook", Webhook: &config.Webhook{}}, Options{HTTPClient: apitest.Client(t)})
	if err := notSlack.Notify(t.Context(), trigger()); !notify.IsPermanent(err) {
		t.Errorf("webhook config: %v, want permanent", err)
	}
	if n := len(slack.seen()); n != 0 {
		t.Errorf("Slack saw %d requests, want none", n)
	}
}

// TestWebhookURLNeverLeaks follows Alertmanager's AssertNotifyLeaksNoSecret: the URL is
// the credential, and receivers, proxies and Go's own errors like to quote it.
func TestWebhookURLNeverLeaks(t *testing.T) {
	const marker = "LEAKMARKERslackTOKEN0123"
	secretPath := "/services/T0000/B0000/" + marker
	echo := startSlack(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("mode") {
		case "redirect":
			http.Redirect(w, r, "https://hooks.example/"+marker, http.StatusFound)
		case "segment":
			http.Error(w, "no_service: no hook "+r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], http.StatusNotFound)
		case "full":
			http.Error(w, "upstream failed for http://"+r.Host+r.URL.String(), http.StatusBadGateway)
		default:
			http.Error(w, "Cannot POST "+r.URL.Path, http.StatusNotFound)
		}
	})
	slow := startSlack(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	log, logs := apitest.Logger()
	urls := map[string]string{
		"404 echoing the path":  echo.URL + secretPath,
		"502 echoing the URL":   echo.URL + secretPath + "?mode=full",
		"redirect":              echo.URL + secretPath + "?mode=redirect",
		"404 echoing the token": echo.URL + secretPath + "?mode=segment",
		"refused":               "http://" + apitest.ClosedAddr(t) + secretPath,
		"timeout":               slow.URL + secretPath,
		"unparsable":            "http://[::1" + secretPath,
		"wrong scheme":          "ftp://127.0.0.1" + secretPath,
		"user info":             "http://" + marker + ":" + marker + "@" + apitest.ClosedAddr(t) + "/",
	}
	for name, url := range urls {
		n := newNotifier(t, url, log)
		n.Channel = notify.NewChannel(notify.ChannelSpec{Kind: Kind, Name: n.Name(), Matches: true, Timeout: 100 * time.Millisecond, ChannelOptions: notify.ChannelOptions{HTTPClient: n.HTTP, Logger: n.Log}})
		err := n.Notify(t.Context(), trigger())
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("%s: error carries the webhook URL: %v", name, err)
		}
	}
	if len(echo.seen()) != 4 || !strings.HasSuffix(echo.seen()[0].path, marker) {
		t.Fatalf("the echoing server saw %d requests; the test proves nothing unless the URL reached it", len(echo.seen()))
	}
	if !strings.Contains(logs.String(), "notification failed") || strings.Contains(logs.String(), marker) {
		t.Errorf("logs lack failures or carry the URL:\n%s", logs.String())
	}
}

func blockTypes(m Message) []string {
	var types []string
	for _, b := range m.Blocks {
		types = append(types, b.Type)
	}
	return types
}

func fieldTexts(b Block) string {
	var parts []string
	for _, f := range b.Fields {
		parts = append(parts, f.Text)
	}
	return strings.Join(parts, " | ")
}

func runes(s string) int { return len([]rune(s)) }

// TestTextDetailIsASection: details["text"] (a human or drafted update) is shown in
// a section of its own, escaped, so a comms channel reads the draft without opening
// anything.
func TestTextDetailIsASection(t *testing.T) {
	m := BuildMessage(notify.Notification{Action: notify.ActionTrigger, Summary: "[UPDATE DUE] [GLOBAL]",
		Details: map[string]any{"text": "Drafted update:\nLogs <b>down</b> in Europe 1"}}, "")
	for _, b := range m.Blocks {
		if b.Type == "section" && b.Text != nil && b.Text.Text == "Drafted update:\nLogs &lt;b&gt;down&lt;/b&gt; in Europe 1" {
			return
		}
	}
	t.Errorf("no section with the text: %+v", m.Blocks)
}
