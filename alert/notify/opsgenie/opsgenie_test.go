package opsgenie

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/apitest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

// fakeOpsgenie is the Alert API v2 as Opsgenie answers it: GenieKey auth, JSON only,
// the documented bounds as 422 with an errors map, 202 with a requestId when
// accepted. It keeps the alerts by alias (one open alert per alias; a create of an
// open alias counts a duplicate) so that tests see what a person would.
type fakeOpsgenie struct {
	*apitest.Server
	key    string
	mu     sync.Mutex
	alerts map[string]*alertState
}

// apiAlert is the create-alert body as Opsgenie documents it, written here apart from
// the notifier's own Alert so that a misspelt field there is caught (as unknown).
type apiAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description"`
	Responders  []map[string]any  `json:"responders"`
	VisibleTo   []map[string]any  `json:"visibleTo"`
	Actions     []string          `json:"actions"`
	Tags        []string          `json:"tags"`
	Details     map[string]string `json:"details"`
	Entity      string            `json:"entity"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
	User        string            `json:"user"`
	Note        string            `json:"note"`
}

// apiClose is the close-alert body as documented.
type apiClose struct {
	User   string `json:"user"`
	Source string `json:"source"`
	Note   string `json:"note"`
}

type alertState struct {
	alert  apiAlert
	count  int
	closed bool
	note   string
}

func startOpsgenie(t *testing.T) *fakeOpsgenie {
	f := &fakeOpsgenie{key: testKey, alerts: map[string]*alertState{}}
	f.Server = apitest.Start(t, f.check)
	return f
}

func ogError(status int, msg string, errs map[string]string) apitest.Answer {
	body := map[string]any{"message": msg, "took": 0.001, "requestId": "req-err"}
	if errs != nil {
		body["errors"] = errs
	}
	return apitest.JSON(status, body)
}

func (f *fakeOpsgenie) check(r apitest.Request) apitest.Answer {
	switch auth := r.Header.Get("Authorization"); {
	case !strings.HasPrefix(auth, "GenieKey "):
		return ogError(http.StatusUnauthorized, "Could not authenticate", nil)
	case strings.TrimPrefix(auth, "GenieKey ") != f.key:
		// Opsgenie does not echo the key; a careless proxy might: see the leak test.
		return ogError(http.StatusUnauthorized, "Key format is not valid!", nil)
	}
	if r.Method != http.MethodPost {
		return ogError(http.StatusMethodNotAllowed, "Method not allowed", nil)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return ogError(http.StatusUnsupportedMediaType, "Unsupported media type", nil)
	}
	// Routed by segments of the escaped path, as Opsgenie's router does: an alias
	// holding a "/" must come escaped.
	switch seg := strings.Split(r.RawPath, "/"); {
	case r.RawPath == "/v2/alerts":
		return f.create(r)
	case len(seg) == 5 && seg[1] == "v2" && seg[2] == "alerts" && seg[4] == "close":
		alias, err := url.PathUnescape(seg[3])
		if err == nil {
			return f.close(r, alias)
		}
	}
	return ogError(http.StatusNotFound, "Could not find handler", nil)
}

func (f *fakeOpsgenie) create(r apitest.Request) apitest.Answer {
	var a apiAlert
	if err := r.Decode(&a); err != nil {
		return ogError(http.StatusBadRequest, "Invalid JSON: "+err.Error(), nil)
	}
	if errs := alertProblems(a); len(errs) > 0 {
		return ogError(http.StatusUnprocessableEntity, "Request body is not processable. Please check the errors.", errs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.alerts[a.Alias]; s != nil && !s.closed {
		s.count++ // Opsgenie's de-duplication: the open alert's count goes up
	} else {
		f.alerts[a.Alias] = &alertState{alert: a, count: 1}
	}
	return apitest.JSON(http.StatusAccepted, map[string]any{"result": "Request will be processed", "took": 0.1, "requestId": "req-1"})
}

func alertProblems(a apiAlert) map[string]string {
	errs := map[string]string{}
	bounds := []struct {
		field, value string
		max          int
	}{{"message", a.Message, MaxMessageRunes}, {"alias", a.Alias, MaxAliasRunes}, {"description", a.Description, MaxDescriptionRunes},
		{"source", a.Source, MaxSourceRunes}, {"entity", a.Entity, MaxEntityRunes}}
	for _, b := range bounds {
		if utf8.RuneCountInString(b.value) > b.max {
			errs[b.field] = b.field + " can not be longer than " + string(rune('0'+b.max/100)) + "xx characters"
		}
	}
	if strings.TrimSpace(a.Message) == "" {
		errs["message"] = "Message can not be empty."
	}
	switch a.Priority {
	case "", "P1", "P2", "P3", "P4", "P5":
	default:
		errs["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]"
	}
	if len(a.Tags) > MaxTags {
		errs["tags"] = "Tags can not be more than 20"
	}
	for _, tag := range a.Tags {
		if utf8.RuneCountInString(tag) > MaxTagRunes {
			errs["tags"] = "Tag can not be longer than 50 characters"
		}
	}
	size := 0
	for k, v := range a.Details {
		size += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
	}
	if size > MaxDetailsRunes {
		errs["details"] = "Details can not be longer than 8000 characters"
	}
	return errs
}

func (f *fakeOpsgenie) close(r apitest.Request, alias string) apitest.Answer {
	q, _ := url.ParseQuery(r.Query)
	if q.Get("identifierType") != "alias" {
		return ogError(http.StatusUnprocessableEntity, "Request body is not processable. Please check the errors.",
			map[string]string{"identifierType": "identifierType should be one of [id, alias, tiny]"})
	}
	var c apiClose
	if err := r.Decode(&c); err != nil {
		return ogError(http.StatusBadRequest, "Invalid JSON: "+err.Error(), nil)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.alerts[alias]; s != nil {
		s.closed, s.note = true, c.Note
	}
	// Asynchronous: an unknown alias is accepted too (the request log says it failed).
	return apitest.JSON(http.StatusAccepted, map[string]any{"result": "Request will be processed", "took": 0.01, "requestId": "req-2"})
}

func (f *fakeOpsgenie) alert(alias string) (alertState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.alerts[alias]
	if !ok {
		return alertState{}, false
	}
	return *s, true
}

func newNotifier(t *testing.T, apiURL, key string, opts Options) *Notifier {
	t.Helper()
	if opts.HTTPClient == nil {
		opts.HTTPClient = apitest.Client(t)
	}
	cfg := &config.Notifier{Name: "og", Timeout: 2 * time.Second,
		Opsgenie: &config.Opsgenie{APIKey: config.NewSecret(key), APIURL: apiURL}}
	return New(cfg, opts)
}

func trigger() notify.Notification {
	return notify.Notification{
		ID: "n1", Action: notify.ActionTrigger, DedupKey: "picket/target/web/checkout@eu1", Scope: "target",
		Subject: "web/checkout@eu1", Priority: 2, Summary: "[TARGET web/checkout@eu1] checkout down",
		Severity: notify.SeverityCritical, Source: "vantage-fra", Component: "web", Group: "eu1", Class: "checkout",
		Details: map[string]any{"since": "2026-01-02T03:04:05Z", "targets": []any{map[string]any{"target": "web/checkout@eu1", "status": "down"}}},
		Links:   []notify.Link{{Href: "https://status.example/incidents/1", Text: "timeline"}},
	}
}

func TestTriggerCreatesAnAlertAndResolveClosesIt(t *testing.T) {
	og := startOpsgenie(t)
	n := newNotifier(t, og.URL, testKey, Options{})
	msg := trigger()
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	s, ok := og.alert(msg.DedupKey)
	if !ok {
		t.Fatalf("no alert with alias %q; requests %+v", msg.DedupKey, og.Requests())
	}
	a := s.alert
	if a.Message != msg.Summary || a.Priority != "P2" || a.Source != "vantage-fra" || a.Entity != "web/checkout@eu1" || a.User != "Picket" {
		t.Errorf("alert %+v", a)
	}
	if got := strings.Join(a.Tags, ","); got != "picket,scope:target,product:web,region:eu1,journey:checkout,severity:critical" {
		t.Errorf("tags %s", got)
	}
	if a.Details["since"] != "2026-01-02T03:04:05Z" || a.Details["targets"] != `[{"status":"down","target":"web/checkout@eu1"}]` {
		t.Errorf("details %v", a.Details)
	}
	if !strings.Contains(a.Description, "timeline https://status.example/incidents/1") || !strings.Contains(a.Description, "Dedup key: "+msg.DedupKey) {
		t.Errorf("description %q", a.Description)
	}
	// An update of the open incident is a duplicate of the open alert, not a new one.
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("update: %v", err)
	}
	msg.Action, msg.ID = notify.ActionResolve, "n2"
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	s, _ = og.alert(msg.DedupKey)
	if s.count != 2 || !s.closed || !strings.HasPrefix(s.note, "Resolved: ") {
		t.Errorf("after update and resolve: count %d closed %v note %q", s.count, s.closed, s.note)
	}
	reqs := og.Requests()
	last := reqs[len(reqs)-1]
	if want := "/v2/alerts/picket%2Ftarget%2Fweb%2Fcheckout@eu1/close"; last.RawPath != want || last.Query != "identifierType=alias" {
		t.Errorf("close went to %s?%s, want %s?identifierType=alias (the alias path-escaped)", last.RawPath, last.Query, want)
	}
	if last.Header.Get("User-Agent") != "picket" {
		t.Errorf("User-Agent %q", last.Header.Get("User-Agent"))
	}
}

func TestPriorityMapping(t *testing.T) {
	cases := []struct {
		priority int
		severity string
		want     string
	}{
		{1, notify.SeverityCritical, "P1"}, {3, notify.SeverityCritical, "P3"}, {5, notify.SeverityError, "P5"},
		{1, notify.SeverityWarning, "P2"}, {5, notify.SeverityWarning, "P5"},
		{0, notify.SeverityCritical, "P1"}, {0, notify.SeverityError, "P2"}, {0, notify.SeverityWarning, "P3"},
		{0, notify.SeverityInfo, "P5"}, {0, "", "P3"}, {9, notify.SeverityInfo, "P5"},
	}
	for _, c := range cases {
		if got := Priority(notify.Notification{Priority: c.priority, Severity: c.severity}); got != c.want {
			t.Errorf("priority %d severity %q: %s, want %s", c.priority, c.severity, got, c.want)
		}
	}
}

// TestHugeNotificationStaysWithinBounds: the stand-in refuses (422) what Opsgenie
// would; a notification far over every bound is still accepted.
func TestHugeNotificationStaysWithinBounds(t *testing.T) {
	og := startOpsgenie(t)
	n := newNotifier(t, og.URL, testKey, Options{})
	msg := trigger()
	msg.Summary = strings.Repeat("ü", 500)
	msg.Source = strings.Repeat("s", 300)
	msg.Component = strings.Repeat("c", 80)
	msg.Details = map[string]any{}
	for i := range 50 {
		msg.Details[strings.Repeat("k", i+1)] = strings.Repeat("v", 400)
	}
	for range 30 {
		msg.Links = append(msg.Links, notify.Link{Href: "https://x.example/" + strings.Repeat("p", 600), Text: "l"})
	}
	if err := n.Notify(t.Context(), msg); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	s, _ := og.alert(msg.DedupKey)
	if runes := utf8.RuneCountInString(s.alert.Message); runes != MaxMessageRunes || !strings.HasSuffix(s.alert.Message, "…") {
		t.Errorf("message of %d runes: %q", runes, s.alert.Message)
	}
	if len(s.alert.Details) == 0 {
		t.Error("every detail was dropped; the ones that fit must stay")
	}
}

func TestRetryMatrix(t *testing.T) {
	cases := []struct {
		name       string
		answer     apitest.Answer
		want       apitest.Outcome
		retryAfter bool
	}{
		{"400 bad JSON", ogError(400, "Invalid JSON", nil), apitest.Permanent, false},
		{"401 bad key", ogError(401, "Could not authenticate", nil), apitest.Permanent, false},
		{"402 plan", ogError(402, "Payment required", nil), apitest.Permanent, false},
		{"403 no right", ogError(403, "Forbidden", nil), apitest.Permanent, false},
		{"422 out of bounds", ogError(422, "Request body is not processable.", map[string]string{"message": "too long"}), apitest.Permanent, false},
		{"429 throttled", ogError(429, "Rate limit exceeded", nil), apitest.Retryable, false},
		{"429 with Retry-After", apitest.Answer{Status: 429, Header: map[string]string{"Retry-After": "7"}}, apitest.Retryable, true},
		{"500", ogError(500, "Internal error", nil), apitest.Retryable, false},
		{"503", apitest.Answer{Status: 503, Body: "<html>maintenance</html>"}, apitest.Retryable, false},
		{"202", apitest.JSON(202, map[string]string{"result": "Request will be processed"}), apitest.Delivered, false},
	}
	og := startOpsgenie(t)
	n := newNotifier(t, og.URL, testKey, Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			og.Fail(c.answer)
			err := n.Notify(t.Context(), trigger())
			if got := apitest.OutcomeOf(err); got != c.want {
				t.Errorf("%s: %s (%v), want %s", c.name, got, err, c.want)
			}
			if got := apitest.HasRetryAfter(err); got != c.retryAfter {
				t.Errorf("%s: Retry-After kept %v, want %v (%v)", c.name, got, c.retryAfter, err)
			}
			if got := notify.RetryAfter(err); c.retryAfter && got != 7*time.Second {
				t.Errorf("%s: retry after %s, want 7s", c.name, got)
			}
		})
	}
}

func TestWrongKeyIsRefusedForGood(t *testing.T) {
	og := startOpsgenie(t)
	n := newNotifier(t, og.URL, "ffffffff-4e5f-4a6b-8c7d-9e0f1a2b3c4d", Options{})
	err := n.Notify(t.Context(), trigger())
	if apitest.OutcomeOf(err) != apitest.Permanent || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong key: %v, want a permanent 401", err)
	}
}

// TestKeyNeverLeaks: a proxy or gateway that echoes the Authorization header, a
// transport failure and a timeout must not put the key in an error or a log line.
func TestKeyNeverLeaks(t *testing.T) {
	const secretKey = "5ec12e75-0000-4000-8000-1eac4ed00001"
	echo := apitest.Start(t, func(r apitest.Request) apitest.Answer {
		return apitest.Answer{Status: 502, Body: "bad gateway for " + r.Header.Get("Authorization")}
	})
	log, logs := apitest.Logger()
	texts := map[string]string{}
	for name, base := range map[string]string{"echo": echo.URL, "refused": "http://127.0.0.1:1"} {
		err := newNotifier(t, base, secretKey, Options{Logger: log}).Notify(t.Context(), trigger())
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		texts[name+" error"] = err.Error()
	}
	if !strings.Contains(texts["echo error"], scrub.Marker) {
		t.Errorf("the echoed key was not redacted with the marker: %s", texts["echo error"])
	}
	texts["timeout error"] = apitest.TimeoutText(t, func(ctx context.Context, base string) error {
		return newNotifier(t, base, secretKey, Options{Logger: log}).Notify(ctx, trigger())
	})
	texts["logs"] = logs.String()
	apitest.NoLeak(t, secretKey, texts)
	if !strings.Contains(texts["logs"], "notification failed") {
		t.Errorf("no failure was logged: %s", texts["logs"])
	}
}

func TestRejectedBeforeSending(t *testing.T) {
	og := startOpsgenie(t)
	n := newNotifier(t, og.URL, testKey, Options{})
	for name, msg := range map[string]notify.Notification{
		"no dedup key": {Action: notify.ActionTrigger, Summary: "x"},
		"odd action":   {Action: "acknowledge", DedupKey: "k"},
	} {
		if err := n.Notify(t.Context(), msg); apitest.OutcomeOf(err) != apitest.Permanent {
			t.Errorf("%s: %v, want permanent", name, err)
		}
	}
	wrong := New(&config.Notifier{Name: "x", Slack: &config.Slack{}}, Options{})
	if err := wrong.Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Permanent || wrong.Identity() != "" {
		t.Errorf("a Slack config: %v, identity %q", err, wrong.Identity())
	}
	if len(og.Requests()) != 0 {
		t.Errorf("Opsgenie saw %d requests, want none", len(og.Requests()))
	}
}

func TestIdentityIsTheIntegration(t *testing.T) {
	a := newNotifier(t, "https://api.opsgenie.com", testKey, Options{})
	b := newNotifier(t, "https://api.eu.opsgenie.com", testKey, Options{})
	c := newNotifier(t, "https://api.opsgenie.com/", testKey, Options{})
	if a.Identity() == b.Identity() || a.Identity() != c.Identity() || strings.Contains(a.Identity(), testKey) {
		t.Errorf("identities %s %s %s", a.Identity(), b.Identity(), c.Identity())
	}
	if data, _ := json.Marshal(a.Limits()); strings.Contains(string(data), testKey) {
		t.Error("limits carry the key")
	}
}
