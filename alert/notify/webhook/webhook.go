// Package webhook posts notifications as JSON to any HTTP endpoint:
//
//	{"version": "1", "notification": {...notify.Notification...}}
//
// with the configured headers (whose values are secrets, as is the URL) and an
// Idempotency-Key header carrying the notification's ID, since the outbox may deliver
// one notification more than once. It does not retry: the outbox does.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Kind is what Kind returns.
const Kind = "webhook"

// Version is the payload's version; it changes only when a field changes meaning or
// goes away.
const Version = "1"

// Options are what the caller injects: an HTTP client and a logger.
type Options = notify.ChannelOptions

// Payload is the body posted.
type Payload struct {
	Version      string              `json:"version"`
	Notification notify.Notification `json:"notification"`
}

// Notifier posts to one endpoint. Safe for concurrent use.
type Notifier struct {
	notify.Channel // name, kind, limits, HTTP client, logger, misconfig
	url            string
	header         http.Header
	secrets        []string // the URL, the parts of it an answer might echo, header values
}

// New builds a notifier from its config. A config that is not a webhook's yields a
// notifier whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, cfg.Webhook != nil, opts)}
	if n.Misconfig != nil {
		return n
	}
	n.url, n.header, n.secrets = Endpoint(cfg.Webhook)
	return n
}

// Endpoint is where a webhook config posts: its URL, its headers, and the secrets an
// error must not quote (the URL, the parts of it an answer might echo, header values).
func Endpoint(cfg *config.Webhook) (rawURL string, header http.Header, secrets []string) {
	rawURL = cfg.URL.Reveal()
	secrets = notify.URLSecrets(rawURL)
	header = http.Header{}
	for name, value := range cfg.Headers {
		header.Set(name, value.Reveal())
		secrets = append(secrets, value.Reveal())
	}
	return rawURL, header, secrets
}

// Identity names the endpoint (its URL; headers are credentials, not where it goes),
// hashed: "" for a misconfigured notifier, which reaches nothing.
func (n *Notifier) Identity() string {
	return n.IdentityOf(n.url)
}

// Notify posts one notification; any 2xx is success, the rest as notify.Classify says.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	body, err := json.Marshal(Payload{Version: Version, Notification: msg})
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook %s: encode notification: %w", n.Name(), err))
	}
	if err := notify.PostJSON(ctx, n.HTTP, n.url, body, WithIdempotencyKey(n.header, msg.ID), n.secrets); err != nil {
		return fmt.Errorf("webhook %s: %s %s: %w", n.Name(), msg.Action, msg.DedupKey, err)
	}
	return nil
}

// WithIdempotencyKey is a copy of header with Idempotency-Key set to the
// notification's ID, unless the config set one: the outbox may deliver a
// notification twice, and a receiver that keeps the key can tell.
func WithIdempotencyKey(header http.Header, id string) http.Header {
	out := header.Clone()
	if id != "" && out.Get("Idempotency-Key") == "" {
		out.Set("Idempotency-Key", id)
	}
	return out
}
