package slackbot

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/apitest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
	"github.com/picket-dev/picket/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var opened = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

func botConfig(apiURL, token string) *config.Notifier {
	return &config.Notifier{Name: "bot", Timeout: 2 * time.Second,
		Slack: &config.Slack{Token: config.NewSecret(token), Channel: "#ops", APIURL: apiURL}}
}

func newBot(t *testing.T, api *fakeSlackAPI, opts Options) *Notifier {
	t.Helper()
	if opts.HTTPClient == nil {
		opts.HTTPClient = apitest.Client(t)
	}
	return New(botConfig(api.URL+"/api", testToken), opts)
}

func note(action, summary string) notify.Notification {
	return notify.Notification{ID: action + summary, Action: action, DedupKey: "picket/region/eu1", Scope: "region",
		Subject: "eu1", Summary: summary, Severity: notify.SeverityCritical, Source: "fra", Opened: opened}
}

func notifyAll(t *testing.T, n *Notifier, msgs ...notify.Notification) {
	t.Helper()
	for _, m := range msgs {
		if err := n.Notify(t.Context(), m); err != nil {
			t.Fatalf("%s %q: %v", m.Action, m.Summary, err)
		}
	}
}

func TestFollowUpsThreadAndTheResolveEditsTheFirstMessage(t *testing.T) {
	api := startSlackAPI(t)
	bot := newBot(t, api, Options{})
	notifyAll(t, bot, note("trigger", "eu1 down"), note("trigger", "eu1 still down, 3 products"), note("resolve", "eu1 down"))
	want := []string{"✅ Resolved: eu1 down (edited) | reply: 🔴 eu1 still down, 3 products (critical)"}
	if got := api.channelView(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("channel:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The next incident of the key is a message of its own.
	next := note("trigger", "eu1 down again")
	next.Opened = opened.Add(time.Hour)
	notifyAll(t, bot, next)
	if got := api.channelView(); len(got) != 2 || got[1] != "🔴 eu1 down again (critical)" {
		t.Errorf("a new incident did not start a new message: %q", got)
	}
	if w := api.warnings(); len(w) > 0 {
		t.Errorf("Slack warned: %v", w)
	}
	first := api.Requests()[0]
	if !strings.Contains(string(first.Body), `"channel":"#ops"`) || !strings.Contains(string(first.Body), `"unfurl_links":false`) {
		t.Errorf("first post %s", first.Body)
	}
}

// TestThreadsSurviveARestart: the first message's place is in the state store, so a
// new process (a new store handle, a new notifier) threads the follow-up and edits
// the first message on resolve.
func TestThreadsSurviveARestart(t *testing.T) {
	api := startSlackAPI(t)
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	notifyAll(t, newBot(t, api, Options{Threads: st}), note("trigger", "eu1 down"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	bot := newBot(t, api, Options{Threads: st})
	notifyAll(t, bot, note("trigger", "eu1 worse"), note("resolve", "eu1 down"))
	if got := api.channelView(); len(got) != 1 || !strings.Contains(got[0], "(edited) | reply: 🔴 eu1 worse") {
		t.Errorf("after a restart the incident is %q, want one edited message with the follow-up in its thread", got)
	}
	var th Thread
	if found, _ := st.Get(ThreadBucket, bot.threadKey(note("resolve", "")), &th); found {
		t.Errorf("the resolved incident's record is still there: %+v", th)
	}
	// Without a store the same restart loses the thread: that is what the store is for.
	api2 := startSlackAPI(t)
	notifyAll(t, newBot(t, api2, Options{}), note("trigger", "eu1 down"))
	notifyAll(t, newBot(t, api2, Options{}), note("trigger", "eu1 worse"))
	if got := api2.channelView(); len(got) != 2 {
		t.Errorf("without a store: %q, want two separate messages", got)
	}
}

// TestAFailingStoreStillDelivers: the message was posted; a store that cannot record
// it must not make the outbox post it again.
func TestAFailingStoreStillDelivers(t *testing.T) {
	api := startSlackAPI(t)
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close() // every call now fails
	log, logs := apitest.Logger()
	bot := newBot(t, api, Options{Threads: st, Logger: log})
	notifyAll(t, bot, note("trigger", "eu1 down"), note("resolve", "eu1 down"))
	if got := api.channelView(); len(got) != 2 {
		t.Errorf("channel %q: want the trigger and the resolve, each posted once", got)
	}
	if !strings.Contains(logs.String(), "recording an incident's first message failed") {
		t.Errorf("the store failure was not logged:\n%s", logs.String())
	}
}

func TestResolveOfADeletedMessageIsPostedAnew(t *testing.T) {
	api := startSlackAPI(t)
	bot := newBot(t, api, Options{})
	notifyAll(t, bot, note("trigger", "eu1 down"))
	api.remove("1767225600.000001")
	notifyAll(t, bot, note("resolve", "eu1 down"))
	if got := api.channelView(); len(got) != 1 || got[0] != "✅ Resolved: eu1 down" {
		t.Errorf("channel %q, want the resolve as a message of its own", got)
	}
}

func TestAResolveWithoutItsFirstMessageIsPosted(t *testing.T) {
	api := startSlackAPI(t)
	notifyAll(t, newBot(t, api, Options{}), note("resolve", "eu1 down"))
	if got := api.channelView(); len(got) != 1 || got[0] != "✅ Resolved: eu1 down" {
		t.Errorf("channel %q", got)
	}
}

func TestRetryMatrix(t *testing.T) {
	retryAfter := apitest.JSON(429, map[string]any{"ok": false, "error": "ratelimited"})
	retryAfter.Header["Retry-After"] = "5"
	cases := []struct {
		name   string
		answer apitest.Answer
		want   apitest.Outcome
		wait   time.Duration
	}{
		{"invalid_auth", slackFail("invalid_auth"), apitest.Permanent, 0},
		{"not_authed", slackFail("not_authed"), apitest.Permanent, 0},
		{"channel_not_found", slackFail("channel_not_found"), apitest.Permanent, 0},
		{"not_in_channel", slackFail("not_in_channel"), apitest.Permanent, 0},
		{"is_archived", slackFail("is_archived"), apitest.Permanent, 0},
		{"msg_too_long", slackFail("msg_too_long"), apitest.Permanent, 0},
		{"token_revoked", slackFail("token_revoked"), apitest.Permanent, 0},
		{"HTTP 429 ratelimited", retryAfter, apitest.Retryable, 5 * time.Second},
		{"ok:false ratelimited", slackFail("ratelimited"), apitest.Retryable, 0},
		{"internal_error", slackFail("internal_error"), apitest.Retryable, 0},
		{"fatal_error", slackFail("fatal_error"), apitest.Retryable, 0},
		{"service_unavailable", slackFail("service_unavailable"), apitest.Retryable, 0},
		{"request_timeout", slackFail("request_timeout"), apitest.Retryable, 0},
		{"HTTP 500", apitest.Answer{Status: 500, Body: "oops"}, apitest.Retryable, 0},
		{"HTTP 503", apitest.Answer{Status: 503}, apitest.Retryable, 0},
		{"HTTP 200 not JSON", apitest.Answer{Status: 200, Body: "<html>proxy</html>"}, apitest.Retryable, 0},
		{"HTTP 404", apitest.Answer{Status: 404, Body: "no such path"}, apitest.Permanent, 0},
	}
	api := startSlackAPI(t)
	bot := newBot(t, api, Options{})
	for _, c := range cases {
		api.Fail(c.answer)
		msg := note("trigger", c.name)
		msg.DedupKey = "picket/case/" + c.name // a fresh incident each: a post, not a reply
		err := bot.Notify(t.Context(), msg)
		if got := apitest.OutcomeOf(err); got != c.want {
			t.Errorf("%s: %s (%v), want %s", c.name, got, err, c.want)
		}
		if got := notify.RetryAfter(err); got != c.wait {
			t.Errorf("%s: waits %s, want %s", c.name, got, c.wait)
		}
		if c.want != apitest.Delivered && !strings.Contains(apitest.ErrText(err), strings.Fields(c.name)[len(strings.Fields(c.name))-1]) {
			t.Errorf("%s: the error does not name the cause: %v", c.name, err)
		}
	}
}

func TestWrongTokenIsRefusedForGood(t *testing.T) {
	api := startSlackAPI(t)
	bot := New(botConfig(api.URL+"/api", "xoxb-9999-wrong-token"), Options{HTTPClient: apitest.Client(t)})
	err := bot.Notify(t.Context(), note("trigger", "x"))
	if apitest.OutcomeOf(err) != apitest.Permanent || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("a wrong token: %v, want a permanent invalid_auth", err)
	}
}

// TestTokenNeverLeaks: an answer that quotes the Authorization header (in the error
// detail, in a non-JSON body, in a 5xx page), a refused connection and a timeout.
func TestTokenNeverLeaks(t *testing.T) {
	echo := apitest.Start(t, func(r apitest.Request) apitest.Answer {
		auth := r.Header.Get("Authorization")
		switch {
		case strings.HasSuffix(r.Path, "detail"):
			return apitest.JSON(200, map[string]any{"ok": false, "error": "invalid_auth",
				"response_metadata": map[string]any{"messages": []string{"[ERROR] bad token " + auth}}})
		case strings.HasSuffix(r.Path, "page"):
			return apitest.Answer{Status: 200, Body: "<html>" + auth + "</html>"}
		}
		return apitest.Answer{Status: 502, Body: "upstream refused " + auth}
	})
	log, logs := apitest.Logger()
	texts := map[string]string{}
	client := apitest.Client(t)
	for name, base := range map[string]string{"detail": echo.URL + "/detail", "page": echo.URL + "/page", "5xx": echo.URL,
		"refused": "http://127.0.0.1:1"} {
		bot := New(botConfig(base, testToken), Options{HTTPClient: client, Logger: log})
		texts[name] = apitest.ErrText(bot.Notify(t.Context(), note("trigger", "x")))
		if name != "refused" && !strings.Contains(texts[name], scrub.Marker) {
			t.Errorf("%s: the echoed token was not redacted: %s", name, texts[name])
		}
	}
	texts["timeout"] = apitest.TimeoutText(t, func(ctx context.Context, base string) error {
		return New(botConfig(base, testToken), Options{HTTPClient: client, Logger: log}).Notify(ctx, note("trigger", "x"))
	})
	texts["logs"] = logs.String()
	apitest.NoLeak(t, testToken, texts)
}

func TestOtherConfigsAreNotABot(t *testing.T) {
	for name, cfg := range map[string]*config.Notifier{
		"webhook slack": {Name: "x", Slack: &config.Slack{WebhookURL: config.NewSecret("https://hooks.slack.example/x")}},
		"teams":         {Name: "x", Teams: &config.Teams{}},
	} {
		n := New(cfg, Options{})
		if err := n.Notify(t.Context(), note("trigger", "x")); apitest.OutcomeOf(err) != apitest.Permanent || n.Identity() != "" {
			t.Errorf("%s: %v, identity %q", name, err, n.Identity())
		}
	}
	api := startSlackAPI(t)
	a, b := newBot(t, api, Options{}), New(botConfig(api.URL+"/api", "xoxb-other-bot-token-0000"), Options{})
	if a.Identity() == b.Identity() || strings.Contains(apitest.MustJSON(t, a.Identity()), testToken) {
		t.Errorf("identities %s %s", a.Identity(), b.Identity())
	}
}
