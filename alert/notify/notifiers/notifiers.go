// Package notifiers builds the configured notifiers. It sits above the per-channel
// packages so that package notify itself imports none of them.
package notifiers

import (
	"log/slog"
	"net/http"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/email"
	"github.com/picket-dev/picket/alert/notify/opsgenie"
	"github.com/picket-dev/picket/alert/notify/pagerduty"
	"github.com/picket-dev/picket/alert/notify/slack"
	"github.com/picket-dev/picket/alert/notify/slackbot"
	"github.com/picket-dev/picket/alert/notify/teams"
	"github.com/picket-dev/picket/alert/notify/templatehook"
	"github.com/picket-dev/picket/alert/notify/webhook"
	"github.com/picket-dev/picket/config"
)

// Every channel is a Notifier that names its destination and has limits.
var _ = []interface {
	notify.Notifier
	notify.Identifier
	notify.Limited
}{(*pagerduty.Notifier)(nil), (*opsgenie.Notifier)(nil), (*slack.Notifier)(nil), (*slackbot.Notifier)(nil),
	(*teams.Notifier)(nil), (*email.Notifier)(nil), (*webhook.Notifier)(nil), (*templatehook.Notifier)(nil)}

// Options are what every notifier may be handed.
type Options struct {
	HTTPClient *http.Client // nil: each package's default (no redirects, bounded answers)
	Logger     *slog.Logger
	// Threads keeps where a Slack bot's incidents began (the state store), so that
	// follow-ups thread after a restart; nil: in memory.
	Threads slackbot.ThreadStore
}

// Build makes one Notifier per configured notifier. client may be nil (each package's
// default: no redirects, bounded answers).
func Build(cfg *config.Config, client *http.Client, logger *slog.Logger) map[string]notify.Notifier {
	return BuildWith(cfg, Options{HTTPClient: client, Logger: logger})
}

// BuildWith is Build with every option.
func BuildWith(cfg *config.Config, o Options) map[string]notify.Notifier {
	out := make(map[string]notify.Notifier, len(cfg.Notifiers))
	ch := notify.ChannelOptions{HTTPClient: o.HTTPClient, Logger: o.Logger} // the Options of the channels that take no more
	for name, n := range cfg.Notifiers {
		switch {
		case n.PagerDuty != nil:
			out[name] = pagerduty.New(n, ch)
		case n.Opsgenie != nil:
			out[name] = opsgenie.New(n, ch)
		case n.Slack != nil && !n.Slack.Token.IsZero():
			out[name] = slackbot.New(n, slackbot.Options{HTTPClient: o.HTTPClient, Logger: o.Logger, Threads: o.Threads})
		case n.Slack != nil:
			out[name] = slack.New(n, ch)
		case n.Teams != nil:
			out[name] = teams.New(n, ch)
		case n.Email != nil:
			out[name] = email.New(n, email.Options{Logger: o.Logger})
		case n.Webhook != nil && n.Webhook.Body != nil:
			out[name] = templatehook.New(n, ch)
		case n.Webhook != nil:
			out[name] = webhook.New(n, ch)
		}
	}
	return out
}

// Secrets lists every credential of the configured notifiers (routing keys, API keys,
// tokens, passwords, webhook URLs and the parts of them an answer may echo, header
// values), for scrub.Redact: a last line for output that quotes receivers' answers,
// after each notifier's own redaction.
func Secrets(cfg *config.Config) []string {
	var out []string
	for _, n := range cfg.Notifiers {
		switch {
		case n.PagerDuty != nil:
			out = append(out, n.PagerDuty.RoutingKey.Reveal())
		case n.Opsgenie != nil:
			out = append(out, n.Opsgenie.APIKey.Reveal())
		case n.Slack != nil:
			out = append(out, n.Slack.Token.Reveal())
			out = append(out, notify.URLSecrets(n.Slack.WebhookURL.Reveal())...)
		case n.Teams != nil:
			out = append(out, notify.URLSecrets(n.Teams.URL.Reveal())...)
		case n.Email != nil:
			out = append(out, n.Email.Password.Reveal())
		case n.Webhook != nil:
			out = append(out, notify.URLSecrets(n.Webhook.URL.Reveal())...)
			for _, v := range n.Webhook.Headers {
				out = append(out, v.Reveal())
			}
		}
	}
	return out
}
