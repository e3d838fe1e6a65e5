// Package teams posts notifications to Microsoft Teams through a Workflows webhook
// (Power Automate's "When a Teams webhook request is received" trigger, which
// replaced the retired Office 365 connectors): a message with one Adaptive Card
// attachment, which the workflow's "Post card in a chat or channel" step shows. The
// URL carries the workflow's signature (sig=...) and is the credential: no error and
// no log line carries it. The trigger answers 202 and runs the flow later; it does
// not retry: the outbox does.
package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Kind is what Kind returns.
const Kind = "teams"

// Card limits: Teams refuses messages over 28 KB; the card keeps under it with room.
const (
	MaxPayloadBytes = 24 << 10
	CardVersion     = "1.4" // what Teams renders on desktop, web and mobile
	maxTitleRunes   = 300
	maxFactRunes    = 500
	maxTargets      = 10
	maxErrorRunes   = 300
	maxActions      = 5
)

// Options are what the caller injects.
type Options = notify.ChannelOptions

// Notifier posts to one workflow. Safe for concurrent use.
type Notifier struct {
	notify.Channel // name, kind, limits, HTTP client, logger, misconfig
	url            string
	secrets        []string // the URL and the parts of it an answer might echo (sig)
}

// New builds a notifier from its config. A config that is not Teams' yields a notifier
// whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, cfg.Teams != nil, opts)}
	if n.Misconfig != nil {
		return n
	}
	n.url = cfg.Teams.URL.Reveal()
	n.secrets = notify.URLSecrets(n.url)
	return n
}

// Identity names the workflow (its URL), hashed: "" for a misconfigured notifier.
func (n *Notifier) Identity() string { return n.IdentityOf(n.url) }

// Notify posts one card. The trigger answers 202; 400 (the body does not match the
// trigger's schema), 401/403 (a wrong or revoked sig) and 404 (the flow was deleted
// or turned off) are permanent, 429 and 5xx retryable.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	if msg.Action != notify.ActionTrigger && msg.Action != notify.ActionResolve {
		return notify.Permanent(fmt.Errorf("teams %s: expected action %s or %s, got %q", n.Name(), notify.ActionTrigger, notify.ActionResolve, msg.Action))
	}
	body, err := json.Marshal(BuildMessage(msg))
	if err != nil {
		return notify.Permanent(fmt.Errorf("teams %s: encode card: %w", n.Name(), err))
	}
	if err := notify.PostJSON(ctx, n.HTTP, n.url, body, nil, n.secrets); err != nil {
		return fmt.Errorf("teams %s: %s %s: %w", n.Name(), msg.Action, msg.DedupKey, err)
	}
	return nil
}

// Message is the body the trigger expects: {"type": "message", "attachments": [...]}.
type Message struct {
	Type        string       `json:"type"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment holds the card.
type Attachment struct {
	ContentType string  `json:"contentType"`
	ContentURL  *string `json:"contentUrl"` // null, as the schema has it
	Content     Card    `json:"content"`
}

// Card is an Adaptive Card.
type Card struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Body    []Element      `json:"body"`
	Actions []Action       `json:"actions,omitempty"`
	MSTeams map[string]any `json:"msteams,omitempty"`
}

// Element is the subset of card elements used: TextBlock and FactSet.
type Element struct {
	Type      string `json:"type"`
	Text      string `json:"text,omitempty"`
	Size      string `json:"size,omitempty"`
	Weight    string `json:"weight,omitempty"`
	Color     string `json:"color,omitempty"`
	Style     string `json:"style,omitempty"`
	Wrap      bool   `json:"wrap,omitempty"`
	IsSubtle  bool   `json:"isSubtle,omitempty"`
	Separator bool   `json:"separator,omitempty"`
	Facts     []Fact `json:"facts,omitempty"`
}

// Fact is one row of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Action is an Action.OpenUrl button.
type Action struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// BuildMessage renders a notification as a card: a coloured title (red for a
// critical or error trigger, yellow for a warning, green for a resolve), the facts,
// the affected targets, the dedup key, and a button per link; cut to stay under
// MaxPayloadBytes.
func BuildMessage(msg notify.Notification) Message {
	card := Card{
		Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: CardVersion,
		Body: compact(title(msg), facts(msg), targets(msg.Details, maxTargets), footer(msg)), Actions: actions(msg.Links),
		MSTeams: map[string]any{"width": "Full"},
	}
	m := Message{Type: "message", Attachments: []Attachment{{ContentType: "application/vnd.microsoft.card.adaptive", Content: card}}}
	// Each part is cut to its own bound; only targets with long names and errors in
	// wide characters can add up past the limit. Then fewer targets are shown.
	for shown := maxTargets - 1; shown >= 0 && size(m) > MaxPayloadBytes; shown-- {
		m.Attachments[0].Content.Body = compact(title(msg), facts(msg), targets(msg.Details, shown), footer(msg))
	}
	return m
}

func size(m Message) int {
	data, _ := json.Marshal(m)
	return len(data)
}

func compact(elems ...*Element) []Element {
	out := make([]Element, 0, len(elems))
	for _, e := range elems {
		if e != nil {
			out = append(out, *e)
		}
	}
	return out
}

func title(msg notify.Notification) *Element {
	text := strings.Join(strings.Fields(msg.Summary), " ")
	if text == "" {
		text = "Picket incident " + msg.DedupKey
	}
	color := "Attention"
	switch {
	case msg.Action == notify.ActionResolve:
		text, color = "✅ Resolved: "+text, "Good"
	case msg.Severity == notify.SeverityWarning:
		color = "Warning"
	case msg.Severity == notify.SeverityInfo:
		color = "Accent"
	}
	return &Element{Type: "TextBlock", Text: escape(notify.Cut(text, maxTitleRunes)), Size: "Large", Weight: "Bolder",
		Color: color, Style: "heading", Wrap: true}
}

func facts(msg notify.Notification) *Element {
	pairs := [][2]string{{"Severity", msg.Severity}, {"Scope", strings.TrimSpace(msg.Scope + " " + msg.Subject)},
		{"Product", msg.Component}, {"Region", msg.Group}, {"Journey", msg.Class}, {"Source", msg.Source}}
	if msg.Action == notify.ActionResolve {
		pairs[0][1] = ""
	}
	var out []Fact
	for _, p := range pairs {
		if strings.TrimSpace(p[1]) != "" {
			out = append(out, Fact{Title: p[0], Value: escape(notify.Cut(p[1], maxFactRunes))})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &Element{Type: "FactSet", Facts: out}
}

// targets lists details["targets"] (as the engine sends them, or as JSON gave them
// back): status, target, since, last error; at most shown of them.
func targets(details map[string]any, shown int) *Element {
	list := notify.TargetsOf(details["targets"])
	if len(list) == 0 {
		return nil
	}
	lines := []string{fmt.Sprintf("**Affected targets** (%d)", len(list))}
	for i, t := range list {
		if i == shown {
			lines = append(lines, fmt.Sprintf("… and %d more", len(list)-i))
			break
		}
		line := "- " + escape(notify.Cut(str(t["target"]), maxFactRunes)) + " " + escape(notify.Cut(str(t["status"]), 20))
		if since := str(t["since"]); since != "" {
			line += " since " + escape(notify.Cut(since, 40))
		}
		if e := str(t["error"]); e != "" {
			line += ": " + escape(notify.Cut(strings.Join(strings.Fields(e), " "), maxErrorRunes))
		}
		lines = append(lines, line)
	}
	return &Element{Type: "TextBlock", Text: strings.Join(lines, "\n"), Wrap: true, Separator: true}
}

func footer(msg notify.Notification) *Element {
	if msg.DedupKey == "" {
		return nil
	}
	return &Element{Type: "TextBlock", Text: "Dedup key " + escape(msg.DedupKey), IsSubtle: true, Size: "Small", Wrap: true}
}

func actions(links []notify.Link) []Action {
	var out []Action
	for _, l := range links {
		href := strings.TrimSpace(l.Href)
		if !strings.HasPrefix(href, "https://") && !strings.HasPrefix(href, "http://") {
			continue // Teams refuses a card whose OpenUrl is not a web address
		}
		text := strings.TrimSpace(l.Text)
		if text == "" {
			text = "Open"
		}
		out = append(out, Action{Type: "Action.OpenUrl", Title: notify.Cut(text, 50), URL: href})
		if len(out) == maxActions {
			break
		}
	}
	return out
}

// escape keeps text from being read as card markdown (a "[x](url)" in an error
// would become a link) by escaping the characters that start markup.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "`", "\\`", "<", "&lt;", ">", "&gt;").Replace(s)
}

func str(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	data, _ := json.Marshal(v)
	return strings.Trim(string(data), `"`)
}
