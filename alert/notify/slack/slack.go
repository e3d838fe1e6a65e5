// Package slack posts notifications to a Slack incoming webhook as Block Kit
// messages. The webhook URL is the credential: no error and no log line carries it.
// It does not retry: the outbox does.
package slack

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Kind is what Kind returns.
const Kind = "slack"

// Options are what the caller injects: an HTTP client and a logger.
type Options = notify.ChannelOptions

// Notifier posts to one incoming webhook. Safe for concurrent use.
type Notifier struct {
	notify.Channel // name, kind, limits, HTTP client, logger, misconfig
	url            string
	channel        string
	secrets        []string // the URL and the parts of it an answer might echo
}

// New builds a notifier from its config. A config that is not Slack's yields a notifier
// whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, cfg.Slack != nil, opts)}
	if n.Misconfig != nil {
		return n
	}
	n.url = cfg.Slack.WebhookURL.Reveal()
	n.channel = cfg.Slack.Channel
	n.secrets = notify.URLSecrets(n.url)
	return n
}

// Identity names where messages go (the webhook URL and the channel it is told to
// post in), hashed: "" for a misconfigured notifier, which reaches nothing.
func (n *Notifier) Identity() string {
	return n.IdentityOf(n.url, n.channel)
}

// Notify posts one message. Slack answers 200 "ok"; its 4xx (400 invalid_payload, 403
// action_prohibited, 404 no_service, 410 channel_is_archived) are permanent, 429 and
// 5xx retryable.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	if msg.Action != notify.ActionTrigger && msg.Action != notify.ActionResolve {
		return notify.Permanent(fmt.Errorf("slack %s: expected action %s or %s, got %q", n.Name(), notify.ActionTrigger, notify.ActionResolve, msg.Action))
	}
	body, err := json.Marshal(BuildMessage(msg, n.channel))
	if err != nil {
		return notify.Permanent(fmt.Errorf("slack %s: encode message: %w", n.Name(), err))
	}
	if err := notify.PostJSON(ctx, n.HTTP, n.url, body, nil, n.secrets); err != nil {
		return fmt.Errorf("slack %s: %s %s: %w", n.Name(), msg.Action, msg.DedupKey, err)
	}
	return nil
}
