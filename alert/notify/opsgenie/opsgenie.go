// Package opsgenie sends notifications to Opsgenie's Alert API v2: a trigger creates
// an alert whose alias is the dedup key (Opsgenie keeps one open alert per alias, so
// an update of an open incident is counted as a duplicate of it), a resolve closes
// the alert by alias. The integration's API key is sent as "Authorization: GenieKey
// KEY" and is the credential: no error and no log line carries it. Opsgenie answers
// 202 and processes the request later; it does not retry: the outbox does.
package opsgenie

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Kind is what Kind returns.
const Kind = "opsgenie"

// Limits of the Alert API v2 (docs.opsgenie.com/docs/alert-api).
const (
	MaxMessageRunes     = 130
	MaxAliasRunes       = 512
	MaxDescriptionRunes = 15000
	MaxSourceRunes      = 100
	MaxEntityRunes      = 512
	MaxNoteRunes        = 25000
	MaxTags             = 20
	MaxTagRunes         = 50
	// MaxDetailsRunes bounds the custom properties, keys and values together.
	MaxDetailsRunes = 8000
	user            = "Picket"
)

// Options are what the caller injects.
type Options = notify.ChannelOptions

// Notifier sends to one Opsgenie API integration. Safe for concurrent use.
type Notifier struct {
	notify.Channel // name, kind, limits, HTTP client, logger, misconfig
	apiKey         string
	apiURL         string // https://api.opsgenie.com, its EU twin, or api_url
}

// New builds a notifier from its config. A config that is not Opsgenie's yields a
// notifier whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, cfg.Opsgenie != nil, opts)}
	if n.Misconfig != nil {
		return n
	}
	n.apiKey = cfg.Opsgenie.APIKey.Reveal()
	n.apiURL = strings.TrimRight(cfg.Opsgenie.APIURL, "/")
	if n.apiURL == "" {
		n.apiURL = config.OpsgenieUS
	}
	return n
}

// Identity names the integration (API host and key), hashed: "" for a misconfigured
// notifier, which reaches nothing.
func (n *Notifier) Identity() string { return n.IdentityOf(n.apiURL, n.apiKey) }

// Notify creates or closes one alert. 202 is success; 400 (bad JSON), 401 (bad key),
// 402, 403, 404 and 422 (a field out of bounds) are permanent; 429 and 5xx retryable.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send, n.apiKey)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	endpoint, body, err := n.request(msg)
	if err != nil {
		return notify.Permanent(fmt.Errorf("opsgenie %s: %w", n.Name(), err))
	}
	header := http.Header{"Authorization": {"GenieKey " + n.apiKey}}
	if err := notify.PostJSON(ctx, n.HTTP, endpoint, body, header, []string{n.apiKey}); err != nil {
		return fmt.Errorf("opsgenie %s: %s %s: %w", n.Name(), msg.Action, msg.DedupKey, err)
	}
	return nil
}

// request is the URL and body for msg: POST /v2/alerts to create, POST
// /v2/alerts/ALIAS/close?identifierType=alias to close.
func (n *Notifier) request(msg notify.Notification) (string, []byte, error) {
	if msg.DedupKey == "" {
		return "", nil, fmt.Errorf("expected a dedup key (the alert's alias), got none")
	}
	var v any
	endpoint := n.apiURL + "/v2/alerts"
	switch msg.Action {
	case notify.ActionTrigger:
		v = NewAlert(msg)
	case notify.ActionResolve:
		endpoint += "/" + url.PathEscape(Alias(msg.DedupKey)) + "/close?identifierType=alias"
		v = Close{User: user, Source: notify.Cut(msg.Source, MaxSourceRunes), Note: notify.Cut("Resolved: "+summary(msg), MaxNoteRunes)}
	default:
		return "", nil, fmt.Errorf("expected action %s or %s, got %q", notify.ActionTrigger, notify.ActionResolve, msg.Action)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return "", nil, fmt.Errorf("encode request: %w", err)
	}
	return endpoint, body, nil
}

// Alert is the body of a create-alert request.
type Alert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source,omitempty"`
	Priority    string            `json:"priority"`
	User        string            `json:"user,omitempty"`
}

// Close is the body of a close-alert request.
type Close struct {
	User   string `json:"user,omitempty"`
	Source string `json:"source,omitempty"`
	Note   string `json:"note,omitempty"`
}

// NewAlert maps a trigger to an alert, every field within Opsgenie's bounds.
func NewAlert(msg notify.Notification) Alert {
	entity := msg.Subject
	if entity == "" {
		entity = msg.Component
	}
	return Alert{
		Message:     notify.Cut(summary(msg), MaxMessageRunes),
		Alias:       Alias(msg.DedupKey),
		Description: notify.Cut(description(msg), MaxDescriptionRunes),
		Tags:        tags(msg),
		Details:     details(msg.Details),
		Entity:      notify.Cut(entity, MaxEntityRunes),
		Source:      notify.Cut(msg.Source, MaxSourceRunes),
		Priority:    Priority(msg),
		User:        user,
	}
}

// Alias is the dedup key, or (past 512 characters, which Picket's keys never reach)
// its cut: the same key always gives the same alias.
func Alias(dedupKey string) string { return cutPlain(dedupKey, MaxAliasRunes) }

// Priority maps the incident's priority (1 most important) to P1..P5. A notice has
// none: then its severity decides (critical P1, error P2, warning P3, info P5). A
// degraded incident (warning) pages one step lower than an outage of its priority.
func Priority(msg notify.Notification) string {
	p := msg.Priority
	if p < 1 || p > 5 {
		switch msg.Severity {
		case notify.SeverityCritical:
			p = 1
		case notify.SeverityError:
			p = 2
		case notify.SeverityInfo:
			p = 5
		default:
			p = 3
		}
	} else if msg.Severity == notify.SeverityWarning {
		p = min(p+1, 5)
	}
	return fmt.Sprintf("P%d", p)
}

func summary(msg notify.Notification) string {
	if s := strings.Join(strings.Fields(msg.Summary), " "); s != "" {
		return s
	}
	return "Picket incident " + msg.DedupKey
}

// description is the summary, the facts and the links, one per line.
func description(msg notify.Notification) string {
	lines := []string{summary(msg), ""}
	for _, f := range [][2]string{{"Severity", msg.Severity}, {"Scope", strings.TrimSpace(msg.Scope + " " + msg.Subject)},
		{"Product", msg.Component}, {"Region", msg.Group}, {"Journey", msg.Class}, {"Source", msg.Source}, {"Dedup key", msg.DedupKey}} {
		if f[1] != "" {
			lines = append(lines, f[0]+": "+f[1])
		}
	}
	for _, l := range msg.Links {
		lines = append(lines, strings.TrimSpace(l.Text+" "+l.Href))
	}
	return strings.Join(lines, "\n")
}

// tags say where the incident is, for Opsgenie's routing rules and filters.
func tags(msg notify.Notification) []string {
	out := []string{"picket"}
	for _, t := range [][2]string{{"scope", msg.Scope}, {"product", msg.Component}, {"region", msg.Group},
		{"journey", msg.Class}, {"severity", msg.Severity}} {
		if t[1] != "" {
			out = append(out, cutPlain(t[0]+":"+t[1], MaxTagRunes))
		}
	}
	return out[:min(len(out), MaxTags)]
}

// details flattens the evidence into Opsgenie's string-to-string custom properties:
// strings as they are, anything else as JSON, in key order until MaxDetailsRunes.
func details(d map[string]any) map[string]string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]string{}
	room := MaxDetailsRunes
	for _, k := range keys {
		v, ok := d[k].(string)
		if !ok {
			data, err := json.Marshal(d[k])
			if err != nil {
				continue
			}
			v = string(data)
		}
		size := utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
		if size > room {
			continue // a smaller one further on may still fit
		}
		room -= size
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// cutPlain shortens s to n runes without a mark, for identifiers.
func cutPlain(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
