// Package chattest is a local stand-in for chat on loopback, pdtest's sibling for the
// channels that never page: it takes what Picket's Slack notifier posts (as a Slack
// incoming webhook would, POST /slack) and what its generic webhook notifier posts
// (POST /hook), checks each loosely the way the real receiver would, keeps what it
// accepted, and shows it at GET /chat. Tests and `picket demo` use it; nothing in
// production does.
//
// Slack answers 200 "ok", or 400 with Slack's error code as plain text:
// invalid_payload (not a JSON object), no_text (neither text nor blocks),
// invalid_blocks (a block without a type). The webhook answers 200, or 400 with the
// problems as JSON: a payload needs a version and a notification with an action
// (trigger or resolve) and a dedup_key. Headers are not kept (they may carry
// credentials), nor is anything from the path.
package chattest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/picket-dev/picket/internal/loopback"
)

// Paths.
const (
	PathSlack = "/slack" // POST: a Slack incoming-webhook message
	PathHook  = "/hook"  // POST: a webhook notifier payload
	PathChat  = "/chat"  // GET: the accepted messages, oldest first
)

// Kinds of a Message: the notifier kinds that post them.
const (
	KindSlack   = "slack"
	KindWebhook = "webhook"
)

// MaxBodyBytes bounds a post; a longer one is answered 413.
const MaxBodyBytes = 1 << 20

// Options configure a Receiver: its loopback address and logger.
type Options = loopback.Options

// Message is one accepted post.
type Message struct {
	Kind     string    `json:"kind"` // slack | webhook
	Received time.Time `json:"received"`
	// Text is what a person reads first: Slack's text (or its first block's text when
	// there is none), the webhook notification's summary.
	Text string `json:"text"`
	// Hook is the incoming webhook it came through: "" for /slack, NAME for /slack/NAME
	// (a Slack webhook posts to the one channel it was made for, so a stand-in of
	// several channels has one URL each).
	Hook     string          `json:"hook,omitempty"`
	Action   string          `json:"action,omitempty"`    // webhook: trigger | resolve
	DedupKey string          `json:"dedup_key,omitempty"` // webhook
	Body     json.RawMessage `json:"body"`                // as posted
}

// Receiver is a running stand-in. Its methods are safe for concurrent use.
type Receiver struct {
	log *slog.Logger
	srv *loopback.Server // its Closing ends WaitFor calls

	mu       sync.Mutex
	messages []Message
	changed  chan struct{} // closed and replaced whenever a message is kept
}

// New starts listening at once and serves until Close.
func New(opts Options) (*Receiver, error) {
	srv, err := loopback.NewServer("chattest", opts)
	if err != nil {
		return nil, err
	}
	r := &Receiver{log: srv.Log, srv: srv, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathSlack, r.handleSlack)
	mux.HandleFunc("POST "+PathSlack+"/{hook}", r.handleSlack)
	mux.HandleFunc("POST "+PathHook, r.handleHook)
	mux.HandleFunc("GET "+PathChat, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, r.Messages()) })
	srv.Start(mux)
	r.log.Info("chattest: chat stand-in listening", "slack", r.SlackURL(), "webhook", r.HookURL())
	return r, nil
}

// BaseURL is http://host:port.
func (r *Receiver) BaseURL() string { return "http://" + r.srv.Addr() }

// SlackURL is where a Slack notifier's webhook_url should point.
func (r *Receiver) SlackURL() string { return r.BaseURL() + PathSlack }

// HookURL is where a webhook notifier's url should point.
func (r *Receiver) HookURL() string { return r.BaseURL() + PathHook }

// Close stops the server and ends WaitFor calls. It is safe to call twice.
func (r *Receiver) Close() error { return r.srv.Close() }

// Messages returns a copy of the accepted messages, in order of arrival.
func (r *Receiver) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneMessages(r.messages)
}

func cloneMessages(msgs []Message) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		m.Body = bytes.Clone(m.Body)
		out[i] = m
	}
	return out
}

// ErrClosed is returned by WaitFor when the receiver closes first.
var ErrClosed = errors.New("chattest: receiver closed")

// WaitFor returns nil as soon as cond holds for the accepted messages, checking at
// once and after every accepted message; ctx's error (wrapped) if ctx ends first, and
// ErrClosed if the receiver closes.
func (r *Receiver) WaitFor(ctx context.Context, cond func([]Message) bool) error {
	return loopback.WaitFor(ctx, "chattest", func() ([]Message, <-chan struct{}) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return cloneMessages(r.messages), r.changed
	}, r.srv.Closing(), ErrClosed, cond)
}

func (r *Receiver) keep(m Message) {
	m.Received = time.Now()
	r.mu.Lock()
	r.messages = append(r.messages, m)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	r.log.Info("chattest: message accepted", "kind", m.Kind, "action", m.Action, "dedup_key", m.DedupKey, "text", m.Text)
}

// slackMessage is what the stand-in reads of a Slack message.
type slackMessage struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
	} `json:"blocks"`
}

func (r *Receiver) handleSlack(w http.ResponseWriter, req *http.Request) {
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	var m slackMessage
	if !isObject(body) || json.Unmarshal(body, &m) != nil {
		r.slackError(w, "invalid_payload")
		return
	}
	text := m.Text
	for _, b := range m.Blocks {
		if b.Type == "" {
			r.slackError(w, "invalid_blocks")
			return
		}
		if text == "" && b.Text != nil {
			text = b.Text.Text
		}
	}
	if text == "" && len(m.Blocks) == 0 {
		r.slackError(w, "no_text")
		return
	}
	r.keep(Message{Kind: KindSlack, Text: text, Hook: req.PathValue("hook"), Body: body})
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

func (r *Receiver) slackError(w http.ResponseWriter, code string) {
	r.log.Warn("chattest: slack message rejected", "error", code)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(code))
}

// hookPayload is what the stand-in reads of a webhook notifier's payload.
type hookPayload struct {
	Version      string `json:"version"`
	Notification *struct {
		Action   string `json:"action"`
		DedupKey string `json:"dedup_key"`
		Summary  string `json:"summary"`
	} `json:"notification"`
}

func (r *Receiver) handleHook(w http.ResponseWriter, req *http.Request) {
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	var p hookPayload
	var problems []string
	if !isObject(body) || json.Unmarshal(body, &p) != nil {
		problems = append(problems, "expected a JSON object {version, notification}")
	} else {
		if p.Version == "" {
			problems = append(problems, "version: required")
		}
		if n := p.Notification; n == nil {
			problems = append(problems, "notification: required")
		} else {
			if n.Action != "trigger" && n.Action != "resolve" {
				problems = append(problems, fmt.Sprintf("notification.action: expected trigger or resolve, got %q", n.Action))
			}
			if n.DedupKey == "" {
				problems = append(problems, "notification.dedup_key: required")
			}
		}
	}
	if len(problems) > 0 {
		r.log.Warn("chattest: webhook payload rejected", "problems", problems)
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": problems})
		return
	}
	n := p.Notification
	r.keep(Message{Kind: KindWebhook, Text: n.Summary, Action: n.Action, DedupKey: n.DedupKey, Body: body})
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readBody reads at most MaxBodyBytes, trimmed of white space; ok false means it
// answered (413), or the client went away and nobody is left to answer.
func readBody(w http.ResponseWriter, req *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, fmt.Sprintf("body larger than %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		return nil, false // the client went away mid-body
	}
	return bytes.TrimSpace(body), true
}

// isObject reports whether body is one JSON object (json.Unmarshal into a struct also
// takes null).
func isObject(body []byte) bool { return len(body) > 0 && body[0] == '{' && json.Valid(body) }

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "chattest: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
