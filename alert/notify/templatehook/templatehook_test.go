package templatehook

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/apitest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	hookToken   = "hooktoken0123456789abcdef"
	bearerToken = "bearer-SECRET-4242-abcdef"
)

// chatHook is an incoming hook of a Mattermost-like chat tool: POST /hooks/TOKEN with
// a JSON body {"text": ..., "props": {...}} and a bearer token; 400 for a body that is
// not that, 401 for a wrong token, 404 for an unknown hook.
func chatHook(r apitest.Request) apitest.Answer {
	if r.Method != http.MethodPost || r.Path != "/hooks/"+hookToken {
		return apitest.Answer{Status: 404, Body: "Unable to find the webhook"}
	}
	if r.Header.Get("Authorization") != "Bearer "+bearerToken {
		return apitest.Answer{Status: 401, Body: "Invalid or expired token"}
	}
	if r.Header.Get("Content-Type") != "application/json" {
		return apitest.Answer{Status: 415, Body: "Content-Type must be application/json"}
	}
	var body struct {
		Text  string         `json:"text"`
		Props map[string]any `json:"props"`
	}
	if err := r.Decode(&body); err != nil || strings.TrimSpace(body.Text) == "" {
		return apitest.JSON(400, map[string]string{"id": "web.incoming_webhook.text.app_error", "message": "No text specified"})
	}
	return apitest.Answer{Status: 200, Body: "ok"}
}

// load compiles notifiers exactly as `picket run` does: through config.Parse.
func load(t *testing.T, base, notifier string) *config.Notifier {
	t.Helper()
	src := strings.NewReplacer("BASE", base, "TOKEN", hookToken, "BEARER", bearerToken).Replace(`
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: web, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
notifiers:
  chat:
    webhook:
      url: "BASE/hooks/TOKEN"
      headers: {Authorization: "Bearer BEARER"}
      body: |
        {"text": {{json (printf "%s: %s" .action .summary)}},
         "props": {"dedup_key": {{json .dedup_key}}, "targets": {{json (index .details "targets")}}, "priority": {{.priority}}}}
  plain:
    webhook:
      url: "BASE/topic"
      content_type: "text/plain; charset=utf-8"
      body: '{{if eq .action "resolve"}}RESOLVED {{end}}{{.summary}} ({{.severity}}){{range .links}} {{.href}}{{end}}'
  fragile:
    webhook:
      url: "BASE/hooks/TOKEN"
      body: '{"text": {{json .details.targets}}}'
routes: [{notify: [chat, plain, fragile]}]
`)
	cfg, err := config.Parse("templatehook_test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Notifiers[notifier]
}

func newNotifier(t *testing.T, base, name string, opts Options) *Notifier {
	t.Helper()
	if opts.HTTPClient == nil {
		opts.HTTPClient = apitest.Client(t)
	}
	cfg := load(t, base, name)
	cfg.Timeout = 2 * time.Second
	return New(cfg, opts)
}

func trigger() notify.Notification {
	return notify.Notification{
		ID: "n1", Action: notify.ActionTrigger, DedupKey: "picket/region/eu1", Scope: "region", Subject: "eu1", Priority: 1,
		Summary: `[REGION eu1] "web" down`, Severity: notify.SeverityCritical, Source: "fra", Group: "eu1",
		Details: map[string]any{"targets": []map[string]any{{"target": "web/home@eu1", "status": "down"}}},
		Links:   []notify.Link{{Href: "https://status.example/", Text: "status"}},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestJSONBodyReachesAChatHook(t *testing.T) {
	hook := apitest.Start(t, chatHook)
	n := newNotifier(t, hook.URL, "chat", Options{})
	if err := n.Notify(t.Context(), trigger()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	r := hook.Requests()[0]
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.Body)
	}
	if got["text"] != `trigger: [REGION eu1] "web" down` {
		t.Errorf("text %q", got["text"])
	}
	props := got["props"].(map[string]any)
	if props["dedup_key"] != "picket/region/eu1" || props["priority"] != 1.0 {
		t.Errorf("props %v", props)
	}
	if targets, _ := json.Marshal(props["targets"]); string(targets) != `[{"status":"down","target":"web/home@eu1"}]` {
		t.Errorf("targets %s", targets)
	}
	if r.Header.Get("Idempotency-Key") != "n1" || r.Header.Get("User-Agent") != "picket" {
		t.Errorf("headers %v", r.Header)
	}
}

func TestPlainTextBodyAndResolve(t *testing.T) {
	topic := apitest.Start(t, func(r apitest.Request) apitest.Answer {
		if r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			return apitest.Answer{Status: 415}
		}
		return apitest.Answer{Status: 204}
	})
	n := newNotifier(t, topic.URL, "plain", Options{})
	msg := trigger()
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	msg.Action, msg.Links = notify.ActionResolve, nil
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	reqs := topic.Requests()
	if got := string(reqs[0].Body); got != `[REGION eu1] "web" down (critical) https://status.example/` {
		t.Errorf("trigger body %q", got)
	}
	if got := string(reqs[1].Body); got != `RESOLVED [REGION eu1] "web" down (critical)` {
		t.Errorf("resolve body %q", got)
	}
}

// TestABodyThatCannotRenderIsRefusedForGood: .details.targets renders for the sample
// at load but not for a notice without targets; index is the way to write it.
func TestABodyThatCannotRenderIsRefusedForGood(t *testing.T) {
	hook := apitest.Start(t, chatHook)
	notice := trigger()
	notice.Details = nil
	err := newNotifier(t, hook.URL, "fragile", Options{}).Notify(t.Context(), notice)
	if apitest.OutcomeOf(err) != apitest.Permanent || !strings.Contains(err.Error(), `no entry for key "targets"`) {
		t.Errorf("a body that does not render: %v, want permanent", err)
	}
	if err := newNotifier(t, hook.URL, "chat", Options{}).Notify(t.Context(), notice); err != nil {
		t.Errorf("index of a missing detail must render: %v", err)
	}
	if n := len(hook.Requests()); n != 1 {
		t.Errorf("the hook saw %d requests, want 1 (the one that rendered)", n)
	}
}

// TestDataHasEveryDocumentedField: what config checks a body against at load is
// what the notifier hands it, field for field.
func TestDataHasEveryDocumentedField(t *testing.T) {
	data, err := Data(notify.Notification{})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(data))
	want := slices.Sorted(slices.Values(config.WebhookBodyFields))
	sample := slices.Sorted(maps.Keys(config.WebhookBodySample("trigger")))
	if !slices.Equal(got, want) || !slices.Equal(sample, want) {
		t.Errorf("fields: notifier %v, documented %v, load sample %v", got, want, sample)
	}
}

func TestRetryMatrix(t *testing.T) {
	cases := []struct {
		status int
		want   apitest.Outcome
	}{
		{200, apitest.Delivered}, {204, apitest.Delivered}, {400, apitest.Permanent}, {401, apitest.Permanent},
		{404, apitest.Permanent}, {413, apitest.Permanent}, {408, apitest.Retryable}, {429, apitest.Retryable},
		{500, apitest.Retryable}, {503, apitest.Retryable},
	}
	hook := apitest.Start(t, chatHook)
	n := newNotifier(t, hook.URL, "chat", Options{})
	for _, c := range cases {
		hook.Fail(apitest.Answer{Status: c.status, Body: "answer"})
		if got := apitest.OutcomeOf(n.Notify(t.Context(), trigger())); got != c.want {
			t.Errorf("%d: %s, want %s", c.status, got, c.want)
		}
	}
	if err := newNotifier(t, hook.URL+"/other", "chat", Options{}).Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Permanent {
		t.Errorf("an unknown hook: %v, want permanent", err)
	}
}

// TestSecretsNeverLeak: the hook token in the URL and the bearer header value.
func TestSecretsNeverLeak(t *testing.T) {
	echo := apitest.Start(t, func(r apitest.Request) apitest.Answer {
		return apitest.Answer{Status: 500, Body: "failed " + r.Path + " for " + r.Header.Get("Authorization")}
	})
	log, logs := apitest.Logger()
	texts := map[string]string{
		"echo":    apitest.ErrText(newNotifier(t, echo.URL, "chat", Options{Logger: log}).Notify(t.Context(), trigger())),
		"refused": apitest.ErrText(newNotifier(t, "http://127.0.0.1:1", "chat", Options{Logger: log}).Notify(t.Context(), trigger())),
	}
	texts["timeout"] = apitest.TimeoutText(t, func(ctx context.Context, base string) error {
		return newNotifier(t, base, "chat", Options{Logger: log}).Notify(ctx, trigger())
	})
	texts["logs"] = logs.String()
	if !strings.Contains(texts["echo"], scrub.Marker) {
		t.Errorf("the echo was not redacted: %s", texts["echo"])
	}
	apitest.NoLeak(t, hookToken, texts)
	apitest.NoLeak(t, bearerToken, texts)
}

func TestAPlainWebhookConfigIsNotThisKind(t *testing.T) {
	n := New(&config.Notifier{Name: "x", Webhook: &config.Webhook{URL: config.NewSecret("http://127.0.0.1:1/")}}, Options{})
	if err := n.Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Permanent || n.Identity() != "" {
		t.Errorf("a webhook without body: %v, identity %q", err, n.Identity())
	}
}
