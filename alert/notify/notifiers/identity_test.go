package notifiers_test

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/notify/pagerduty"
	"github.com/picket-dev/picket/alert/notify/slack"
	"github.com/picket-dev/picket/alert/notify/webhook"
	"github.com/picket-dev/picket/config"
)

const slackURL = "https://hooks.slack.com/services/T0000/B0000/XXXXslackTOKENxxxx"

func pd(name, eventsURL, key string) *config.Notifier {
	return &config.Notifier{Name: name, PagerDuty: &config.PagerDuty{RoutingKey: config.NewSecret(key), EventsURL: eventsURL}}
}

func slackTo(name, url, channel string) *config.Notifier {
	return &config.Notifier{Name: name, Slack: &config.Slack{WebhookURL: config.NewSecret(url), Channel: channel}}
}

func hookTo(name, url, header string) *config.Notifier {
	return &config.Notifier{Name: name, Webhook: &config.Webhook{URL: config.NewSecret(url),
		Headers: map[string]config.Secret{"Authorization": config.NewSecret(header)}}}
}

// identity builds n as the daemon does and asks its identity.
func identity(t *testing.T, n *config.Notifier) string {
	t.Helper()
	built := notifiers.Build(configOf(n), nil, nil)[n.Name]
	id, ok := built.(notify.Identifier)
	if !ok {
		t.Fatalf("the %s notifier is no notify.Identifier", n.Kind())
	}
	return id.Identity()
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestIdentity: the same kind and destination under another name is the same
// notifier; anything that changes where pages go is another; no identity reveals a
// secret.
func TestIdentity(t *testing.T) {
	const events = "https://events.example.com/v2/enqueue"
	cases := []struct {
		name    string
		a, b    *config.Notifier
		same    bool
		secrets []string
	}{
		{"pagerduty renamed", pd("a", events, routingKey), pd("b", events, routingKey), true, []string{routingKey}},
		{"pagerduty, events URL spelled with and without /v2/enqueue", pd("a", events, routingKey),
			pd("b", "https://events.example.com", routingKey), true, []string{routingKey}},
		{"pagerduty, another routing key", pd("a", events, routingKey), pd("a", events, otherRoutingKey), false,
			[]string{routingKey, otherRoutingKey}},
		{"pagerduty, another events URL", pd("a", events, routingKey), pd("a", "", routingKey), false, []string{routingKey}},
		{"slack renamed", slackTo("a", slackURL, "#ops"), slackTo("b", slackURL, "#ops"), true, []string{slackURL, "XXXXslackTOKENxxxx"}},
		{"slack, another channel", slackTo("a", slackURL, "#ops"), slackTo("a", slackURL, "#dev"), false, []string{slackURL}},
		{"webhook renamed, another header", hookTo("a", "https://h.example.com/"+hookToken, "Bearer s3cr3t-h3ad3r"),
			hookTo("b", "https://h.example.com/"+hookToken, "Bearer 0ther-h3ad3r"), true, []string{hookToken, "s3cr3t-h3ad3r"}},
		{"webhook, another URL", hookTo("a", "https://h.example.com/"+hookToken, "x"),
			hookTo("a", "https://h.example.com/other", "x"), false, []string{hookToken}},
		{"pagerduty and webhook on one URL", pd("a", events, routingKey), hookTo("a", events, "x"), false, []string{routingKey}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := identity(t, tc.a), identity(t, tc.b)
			if (a == b) != tc.same {
				t.Errorf("identities %s and %s: equal %v, want %v", a, b, a == b, tc.same)
			}
			for _, id := range []string{a, b} {
				if !hexSHA256.MatchString(id) {
					t.Errorf("identity %q is not a hex SHA-256", id)
				}
				for _, s := range tc.secrets {
					for _, form := range []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s))} {
						if strings.Contains(id, form) {
							t.Errorf("identity %s carries a secret", id)
						}
					}
				}
			}
		})
	}
}

// TestMisconfiguredNotifierHasNoIdentity: a notifier built from another kind's config
// reaches nothing, so nothing may be matched to it.
func TestMisconfiguredNotifierHasNoIdentity(t *testing.T) {
	wrong := slackTo("x", slackURL, "")
	for _, n := range []notify.Identifier{
		pagerduty.New(wrong, pagerduty.Options{}),
		webhook.New(wrong, webhook.Options{}),
		slack.New(pd("x", "", routingKey), slack.Options{}),
	} {
		if id := n.Identity(); id != "" {
			t.Errorf("%T built from another kind's config has identity %q, want none", n, id)
		}
	}
}
