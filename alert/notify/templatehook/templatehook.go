// Package templatehook posts notifications to an HTTP endpoint in a body the config
// writes: a webhook's body: template (Go text/template, parsed and bounded as every
// config template is, test-rendered at load) over the notification's fields, sent
// with its content_type. It is for receivers that want their own shape (a chat tool's
// incoming hook, a ticket API) rather than Picket's JSON payload. The URL and header
// values are secrets, as for the webhook notifier; the body carries none. It does not
// retry: the outbox does.
package templatehook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/webhook"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/tmpl"
)

// Kind is what Kind returns: a templated webhook is a webhook.
const Kind = webhook.Kind

// Options are what the caller injects.
type Options = notify.ChannelOptions

// Notifier posts rendered bodies to one endpoint. Safe for concurrent use.
type Notifier struct {
	notify.Channel // name, kind, limits, HTTP client, logger, misconfig
	url            string
	header         http.Header
	secrets        []string
	body           *tmpl.Template
}

// New builds a notifier from its config. A config that is not a webhook with a body
// yields a notifier whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	matches := cfg.Webhook != nil && cfg.Webhook.Body != nil
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, matches, opts)}
	if n.Misconfig != nil {
		return n
	}
	n.url, n.header, n.secrets = webhook.Endpoint(cfg.Webhook)
	n.header.Set("Content-Type", cfg.Webhook.ContentType)
	n.body = cfg.Webhook.Body
	return n
}

// Identity names the endpoint (its URL), as the webhook notifier's does: the same URL
// is the same destination whatever the body.
func (n *Notifier) Identity() string { return n.IdentityOf(n.url) }

// Notify renders and posts one notification; any 2xx is success, the rest as
// notify.Classify says. A body that does not render is refused for good: the same
// notification would fail the same way.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	data, err := Data(msg)
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook %s: %w", n.Name(), err))
	}
	body, err := n.body.Render(data)
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook %s: render body: %w", n.Name(), err))
	}
	if err := notify.PostJSON(ctx, n.HTTP, n.url, []byte(body), webhook.WithIdempotencyKey(n.header, msg.ID), n.secrets); err != nil {
		return fmt.Errorf("webhook %s: %s %s: %w", n.Name(), msg.Action, msg.DedupKey, err)
	}
	return nil
}

// Data is what a body template sees: config.WebhookBodyFields, named as in the
// webhook's JSON payload, every one present (missing keys are template errors).
// Details and links are as JSON has them (maps and lists), times RFC 3339 ("" when
// unset).
func Data(msg notify.Notification) (tmpl.Data, error) {
	var details, links any
	if err := roundTrip(msg.Details, &details); err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	if err := roundTrip(msg.Links, &links); err != nil {
		return nil, fmt.Errorf("links: %w", err)
	}
	if details == nil {
		details = map[string]any{}
	}
	if links == nil {
		links = []any{}
	}
	return tmpl.Data{
		"id": msg.ID, "action": msg.Action, "dedup_key": msg.DedupKey, "scope": msg.Scope, "subject": msg.Subject,
		"priority": msg.Priority, "summary": msg.Summary, "severity": msg.Severity, "source": msg.Source,
		"component": msg.Component, "group": msg.Group, "class": msg.Class, "details": details, "links": links,
		"created": rfc3339(msg.Created), "opened": rfc3339(msg.Opened),
	}, nil
}

func roundTrip(v, into any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
