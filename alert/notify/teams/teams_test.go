package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
	flowPath = "/workflows/4f1c0d6e2a3b4c5d8e9f0a1b2c3d4e5f/triggers/manual/paths/invoke"
	testSig  = "Xk3vQ9sLmN2pR7tW1yZ4bC6dF8gH0jK5"
	// maxTeamsMessage is what Teams takes in one message.
	maxTeamsMessage = 28 << 10
)

// fakeWorkflow is the trigger "When a Teams webhook request is received" followed by
// "Post card in a chat or channel", as they answer: the shared access signature in
// the query (401 without it, or with a wrong one), JSON only, the trigger's request
// schema (400 TriggerInputSchemaMismatch), the card as the post step reads it, 202
// when accepted. It keeps the cards it accepted.
type fakeWorkflow struct {
	*apitest.Server
	mu    sync.Mutex
	cards []Card
}

func startWorkflow(t *testing.T) *fakeWorkflow {
	f := &fakeWorkflow{}
	f.Server = apitest.Start(t, f.check)
	return f
}

func flowURL(base, sig string) string {
	return base + flowPath + "?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + sig
}

func flowError(status int, code, msg string) apitest.Answer {
	return apitest.JSON(status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *fakeWorkflow) check(r apitest.Request) apitest.Answer {
	if r.Method != http.MethodPost || r.Path != flowPath {
		return flowError(http.StatusNotFound, "WorkflowNotFound", "The workflow was not found.")
	}
	q, _ := url.ParseQuery(r.Query)
	switch {
	case q.Get("sig") == "":
		return flowError(http.StatusUnauthorized, "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared Access scheme.")
	case q.Get("sig") != testSig:
		return flowError(http.StatusUnauthorized, "DirectApiInvalidAuthorizationSignature", "The provided shared access signature is not valid.")
	case q.Get("api-version") == "" || q.Get("sp") == "" || q.Get("sv") == "":
		return flowError(http.StatusBadRequest, "InvalidRequest", "api-version, sp and sv are required.")
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return flowError(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The media type is not supported.")
	}
	if len(r.Body) > maxTeamsMessage {
		return flowError(http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "Message size is over 28 KB.")
	}
	card, problem := readCard(r)
	if problem != "" {
		return flowError(http.StatusBadRequest, "TriggerInputSchemaMismatch",
			"The input body for trigger 'manual' of type 'Request' did not match its schema definition. Error details: "+problem)
	}
	f.mu.Lock()
	f.cards = append(f.cards, card)
	f.mu.Unlock()
	return apitest.Answer{Status: http.StatusAccepted}
}

// apiCard is an Adaptive Card as the schema names its parts, written here apart from
// the notifier's own types so that a misspelt field there is caught (as unknown).
type apiCard struct {
	Schema  string `json:"$schema"`
	Type    string `json:"type"`
	Version string `json:"version"`
	Body    []struct {
		Type      string `json:"type"`
		Text      string `json:"text"`
		Size      string `json:"size"`
		Weight    string `json:"weight"`
		Color     string `json:"color"`
		Style     string `json:"style"`
		Wrap      bool   `json:"wrap"`
		IsSubtle  bool   `json:"isSubtle"`
		Separator bool   `json:"separator"`
		Facts     []struct {
			Title string `json:"title"`
			Value string `json:"value"`
		} `json:"facts"`
	} `json:"body"`
	Actions []struct {
		Type  string `json:"type"`
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"actions"`
	MSTeams struct {
		Width string `json:"width"`
	} `json:"msteams"`
}

// readCard checks the trigger's schema (type, attachments with contentType and
// content) and what the post step needs of an Adaptive Card.
func readCard(r apitest.Request) (Card, string) {
	var m struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			ContentURL  *string         `json:"contentUrl"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return Card{}, "Invalid JSON: " + err.Error()
	}
	if m.Type != "message" || len(m.Attachments) == 0 {
		return Card{}, "Required properties are missing from object: type, attachments."
	}
	a := m.Attachments[0]
	if a.ContentType != "application/vnd.microsoft.card.adaptive" || len(a.Content) == 0 {
		return Card{}, "attachments[0]: contentType application/vnd.microsoft.card.adaptive and content are required."
	}
	var card apiCard
	dec := json.NewDecoder(strings.NewReader(string(a.Content)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&card); err != nil {
		return Card{}, "content: " + err.Error()
	}
	var mine Card // what the tests read: the same JSON in the notifier's types
	if err := json.Unmarshal(a.Content, &mine); err != nil {
		return Card{}, "content: " + err.Error()
	}
	if card.Type != "AdaptiveCard" || card.Version == "" || len(card.Body) == 0 {
		return Card{}, "content: an AdaptiveCard with a version and a body is required."
	}
	for i, e := range card.Body {
		if e.Type != "TextBlock" && e.Type != "FactSet" {
			return Card{}, fmt.Sprintf("content.body[%d]: unknown element type %q", i, e.Type)
		}
		if (e.Type == "TextBlock" && e.Text == "") || (e.Type == "FactSet" && len(e.Facts) == 0) {
			return Card{}, fmt.Sprintf("content.body[%d]: %s without its text or facts", i, e.Type)
		}
	}
	for i, act := range card.Actions {
		if act.Type != "Action.OpenUrl" || act.Title == "" || !strings.HasPrefix(act.URL, "http") {
			return Card{}, fmt.Sprintf("content.actions[%d]: an Action.OpenUrl needs a title and a url", i)
		}
	}
	return mine, ""
}

func (f *fakeWorkflow) accepted() []Card {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Card(nil), f.cards...)
}

func newNotifier(t *testing.T, rawURL string, opts Options) *Notifier {
	t.Helper()
	if opts.HTTPClient == nil {
		opts.HTTPClient = apitest.Client(t)
	}
	return New(&config.Notifier{Name: "teams", Timeout: 2 * time.Second, Teams: &config.Teams{URL: config.NewSecret(rawURL)}}, opts)
}

func trigger() notify.Notification {
	return notify.Notification{
		ID: "n1", Action: notify.ActionTrigger, DedupKey: "picket/region/eu1", Scope: "region", Subject: "eu1",
		Summary: "[REGION eu1] 2 of 3 products down", Severity: notify.SeverityCritical, Source: "vantage-fra", Group: "eu1",
		Details: map[string]any{"targets": []any{
			map[string]any{"target": "web/checkout@eu1", "status": "down", "since": "2026-01-02T03:04:05Z", "error": "see [here](https://evil.example) *now*"},
		}},
		Links: []notify.Link{{Href: "https://status.example/incidents/1", Text: "Timeline"}, {Href: "javascript:alert(1)", Text: "bad"}},
	}
}

func TestTriggerAndResolvePostCards(t *testing.T) {
	flow := startWorkflow(t)
	n := newNotifier(t, flowURL(flow.URL, testSig), Options{})
	msg := trigger()
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	msg.Action = notify.ActionResolve
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	cards := flow.accepted()
	if len(cards) != 2 {
		t.Fatalf("%d cards accepted, want 2", len(cards))
	}
	fire, done := cards[0], cards[1]
	if fire.Body[0].Text != `\[REGION eu1\] 2 of 3 products down` || fire.Body[0].Color != "Attention" {
		t.Errorf("trigger title %q colour %s", fire.Body[0].Text, fire.Body[0].Color)
	}
	if done.Body[0].Color != "Good" || !strings.HasPrefix(done.Body[0].Text, "✅ Resolved: ") {
		t.Errorf("resolve title %q colour %s", done.Body[0].Text, done.Body[0].Color)
	}
	if fire.Body[1].Type != "FactSet" || fire.Body[1].Facts[0] != (Fact{Title: "Severity", Value: "critical"}) {
		t.Errorf("facts %+v", fire.Body[1])
	}
	targets := fire.Body[2].Text
	if !strings.Contains(targets, `see \[here\](https://evil.example) \*now\*`) {
		t.Errorf("an error's markdown is not escaped: %q", targets)
	}
	if len(fire.Actions) != 1 || fire.Actions[0].URL != "https://status.example/incidents/1" {
		t.Errorf("actions %+v: want the status link only (javascript: dropped)", fire.Actions)
	}
	if got := flow.Requests()[0].Header.Get("User-Agent"); got != "picket" {
		t.Errorf("User-Agent %q", got)
	}
}

// TestManyTargetsStayUnderTheMessageLimit: the stand-in refuses what Teams would
// (over 28 KB); a notification with hundreds of long errors still gets through.
func TestManyTargetsStayUnderTheMessageLimit(t *testing.T) {
	flow := startWorkflow(t)
	n := newNotifier(t, flowURL(flow.URL, testSig), Options{})
	msg := trigger()
	var list []any
	wide := strings.Repeat("𝕏", 3000) // 4 bytes each: the worst case for the byte limit
	for i := range 400 {
		list = append(list, map[string]any{"target": fmt.Sprintf("web/j%03d@eu1", i) + wide, "status": "down", "error": wide})
	}
	msg.Details = map[string]any{"targets": list}
	msg.Summary, msg.Source, msg.Component, msg.Class = wide, wide, wide, wide
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	body := flow.Requests()[0].Body
	if len(body) > MaxPayloadBytes {
		t.Errorf("posted %d bytes, want at most %d", len(body), MaxPayloadBytes)
	}
	text := flow.accepted()[0].Body[2].Text
	if !strings.Contains(text, "more") || !strings.HasPrefix(text, "**Affected targets** (400)") {
		t.Errorf("the targets do not say how many were left out: %q", text[:100])
	}
}

func TestRetryMatrix(t *testing.T) {
	cases := []struct {
		name   string
		answer apitest.Answer
		want   apitest.Outcome
	}{
		{"400 schema mismatch", flowError(400, "TriggerInputSchemaMismatch", "did not match"), apitest.Permanent},
		{"401 bad sig", flowError(401, "DirectApiInvalidAuthorizationSignature", "not valid"), apitest.Permanent},
		{"403 flow off", flowError(403, "DirectApiAuthorizationRequired", "disabled"), apitest.Permanent},
		{"404 flow gone", flowError(404, "WorkflowNotFound", "not found"), apitest.Permanent},
		{"408", apitest.Answer{Status: 408}, apitest.Retryable},
		{"429 throttled", apitest.Answer{Status: 429, Header: map[string]string{"Retry-After": "3"}}, apitest.Retryable},
		{"502", apitest.Answer{Status: 502}, apitest.Retryable},
		{"503", flowError(503, "ServiceUnavailable", "try later"), apitest.Retryable},
		{"202", apitest.Answer{Status: 202}, apitest.Delivered},
		{"200", apitest.Answer{Status: 200}, apitest.Delivered},
	}
	flow := startWorkflow(t)
	n := newNotifier(t, flowURL(flow.URL, testSig), Options{})
	for _, c := range cases {
		flow.Fail(c.answer)
		err := n.Notify(t.Context(), trigger())
		if got := apitest.OutcomeOf(err); got != c.want {
			t.Errorf("%s: %s (%v), want %s", c.name, got, err, c.want)
		}
	}
	if got := notify.RetryAfter(func() error { flow.Fail(cases[5].answer); return n.Notify(t.Context(), trigger()) }()); got != 3*time.Second {
		t.Errorf("429 Retry-After: waits %s, want 3s", got)
	}
}

func TestWrongSignatureIsRefusedForGood(t *testing.T) {
	flow := startWorkflow(t)
	for name, sig := range map[string]string{"wrong": "Yk3vQ9sLmN2pR7tW1yZ4bC6dF8gH0jK5", "none": ""} {
		err := newNotifier(t, flowURL(flow.URL, sig), Options{}).Notify(t.Context(), trigger())
		if apitest.OutcomeOf(err) != apitest.Permanent || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s sig: %v, want a permanent 401", name, err)
		}
	}
}

// TestURLNeverLeaks: the sig is the credential; an answer echoing the URL, a refused
// connection and a timeout must not put it in an error or a log line.
func TestURLNeverLeaks(t *testing.T) {
	echo := apitest.Start(t, func(r apitest.Request) apitest.Answer {
		return apitest.Answer{Status: 400, Body: "bad request to " + r.Path + "?" + r.Query}
	})
	log, logs := apitest.Logger()
	texts := map[string]string{}
	for name, base := range map[string]string{"echo": echo.URL, "refused": "http://127.0.0.1:1"} {
		texts[name] = apitest.ErrText(newNotifier(t, flowURL(base, testSig), Options{Logger: log}).Notify(t.Context(), trigger()))
	}
	texts["timeout"] = apitest.TimeoutText(t, func(ctx context.Context, base string) error {
		return newNotifier(t, flowURL(base, testSig), Options{Logger: log}).Notify(ctx, trigger())
	})
	texts["logs"] = logs.String()
	if !strings.Contains(texts["echo"], scrub.Marker) {
		t.Errorf("the echoed sig was not redacted: %s", texts["echo"])
	}
	apitest.NoLeak(t, testSig, texts)
	apitest.NoLeak(t, "4f1c0d6e2a3b4c5d8e9f0a1b2c3d4e5f", texts)
}

func TestRejectedBeforeSending(t *testing.T) {
	flow := startWorkflow(t)
	n := newNotifier(t, flowURL(flow.URL, testSig), Options{})
	if err := n.Notify(t.Context(), notify.Notification{Action: "ack", DedupKey: "k"}); apitest.OutcomeOf(err) != apitest.Permanent {
		t.Errorf("odd action: %v", err)
	}
	wrong := New(&config.Notifier{Name: "x", Webhook: &config.Webhook{}}, Options{})
	if err := wrong.Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Permanent || wrong.Identity() != "" {
		t.Errorf("a webhook config: %v, identity %q", err, wrong.Identity())
	}
	if len(flow.Requests()) != 0 {
		t.Errorf("the workflow saw %d requests", len(flow.Requests()))
	}
}
