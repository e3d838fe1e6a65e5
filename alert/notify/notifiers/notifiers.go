// Package notifiers builds the configured notifiers. It sits above the per-channel
// packages so that package notify itself imports none of them.
package notifiers

import (
	"log/slog"
	"net/http"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/pagerduty"
	"github.com/picket-dev/picket/alert/notify/slack"
	"github.com/picket-dev/picket/alert/notify/webhook"
	"github.com/picket-dev/picket/config"
)

// Every channel is a Notifier that names its destination and has limits.
var _ = []interface {
	notify.Notifier
	notify.Identifier
	notify.Limited
}{(*pagerduty.Notifier)(nil), (*slack.Notifier)(nil), (*webhook.Notifier)(nil)}

// Build makes one Notifier per configured notifier. client may be nil (each package's
// default: no redirects, bounded answers).
func Build(cfg *config.Config, client *http.Client, logger *slog.Logger) map[string]notify.Notifier {
	out := make(map[string]notify.Notifier, len(cfg.Notifiers))
	for name, n := range cfg.Notifiers {
		switch {
		case n.PagerDuty != nil:
			out[name] = pagerduty.New(n, pagerduty.Options{HTTPClient: client, Logger: logger})
		case n.Slack != nil:
			out[name] = slack.New(n, slack.Options{HTTPClient: client, Logger: logger})
		case n.Webhook != nil:
			out[name] = webhook.New(n, webhook.Options{HTTPClient: client, Logger: logger})
		}
	}
	return out
}

// Secrets lists every credential of the configured notifiers (routing keys, webhook URLs
// and the parts of them an answer may echo, header values), for scrub.Redact: a last
// line for output that quotes receivers' answers, after each notifier's own redaction.
func Secrets(cfg *config.Config) []string {
	var out []string
	for _, n := range cfg.Notifiers {
		switch {
		case n.PagerDuty != nil:
			out = append(out, n.PagerDuty.RoutingKey.Reveal())
		case n.Slack != nil:
			out = append(out, notify.URLSecrets(n.Slack.WebhookURL.Reveal())...)
		case n.Webhook != nil:
			out = append(out, notify.URLSecrets(n.Webhook.URL.Reveal())...)
			for _, v := range n.Webhook.Headers {
				out = append(out, v.Reveal())
			}
		}
	}
	return out
}
