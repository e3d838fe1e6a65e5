// Package slackbot posts notifications to Slack as a bot, through the Web API with a
// bot token: an incident's first message is posted with chat.postMessage, its
// follow-ups (updates) are replies in that message's thread, and its resolve edits
// the first message (chat.update) to say so. An incoming webhook can do none of that:
// it cannot thread, edit, or choose its channel. The messages are the same Block Kit
// as package slack builds.
//
// Where each incident's first message is (channel ID and ts) is kept in a
// ThreadStore, the daemon's state store, so follow-ups still thread after a restart;
// without one it is kept in memory. The token is the credential: no error and no log
// line carries it. It does not retry: the outbox does.
package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/slack"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
)

// Kind is what Kind returns: a bot is a Slack notifier (its config is slack:).
const Kind = slack.Kind

// ThreadBucket is the store bucket of the first messages, by notifier identity and
// dedup key. A record goes when its incident's resolve is delivered; an incident
// whose resolve never comes here leaves one (a few dozen bytes) until the next
// incident of its key replaces it. Dedup keys come from the config's names, so the
// bucket is bounded by the config.
const ThreadBucket = "slack_threads"

// ThreadStore is what the bot needs of persistence; internal/store's *Store has it.
type ThreadStore interface {
	Get(bucket, key string, v any) (found bool, err error)
	Put(bucket, key string, v any) error
	Delete(bucket, key string) error
}

// Options are what the caller injects.
type Options struct {
	HTTPClient *http.Client // nil: notify.NewHTTPClient()
	Logger     *slog.Logger // nil: discard
	Threads    ThreadStore  // nil: in memory, lost on restart
}

// Thread is where an incident's first message is.
type Thread struct {
	Channel string    `json:"channel"` // the channel ID Slack answered with (chat.update wants an ID)
	TS      string    `json:"ts"`
	Opened  time.Time `json:"opened,omitzero"` // the incident's: a later incident of the key starts anew
}

// Notifier posts as one bot to one channel. Safe for concurrent use; the outbox
// sends one dedup key's notifications in order, never two at once.
type Notifier struct {
	notify.Channel // name, kind, limits, HTTP client, logger, misconfig
	token, apiURL  string
	channel        string
	threads        ThreadStore
	secrets        []string
}

// New builds a notifier from its config. A config that is not a Slack bot's yields a
// notifier whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	matches := cfg.Slack != nil && !cfg.Slack.Token.IsZero()
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, matches, notify.ChannelOptions{HTTPClient: opts.HTTPClient, Logger: opts.Logger})}
	if n.Misconfig != nil {
		return n
	}
	n.token, n.channel = cfg.Slack.Token.Reveal(), cfg.Slack.Channel
	n.apiURL = strings.TrimRight(cfg.Slack.APIURL, "/")
	if n.apiURL == "" {
		n.apiURL = config.SlackAPI
	}
	n.threads = opts.Threads
	if n.threads == nil {
		n.threads = newMemory()
	}
	n.secrets = []string{n.token}
	return n
}

// Identity names the bot and its channel (API base, token, channel), hashed: "" for
// a misconfigured notifier, which reaches nothing.
func (n *Notifier) Identity() string { return n.IdentityOf(n.apiURL, n.token, n.channel) }

// Notify posts, threads or edits one message. Slack answers HTTP 200 with
// {"ok": false, "error": CODE} for most failures: ratelimited and Slack's own
// internal_error, fatal_error, service_unavailable and request_timeout are retried,
// every other code (invalid_auth, channel_not_found, not_in_channel, ...) is
// permanent; HTTP 429 (with Retry-After) and 5xx are retried.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send, n.secrets...)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	var err error
	switch msg.Action {
	case notify.ActionTrigger:
		err = n.trigger(ctx, msg)
	case notify.ActionResolve:
		err = n.resolve(ctx, msg)
	default:
		err = notify.Permanent(fmt.Errorf("expected action %s or %s, got %q", notify.ActionTrigger, notify.ActionResolve, msg.Action))
	}
	if err != nil {
		return fmt.Errorf("slack %s: %s %s: %w", n.Name(), msg.Action, msg.DedupKey, err)
	}
	return nil
}

// trigger replies in the incident's thread when its first message is known, else
// posts the first message and records where it is.
func (n *Notifier) trigger(ctx context.Context, msg notify.Notification) error {
	if th, ok := n.thread(msg); ok {
		_, err := n.post(ctx, msg, th.Channel, th.TS)
		return err
	}
	ans, err := n.post(ctx, msg, n.channel, "")
	if err != nil {
		return err
	}
	n.keep(msg, Thread{Channel: ans.Channel, TS: ans.TS, Opened: msg.Opened})
	return nil
}

// resolve edits the first message to say the incident is over. When it is not known
// (posted before a restart without a store, or by another notifier) or no longer
// editable, the resolve is posted as a message of its own: it must be told.
func (n *Notifier) resolve(ctx context.Context, msg notify.Notification) error {
	th, ok := n.thread(msg)
	if !ok {
		_, err := n.post(ctx, msg, n.channel, "")
		return err
	}
	m := slack.BuildMessage(msg, th.Channel)
	_, err := n.call(ctx, "chat.update", update{Channel: th.Channel, TS: th.TS, Text: m.Text, Blocks: m.Blocks})
	var apiErr *APIError
	if errors.As(err, &apiErr) && uneditable[apiErr.Code] {
		_, err = n.post(ctx, msg, th.Channel, "")
	}
	if err != nil {
		return err
	}
	n.forget(msg)
	return nil
}

// uneditable are the codes of a first message that cannot be edited any more.
var uneditable = map[string]bool{"message_not_found": true, "cant_update_message": true, "edit_window_closed": true}

// post is chat.postMessage, in the thread of threadTS when set.
func (n *Notifier) post(ctx context.Context, msg notify.Notification, channel, threadTS string) (answer, error) {
	return n.call(ctx, "chat.postMessage", postMessage{Message: slack.BuildMessage(msg, channel), ThreadTS: threadTS})
}

type postMessage struct {
	slack.Message
	ThreadTS    string `json:"thread_ts,omitempty"`
	UnfurlLinks bool   `json:"unfurl_links"` // false: a status link needs no preview
}

type update struct {
	Channel string        `json:"channel"`
	TS      string        `json:"ts"`
	Text    string        `json:"text"`
	Blocks  []slack.Block `json:"blocks"`
}

// answer is what the Web API says, success or not.
type answer struct {
	OK               bool   `json:"ok"`
	Error            string `json:"error"`
	Channel          string `json:"channel"`
	TS               string `json:"ts"`
	ResponseMetadata struct {
		Messages []string `json:"messages"`
	} `json:"response_metadata"`
}

// APIError is an answer with "ok": false.
type APIError struct {
	Method, Code string
	Detail       string // response_metadata.messages, redacted and cut
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s: Slack answered ok=false: %s", e.Method, e.Code)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// transientCodes are the "ok": false codes worth another try.
var transientCodes = map[string]bool{"ratelimited": true, "rate_limited": true, "internal_error": true,
	"fatal_error": true, "service_unavailable": true, "request_timeout": true}

// call posts v to the Web API method and reads the answer.
func (n *Notifier) call(ctx context.Context, method string, v any) (answer, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return answer{}, notify.Permanent(fmt.Errorf("%s: encode: %w", method, err))
	}
	header := http.Header{"Authorization": {"Bearer " + n.token}, "Content-Type": {"application/json; charset=utf-8"}}
	raw, err := notify.PostJSONAnswer(ctx, n.HTTP, n.apiURL+"/"+method, body, header, n.secrets)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %w", method, err)
	}
	var ans answer
	if err := json.Unmarshal(raw, &ans); err != nil {
		// Not the Web API (a proxy's page): nothing says the message was posted.
		return answer{}, fmt.Errorf("%s: expected Slack's JSON answer, got %q", method,
			scrub.Excerpt([]byte(scrub.Redact(string(raw), n.secrets...)), notify.MaxExcerptBytes))
	}
	if ans.OK {
		return ans, nil
	}
	apiErr := &APIError{Method: method, Code: scrub.Excerpt([]byte(ans.Error), 60),
		Detail: scrub.Excerpt([]byte(scrub.Redact(strings.Join(ans.ResponseMetadata.Messages, "; "), n.secrets...)), notify.MaxExcerptBytes)}
	if transientCodes[ans.Error] {
		return ans, apiErr
	}
	return ans, notify.Permanent(apiErr)
}

// thread is the incident's first message, if known: the record of its dedup key,
// unless that record is of an earlier incident of the key.
func (n *Notifier) thread(msg notify.Notification) (Thread, bool) {
	var th Thread
	found, err := n.threads.Get(ThreadBucket, n.threadKey(msg), &th)
	if err != nil {
		n.Log.Error("slack: reading where an incident's first message is failed; posting anew", "notifier", n.Name(),
			"dedup_key", msg.DedupKey, "err", err)
		return Thread{}, false
	}
	if !found || th.TS == "" || th.Channel == "" {
		return Thread{}, false
	}
	if !th.Opened.IsZero() && !msg.Opened.IsZero() && !th.Opened.Equal(msg.Opened) {
		return Thread{}, false // another incident of the same key
	}
	return th, true
}

// keep records the first message. A failure is logged, not returned: the message was
// posted, and retrying would post it twice; the incident's follow-ups then start a
// message of their own.
func (n *Notifier) keep(msg notify.Notification, th Thread) {
	if th.TS == "" || th.Channel == "" {
		n.Log.Warn("slack: the answer to chat.postMessage had no channel and ts; follow-ups will not thread",
			"notifier", n.Name(), "dedup_key", msg.DedupKey)
		return
	}
	if err := n.threads.Put(ThreadBucket, n.threadKey(msg), th); err != nil {
		n.Log.Error("slack: recording an incident's first message failed; its follow-ups will not thread",
			"notifier", n.Name(), "dedup_key", msg.DedupKey, "err", err)
	}
}

func (n *Notifier) forget(msg notify.Notification) {
	if err := n.threads.Delete(ThreadBucket, n.threadKey(msg)); err != nil {
		n.Log.Error("slack: forgetting a resolved incident's first message failed", "notifier", n.Name(),
			"dedup_key", msg.DedupKey, "err", err)
	}
}

// threadKey: identity first, so two bots (or channels) never share a record and a
// renamed notifier keeps its threads.
func (n *Notifier) threadKey(msg notify.Notification) string {
	return n.Identity() + "|" + msg.DedupKey
}
