package slack

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/picket-dev/picket/alert/notify"
)

// Block Kit limits (api.slack.com/reference/block-kit/blocks), with some margin.
const (
	maxHeaderRunes  = 150
	maxSectionRunes = 3000
	maxFieldRunes   = 2000
	maxFallback     = 3000
	maxMatrixRows   = 30
	maxMatrixCols   = 12
	maxNameRunes    = 20
	maxTargets      = 10
	maxErrorRunes   = 200
)

// Message is the body of an incoming-webhook POST.
type Message struct {
	Text    string  `json:"text"` // the fallback: notifications, screen readers
	Channel string  `json:"channel,omitempty"`
	Blocks  []Block `json:"blocks"`
}

// Block is the subset of Block Kit used: header, section (text or fields), context.
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
}

// Text is a Block Kit text object.
type Text struct {
	Type string `json:"type"` // plain_text | mrkdwn
	Text string `json:"text"`
}

func plain(s string) *Text { return &Text{Type: "plain_text", Text: s} }
func mrkdwn(s string) Text { return Text{Type: "mrkdwn", Text: s} }

// BuildMessage renders a notification: a header with the summary, who/where/how bad,
// the products × regions matrix and the affected targets when the details carry them,
// and the links. A resolve is a short "✅ Resolved: …".
func BuildMessage(msg notify.Notification, channel string) Message {
	summary := msg.Summary
	if strings.TrimSpace(summary) == "" {
		summary = "Picket incident " + msg.DedupKey
	}
	if msg.Action == notify.ActionResolve {
		title := "✅ Resolved: " + summary
		return Message{Text: escape(notify.Cut(title, maxFallback)), Channel: channel, Blocks: compact(
			header(title), facts(msg), textBlock(msg.Details), footer(msg),
		)}
	}
	title := severityEmoji(msg.Severity) + " " + summary
	fallback := title
	if msg.Severity != "" {
		fallback += " (" + msg.Severity + ")"
	}
	return Message{Text: escape(notify.Cut(fallback, maxFallback)), Channel: channel, Blocks: compact(
		header(title), facts(msg), textBlock(msg.Details), matrixBlock(msg.Details), targetsBlock(msg.Details), footer(msg),
	)}
}

// compact drops the blocks that had nothing to show.
func compact(blocks ...*Block) []Block {
	out := make([]Block, 0, len(blocks))
	for _, b := range blocks {
		if b != nil {
			out = append(out, *b)
		}
	}
	return out
}

func header(title string) *Block {
	return &Block{Type: "header", Text: plain(notify.Cut(oneLine(title), maxHeaderRunes))}
}

func severityEmoji(severity string) string {
	switch severity {
	case notify.SeverityCritical:
		return "🔴"
	case notify.SeverityError:
		return "🟠"
	case notify.SeverityWarning:
		return "🟡"
	case notify.SeverityInfo:
		return "🔵"
	}
	return "⚪"
}

// facts is a two-column section: severity, scope, source and the product, region,
// journey the incident is about.
func facts(msg notify.Notification) *Block {
	scope := msg.Scope
	if msg.Subject != "" {
		scope += " " + msg.Subject
	}
	pairs := [][2]string{
		{"Severity", msg.Severity}, {"Scope", strings.TrimSpace(scope)}, {"Source", msg.Source},
		{"Product", msg.Component}, {"Region", msg.Group}, {"Journey", msg.Class},
	}
	if msg.Action == notify.ActionResolve {
		pairs[0][1] = "" // a resolve has no severity worth showing
	}
	var fields []Text
	for _, p := range pairs {
		if strings.TrimSpace(p[1]) != "" {
			fields = append(fields, mrkdwn(notify.Cut("*"+p[0]+"*\n"+escape(p[1]), maxFieldRunes)))
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &Block{Type: "section", Fields: fields}
}

// textBlock shows details["text"], a message's words beyond its summary (a human
// update, a drafted one), escaped and cut to a section.
func textBlock(details map[string]any) *Block {
	text, _ := details["text"].(string)
	if strings.TrimSpace(text) == "" {
		return nil
	}
	return &Block{Type: "section", Text: ptr(mrkdwn(notify.Cut(escape(text), maxSectionRunes)))}
}

// footer is a context line: the links, and the dedup key to search the timeline by.
func footer(msg notify.Notification) *Block {
	var parts []string
	for _, l := range msg.Links {
		if link := slackLink(l); link != "" {
			parts = append(parts, link)
		}
	}
	if msg.DedupKey != "" {
		parts = append(parts, "dedup key `"+code(msg.DedupKey)+"`")
	}
	if len(parts) == 0 {
		return nil
	}
	return &Block{Type: "context", Elements: []Text{mrkdwn(notify.Cut(strings.Join(parts, " · "), maxSectionRunes))}}
}

// slackLink writes <href|text>; "|" and ">" would end the link early, so they are
// percent-encoded in the href and escaped in the text.
func slackLink(l notify.Link) string {
	href := strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C", " ", "%20").Replace(strings.TrimSpace(l.Href))
	if href == "" {
		return ""
	}
	text := strings.ReplaceAll(escape(oneLine(l.Text)), "|", "¦")
	if text == "" {
		text = href
	}
	return "<" + href + "|" + text + ">"
}

// matrixBlock renders details["matrix"] (product → region → status) as a monospace
// table. It accepts the in-process map and the map[string]any the outbox gets back
// from JSON.
func matrixBlock(details map[string]any) *Block {
	matrix := matrixOf(details["matrix"])
	if len(matrix) == 0 {
		return nil
	}
	products := sortedKeys(matrix)
	regionSet := map[string]bool{}
	for _, row := range matrix {
		for region := range row {
			regionSet[region] = true
		}
	}
	regions := sortedKeys(regionSet)
	hiddenRegions := max(len(regions)-maxMatrixCols, 0)
	regions = regions[:len(regions)-hiddenRegions]
	// Show as many products as fit in one section (at most maxMatrixRows).
	for shown := min(len(products), maxMatrixRows); shown > 0; shown-- {
		text := "*Products × regions*\n```\n" + matrixTable(matrix, products[:shown], regions) +
			"```\n✅ up  ⚠️ degraded  ❌ down" + hiddenNote(len(products)-shown, hiddenRegions)
		if utf8.RuneCountInString(text) <= maxSectionRunes {
			return &Block{Type: "section", Text: ptr(mrkdwn(text))}
		}
	}
	return nil
}

func hiddenNote(products, regions int) string {
	var notes []string
	if products > 0 {
		notes = append(notes, fmt.Sprintf("%d more products", products))
	}
	if regions > 0 {
		notes = append(notes, fmt.Sprintf("%d more regions", regions))
	}
	if len(notes) == 0 {
		return ""
	}
	return "\n… " + strings.Join(notes, ", ") + " not shown"
}

// matrixTable lays out the table. Every cell is one emoji, counted two columns wide as
// Slack's monospace renders them, so the columns line up.
func matrixTable(matrix map[string]map[string]string, products, regions []string) string {
	nameWidth := len("product")
	for _, p := range products {
		nameWidth = max(nameWidth, utf8.RuneCountInString(notify.Cut(code(p), maxNameRunes)))
	}
	widths := make([]int, len(regions))
	var b strings.Builder
	b.WriteString(pad("", nameWidth))
	for i, r := range regions {
		name := notify.Cut(code(r), maxNameRunes)
		widths[i] = max(utf8.RuneCountInString(name), 2)
		b.WriteString("  " + pad(name, widths[i]))
	}
	b.WriteString("\n")
	for _, p := range products {
		b.WriteString(pad(notify.Cut(code(p), maxNameRunes), nameWidth))
		for i, r := range regions {
			status, ok := matrix[p][r]
			cell := "  " // the product does not run in that region
			if ok {
				cell = statusEmoji(status)
			}
			b.WriteString("  " + cell + strings.Repeat(" ", widths[i]-2))
		}
		b.WriteString("\n")
	}
	return escape(b.String())
}

// statusEmoji maps a target or cell status to ✅ ⚠️ ❌, or ❔ when unknown (pending).
func statusEmoji(status string) string {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "up", "ok", "healthy", "pass", "passing", "resolved":
		return "✅"
	case "degraded", "warning", "warn", "slow", "impaired":
		return "⚠️"
	case "down", "fail", "failing", "failed", "error", "critical", "firing", "outage":
		return "❌"
	}
	return "❔"
}

func matrixOf(v any) map[string]map[string]string {
	switch m := v.(type) {
	case map[string]map[string]string:
		return m
	case map[string]any:
		out := make(map[string]map[string]string, len(m))
		for product, row := range m {
			if cells := stringMap(row); cells != nil {
				out[product] = cells
			}
		}
		return out
	}
	return nil
}

func stringMap(v any) map[string]string {
	switch m := v.(type) {
	case map[string]string:
		return m
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	return nil
}

// targetsBlock lists details["targets"]: each target with its status, since when,
// and its last error.
func targetsBlock(details map[string]any) *Block {
	targets := notify.TargetsOf(details["targets"])
	if len(targets) == 0 {
		return nil
	}
	text := fmt.Sprintf("*Affected targets* (%d)", len(targets))
	for i, t := range targets {
		line := targetLine(t)
		// Whole lines only: a cut line could end inside an escape or a code span.
		// The room for "… and N more" is kept.
		if i == maxTargets || utf8.RuneCountInString(text)+1+utf8.RuneCountInString(line) > maxSectionRunes-30 {
			text += fmt.Sprintf("\n… and %d more", len(targets)-i)
			break
		}
		text += "\n" + line
	}
	return &Block{Type: "section", Text: ptr(mrkdwn(text))}
}

func targetLine(t map[string]any) string {
	status := str(t["status"])
	line := "• " + statusEmoji(status) + " `" + code(notify.Cut(str(t["target"]), 100)) + "`"
	if status != "" {
		line += " " + escape(status)
	}
	if since := sinceText(t["since"]); since != "" {
		line += " since " + since
	}
	if e := str(t["error"]); e != "" {
		line += ": " + escape(notify.Cut(oneLine(e), maxErrorRunes))
	}
	return line
}

// sinceText writes a time as "2025-01-02 03:04Z"; a value that is not a time is shown
// as it is.
func sinceText(v any) string {
	var at time.Time
	switch s := v.(type) {
	case nil:
		return ""
	case time.Time:
		at = s
	case string:
		parsed, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return escape(notify.Cut(oneLine(s), 40))
		}
		at = parsed
	default:
		return escape(notify.Cut(oneLine(fmt.Sprint(v)), 40))
	}
	if at.IsZero() {
		return ""
	}
	return at.UTC().Format("2006-01-02 15:04Z")
}

func str(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// escape makes text safe for mrkdwn: Slack reads & < > as control sequences, and
// "<!channel>" in an error message would page the whole channel.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// code makes s safe inside `…` or ``` … ```: a backtick would end the span.
func code(s string) string { return strings.ReplaceAll(oneLine(s), "`", "'") }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func pad(s string, width int) string {
	return s + strings.Repeat(" ", max(width-utf8.RuneCountInString(s), 0))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }
