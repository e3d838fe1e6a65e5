package chattest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/slack"
	"github.com/picket-dev/picket/alert/notify/webhook"
	"github.com/picket-dev/picket/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T) *Receiver {
	t.Helper()
	r, err := New(Options{})
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

// client is an HTTP client whose idle connections end with the test (for goleak).
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := client(t).Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

var incident = notify.Notification{
	ID: "n1", Action: notify.ActionTrigger, DedupKey: "picket/degraded/logs/query@eu1", Scope: "target",
	Subject: "logs/query@eu1", Summary: "logs/query@eu1 degraded: slower than 2s", Severity: notify.SeverityWarning,
	Source: "test-vantage", Component: "logs", Group: "eu1", Class: "query", Created: time.Now(),
}

// TestPicketsNotifiersAreAccepted: what Picket's own Slack and webhook notifiers post
// is accepted, kept in order, and shown at GET /chat.
func TestPicketsNotifiersAreAccepted(t *testing.T) {
	r := start(t)
	c := client(t)
	sl := slack.New(&config.Notifier{Name: "chat", Slack: &config.Slack{WebhookURL: config.NewSecret(r.SlackURL())}}, slack.Options{HTTPClient: c})
	wh := webhook.New(&config.Notifier{Name: "hook", Webhook: &config.Webhook{URL: config.NewSecret(r.HookURL())}}, webhook.Options{HTTPClient: c})
	if err := sl.Notify(t.Context(), incident); err != nil {
		t.Fatalf("slack: %v", err)
	}
	resolve := incident
	resolve.ID, resolve.Action, resolve.Summary = "n2", notify.ActionResolve, "logs/query@eu1 recovered"
	if err := wh.Notify(t.Context(), resolve); err != nil {
		t.Fatalf("webhook: %v", err)
	}

	got := r.Messages()
	if len(got) != 2 {
		t.Fatalf("messages: %+v", got)
	}
	if m := got[0]; m.Kind != KindSlack || !strings.Contains(m.Text, incident.Summary) || m.Received.IsZero() {
		t.Errorf("slack message: %+v", m)
	}
	if m := got[1]; m.Kind != KindWebhook || m.Text != resolve.Summary || m.Action != "resolve" || m.DedupKey != incident.DedupKey {
		t.Errorf("webhook message: %+v", m)
	}

	resp, err := client(t).Get(r.BaseURL() + PathChat)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var shown []Message
	if err := json.NewDecoder(resp.Body).Decode(&shown); err != nil || len(shown) != 2 || shown[1].DedupKey != incident.DedupKey {
		t.Errorf("GET /chat: %v %+v", err, shown)
	}
	var body webhook.Payload
	if err := json.Unmarshal(shown[1].Body, &body); err != nil || body.Notification.ID != "n2" {
		t.Errorf("GET /chat body as posted: %v %s", err, shown[1].Body)
	}
}

// TestLooseValidation: each post is checked the way the real receiver would, and what
// fails is neither kept nor shown.
func TestLooseValidation(t *testing.T) {
	r := start(t)
	for _, c := range []struct {
		path, body string
		status     int
		answer     string // contained in the answer
	}{
		{PathSlack, `{"text":"hello"}`, 200, "ok"},
		{PathSlack, `{"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"from a block"}}]}`, 200, "ok"},
		{PathSlack, `not json`, 400, "invalid_payload"},
		{PathSlack, `["text"]`, 400, "invalid_payload"},
		{PathSlack, `{"text":5}`, 400, "invalid_payload"},
		{PathSlack, `{}`, 400, "no_text"},
		{PathSlack, `{"text":"x","blocks":[{"text":{"text":"no type"}}]}`, 400, "invalid_blocks"},
		{PathHook, `{"version":"1","notification":{"action":"trigger","dedup_key":"k","summary":"s"}}`, 200, "ok"},
		{PathHook, `null`, 400, "expected a JSON object"},
		{PathHook, `{"notification":{"action":"trigger","dedup_key":"k"}}`, 400, "version: required"},
		{PathHook, `{"version":"1"}`, 400, "notification: required"},
		{PathHook, `{"version":"1","notification":{"action":"ack"}}`, 400, "expected trigger or resolve"},
		{PathHook, `{"version":"1","notification":{"action":"resolve"}}`, 400, "dedup_key: required"},
		{"/v2/enqueue", `{}`, 404, ""},
	} {
		status, answer := post(t, r.BaseURL()+c.path, c.body)
		if status != c.status || !strings.Contains(answer, c.answer) {
			t.Errorf("POST %s %s: %d %q, want %d %q", c.path, c.body, status, answer, c.status, c.answer)
		}
	}
	got := r.Messages()
	if len(got) != 3 || got[0].Text != "hello" || got[1].Text != "from a block" || got[2].Text != "s" {
		t.Errorf("kept: %+v", got)
	}

	resp, err := client(t).Get(r.SlackURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /slack: %d, want 405", resp.StatusCode)
	}
	if status, _ := post(t, r.SlackURL(), `{"text":"`+strings.Repeat("x", MaxBodyBytes)+`"}`); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized post: %d, want 413", status)
	}
}

func TestWaitForAndLoopbackOnly(t *testing.T) {
	r := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- r.WaitFor(ctx, func(m []Message) bool { return len(m) == 1 })
	}()
	post(t, r.SlackURL(), `{"text":"hi"}`)
	if err := <-done; err != nil {
		t.Errorf("WaitFor: %v", err)
	}

	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0"} {
		if r, err := New(Options{Addr: addr}); err == nil {
			r.Close()
			t.Errorf("New(%q) listened; want loopback only", addr)
		}
	}
}
