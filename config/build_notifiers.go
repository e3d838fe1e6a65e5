package config

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/picket-dev/picket/probe/tmpl"
)

// notifierKinds lists the kinds a notifier may be, for errors.
const notifierKinds = "pagerduty, opsgenie, slack, teams, email, webhook"

// Defaults of the channels.
const (
	OpsgenieUS     = "https://api.opsgenie.com"
	OpsgenieEU     = "https://api.eu.opsgenie.com"
	SlackAPI       = "https://slack.com/api"
	maxEmailTo     = 50
	maxPrefixRunes = 50
)

// opsgenieKey is the shape of an Opsgenie integration key: a UUID.
var opsgenieKey = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// buildChannels compiles the kinds other than PagerDuty into n; it returns how many
// of them spec sets.
func (b *builder) buildChannels(name string, spec *NotifierSpec, n *Notifier) int {
	kinds := 0
	if og := spec.Opsgenie; og != nil {
		kinds++
		n.Opsgenie = b.buildOpsgenie(name, og)
	}
	if sl := spec.Slack; sl != nil {
		kinds++
		n.Slack = b.buildSlack(name, sl)
	}
	if tm := spec.Teams; tm != nil {
		kinds++
		n.Teams = &Teams{URL: b.secretValue(tm, "url", tm.URL)}
		b.checkURL(tm, "url", n.Teams.URL.Reveal())
	}
	if em := spec.Email; em != nil {
		kinds++
		n.Email = b.buildEmail(name, em)
	}
	if wh := spec.Webhook; wh != nil {
		kinds++
		n.Webhook = b.buildWebhook(name, wh)
	}
	return kinds
}

func (b *builder) buildOpsgenie(name string, og *OpsgenieSpec) *Opsgenie {
	out := &Opsgenie{APIKey: b.secretValue(og, "api_key", og.APIKey)}
	switch key := out.APIKey.Reveal(); {
	case og.APIKey == "":
		b.d.errorf(b.d.at(og, ""), "notifier %s: opsgenie.api_key is required (the key of an API integration)", name)
	case key != "" && !opsgenieKey.MatchString(key):
		// The key is not quoted: it is the credential.
		b.d.errorf(b.d.at(og, "api_key"), "notifier %s: an Opsgenie integration key is a UUID (8-4-4-4-12 hex digits), this one is not (%d characters)", name, len(key))
	}
	switch og.Region {
	case "", "us":
		out.APIURL = OpsgenieUS
	case "eu":
		out.APIURL = OpsgenieEU
	default:
		b.d.errorf(b.d.at(og, "region"), "notifier %s: opsgenie.region must be us or eu, got %q", name, og.Region)
	}
	if og.APIURL != "" {
		if og.Region != "" {
			b.d.errorf(b.d.at(og, "api_url"), "notifier %s: set opsgenie.region or opsgenie.api_url, not both", name)
		}
		b.checkURL(og, "api_url", og.APIURL)
		out.APIURL = strings.TrimRight(og.APIURL, "/")
	}
	return out
}

func (b *builder) buildSlack(name string, sl *SlackSpec) *Slack {
	out := &Slack{Channel: sl.Channel}
	switch {
	case sl.WebhookURL != "" && sl.Token != "":
		b.d.errorf(b.d.at(sl, "token"), "notifier %s: set slack.webhook_url (an incoming webhook) or slack.token (a bot), not both", name)
		return out
	case sl.WebhookURL == "" && sl.Token == "":
		b.d.errorf(b.d.at(sl, ""), "notifier %s: slack needs webhook_url (an incoming webhook) or token and channel (a bot)", name)
		return out
	case sl.WebhookURL != "":
		out.WebhookURL = b.secretValue(sl, "webhook_url", sl.WebhookURL)
		b.checkURL(sl, "webhook_url", out.WebhookURL.Reveal())
		if sl.APIURL != "" {
			b.d.errorf(b.d.at(sl, "api_url"), "notifier %s: slack.api_url is for a bot (token); an incoming webhook has only its webhook_url", name)
		}
		return out
	}
	out.Token = b.secretValue(sl, "token", sl.Token)
	if t := out.Token.Reveal(); t != "" && !strings.HasPrefix(t, "xoxb-") && !strings.HasPrefix(t, "xoxp-") {
		b.d.errorf(b.d.at(sl, "token"), "notifier %s: a Slack token starts with xoxb- (a bot's) or xoxp- (a user's); this one does not", name)
	}
	if strings.TrimSpace(sl.Channel) == "" {
		b.d.errorf(b.d.at(sl, ""), "notifier %s: slack.channel is required with a token (a channel ID like C0123456789, or #name)", name)
	}
	out.APIURL = SlackAPI
	if sl.APIURL != "" {
		b.checkURL(sl, "api_url", sl.APIURL)
		out.APIURL = strings.TrimRight(sl.APIURL, "/")
	}
	return out
}

func (b *builder) buildEmail(name string, em *EmailSpec) *Email {
	out := &Email{Host: em.Host, Port: em.Port, TLS: orDefault(em.TLS, EmailStartTLS), Username: em.Username,
		Auth: em.Auth, From: em.From, To: em.To, SubjectPrefix: em.SubjectPrefix}
	if em.Password != "" {
		out.Password = b.secretValue(em, "password", em.Password)
	}
	if strings.TrimSpace(em.Host) == "" {
		b.d.errorf(b.d.at(em, ""), "notifier %s: email.host is required (the SMTP server)", name)
	}
	b.emailTransport(name, em, out)
	if _, err := mail.ParseAddress(em.From); err != nil {
		b.d.errorf(b.d.at(em, "from"), "notifier %s: email.from %q: want one address like picket@example.com or \"Picket <picket@example.com>\"", name, em.From)
	}
	if len(em.To) == 0 || len(em.To) > maxEmailTo {
		b.d.errorf(b.d.at(em, "to"), "notifier %s: email.to: list 1 to %d addresses", name, maxEmailTo)
	}
	for i, to := range em.To {
		if _, err := mail.ParseAddress(to); err != nil {
			b.d.errorf(item(b.d.at(em, "to"), i), "notifier %s: email.to %q: want an address like oncall@example.com", name, to)
		}
	}
	if strings.ContainsAny(em.SubjectPrefix, "\r\n") || len([]rune(em.SubjectPrefix)) > maxPrefixRunes {
		b.d.errorf(b.d.at(em, "subject_prefix"), "notifier %s: email.subject_prefix must be one line of at most %d characters", name, maxPrefixRunes)
	}
	return out
}

// emailTransport checks and defaults how the mail travels: TLS mode, port, and the
// credentials that need TLS.
func (b *builder) emailTransport(name string, em *EmailSpec, out *Email) {
	switch out.TLS {
	case EmailStartTLS:
		out.Port = positiveOr(em.Port, 587)
	case EmailImplicit:
		out.Port = positiveOr(em.Port, 465)
	case EmailNoTLS:
		out.Port = positiveOr(em.Port, 25)
	default:
		b.d.errorf(b.d.at(em, "tls"), "notifier %s: email.tls must be starttls, implicit or none, got %q", name, em.TLS)
	}
	if em.Port < 0 || em.Port > 65535 {
		b.d.errorf(b.d.at(em, "port"), "notifier %s: email.port must be 1 to 65535, got %d", name, em.Port)
	}
	switch {
	case em.Username != "" && em.Password == "":
		b.d.errorf(b.d.at(em, "username"), "notifier %s: email.username needs email.password", name)
	case em.Username == "" && em.Password != "":
		b.d.errorf(b.d.at(em, "password"), "notifier %s: email.password needs email.username", name)
	case em.Username != "" && out.TLS == EmailNoTLS:
		b.d.errorf(b.d.at(em, "tls"), "notifier %s: email.tls: none would send the password in the clear; use starttls or implicit", name)
	}
	switch em.Auth {
	case "", "plain", "login":
	default:
		b.d.errorf(b.d.at(em, "auth"), "notifier %s: email.auth must be plain or login, got %q", name, em.Auth)
	}
	if em.Auth != "" && em.Username == "" {
		b.d.errorf(b.d.at(em, "auth"), "notifier %s: email.auth needs email.username and email.password", name)
	}
}

func (b *builder) buildWebhook(name string, wh *WebhookSpec) *Webhook {
	out := &Webhook{URL: b.secretValue(wh, "url", wh.URL), Headers: map[string]Secret{}}
	b.checkURL(wh, "url", out.URL.Reveal())
	for k, v := range wh.Headers {
		out.Headers[k] = b.secretValue(wh, "headers", v)
	}
	if wh.Body == "" {
		if wh.ContentType != "" {
			b.d.errorf(b.d.at(wh, "content_type"), "notifier %s: webhook.content_type is the type of webhook.body, which is not set", name)
		}
		return out
	}
	out.ContentType = orDefault(wh.ContentType, "application/json")
	mediaType, _, err := mime.ParseMediaType(out.ContentType)
	if err != nil {
		b.d.errorf(b.d.at(wh, "content_type"), "notifier %s: webhook.content_type %q: want a media type like application/json or text/plain; charset=utf-8", name, wh.ContentType)
	}
	t, err := tmpl.ParseFuncs("body", wh.Body, webhookBodyFuncs)
	if err != nil {
		b.d.errorf(b.d.at(wh, "body"), "notifier %s: webhook.body: %v", name, err)
		return out
	}
	out.Body = t
	b.checkBodyRenders(name, wh, t, IsJSONMediaType(mediaType))
	return out
}

// checkBodyRenders renders the body for a sample trigger and resolve, so that a key
// that does not exist, or a JSON body that is not JSON, is a load error rather than
// a notification refused at 3 a.m.
func (b *builder) checkBodyRenders(name string, wh *WebhookSpec, t *tmpl.Template, wantJSON bool) {
	for _, action := range []string{"trigger", "resolve"} {
		body, err := t.Render(WebhookBodySample(action))
		if err != nil {
			b.d.errorf(b.d.at(wh, "body"), "notifier %s: webhook.body for a %s: %v (the fields are %s)", name, action, err,
				strings.Join(WebhookBodyFields, ", "))
			return
		}
		if wantJSON && !json.Valid([]byte(body)) {
			b.d.errorf(b.d.at(wh, "body"), "notifier %s: webhook.body for a sample %s is not valid JSON, as content_type says it is (write strings with {{json .summary}})",
				name, action)
			return
		}
	}
}

// IsJSONMediaType: application/json and the +json types.
func IsJSONMediaType(mediaType string) bool {
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

// webhookBodyFuncs are what a body template may call besides text/template's own:
// json writes any value as JSON (a string with its quotes and escapes).
var webhookBodyFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		data, err := json.Marshal(v)
		return string(data), err
	},
}

// WebhookBodyFields are the fields a body template sees, the webhook payload's
// names; the notifier fills each of them for every notification.
var WebhookBodyFields = []string{"id", "action", "dedup_key", "scope", "subject", "priority", "summary",
	"severity", "source", "component", "group", "class", "details", "links", "created", "opened"}

// WebhookBodySample is a notification's data as a body template sees it, for the
// render check at load.
func WebhookBodySample(action string) tmpl.Data {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return tmpl.Data{
		"id": "picket-check|" + action, "action": action, "dedup_key": "picket/region/eu1", "scope": "region",
		"subject": "eu1", "priority": 1, "summary": "[REGION eu1] 2 of 3 products down", "severity": "critical",
		"source": "vantage", "component": "", "group": "eu1", "class": "",
		"details": map[string]any{"targets": []any{map[string]any{"target": "web/home@eu1", "status": "down"}}},
		"links":   []any{map[string]any{"href": "https://status.example/", "text": "status page"}},
		"created": at.Format(time.RFC3339),
		"opened":  at.Add(-time.Minute).Format(time.RFC3339),
	}
}

// slackWebhookChannel is the warning for a channel set on an incoming webhook.
func slackWebhookChannel(name string) string {
	return fmt.Sprintf("notifier %s: slack.channel is ignored by incoming webhooks (a Slack app's webhook posts only "+
		"to the channel it was made for): remove it, or use a bot (slack.token) to choose the channel", name)
}
