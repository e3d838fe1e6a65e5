package email

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/picket-dev/picket/alert/notify"
)

// Bounds of a mail.
const (
	maxSubjectRunes = 200
	maxTargets      = 50
	maxErrorRunes   = 300
	maxDetailRunes  = 200
	maxBodyBytes    = 64 << 10
	defaultPrefix   = "[Picket]"
)

// Compose writes the whole message (headers and a quoted-printable UTF-8 text body),
// with CRLF line ends. Every header value is one line (a summary cannot add a
// header), non-ASCII is RFC 2047-encoded, and lines stay within RFC 5322's 998.
// now is the Date when the notification carries no time of its own.
func Compose(msg notify.Notification, from *mail.Address, to []*mail.Address, prefix string, now time.Time) []byte {
	domain := "picket.invalid"
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 && at+1 < len(from.Address) {
		domain = from.Address[at+1:]
	}
	date := msg.Created
	if date.IsZero() {
		date = now
	}
	recipients := make([]string, len(to))
	for i, a := range to {
		recipients[i] = a.String()
	}
	thread := "<" + digest("incident", msg.DedupKey, msg.Opened.UTC().Format(time.RFC3339Nano)) + ".incident@" + domain + ">"
	id := msg.ID
	if id == "" {
		id = msg.DedupKey + "|" + msg.Action + "|" + date.UTC().Format(time.RFC3339Nano)
	}
	var b bytes.Buffer
	for _, h := range [][2]string{
		{"From", from.String()}, {"To", strings.Join(recipients, ", ")}, {"Subject", encodeHeader(Subject(msg, prefix))},
		{"Date", date.Format(time.RFC1123Z)}, {"Message-ID", "<" + digest("message", id) + "@" + domain + ">"},
		{"In-Reply-To", thread}, {"References", thread}, {"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"}, {"Content-Transfer-Encoding", "quoted-printable"},
		{"Auto-Submitted", "auto-generated"}, {"X-Picket-Dedup-Key", encodeHeader(oneLine(msg.DedupKey))},
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(Body(msg), "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

// Subject is the prefix, "Resolved: " for a resolve, and the summary, which starts
// with the scope ("[REGION eu1] ..."); a summary without one gets it.
func Subject(msg notify.Notification, prefix string) string {
	if prefix == "" {
		prefix = defaultPrefix
	}
	summary := oneLine(msg.Summary)
	if summary == "" {
		summary = "Picket incident " + oneLine(msg.DedupKey)
	}
	if !strings.HasPrefix(summary, "[") && msg.Scope != "" {
		summary = "[" + strings.TrimSpace(strings.ToUpper(msg.Scope)+" "+oneLine(msg.Subject)) + "] " + summary
	}
	if msg.Action == notify.ActionResolve {
		summary = "Resolved: " + summary
	}
	return notify.Cut(oneLine(prefix)+" "+summary, maxSubjectRunes)
}

// Body is the text: the summary, the facts, the affected targets, the links, the
// other details and the dedup key; at most maxBodyBytes.
func Body(msg notify.Notification) string {
	var b strings.Builder
	b.WriteString(oneLine(msg.Summary) + "\n\n")
	scope := strings.TrimSpace(msg.Scope + " " + msg.Subject)
	for _, f := range [][2]string{{"Status", status(msg)}, {"Severity", msg.Severity}, {"Scope", scope},
		{"Product", msg.Component}, {"Region", msg.Group}, {"Journey", msg.Class}, {"Vantage", msg.Source}, {"Opened", stamp(msg.Opened)}} {
		if f[1] != "" {
			fmt.Fprintf(&b, "%-9s %s\n", f[0]+":", oneLine(f[1]))
		}
	}
	writeTargets(&b, msg.Details["targets"])
	if len(msg.Links) > 0 {
		b.WriteString("\nLinks:\n")
		for _, l := range msg.Links {
			fmt.Fprintf(&b, "  %s: %s\n", oneLine(l.Text), oneLine(l.Href))
		}
	}
	writeDetails(&b, msg.Details)
	fmt.Fprintf(&b, "\nDedup key: %s\n-- \nSent by Picket. Replies are not read.\n", oneLine(msg.DedupKey))
	if b.Len() > maxBodyBytes {
		return cutBytes(b.String(), maxBodyBytes-40) + "\n… (cut: the incident says more)\n"
	}
	return b.String()
}

func status(msg notify.Notification) string {
	if msg.Action == notify.ActionResolve {
		return "RESOLVED"
	}
	return "FIRING"
}

func writeTargets(b *strings.Builder, v any) {
	list := notify.TargetsOf(v)
	if len(list) == 0 {
		return
	}
	fmt.Fprintf(b, "\nAffected targets (%d):\n", len(list))
	for i, t := range list {
		if i == maxTargets {
			fmt.Fprintf(b, "  … and %d more\n", len(list)-i)
			break
		}
		line := "  - " + notify.Cut(oneLine(text(t["target"])), maxDetailRunes) + " " + notify.Cut(oneLine(text(t["status"])), 20)
		if since := text(t["since"]); since != "" {
			line += " since " + notify.Cut(oneLine(since), 40)
		}
		if e := text(t["error"]); e != "" {
			line += ": " + notify.Cut(oneLine(e), maxErrorRunes)
		}
		b.WriteString(line + "\n")
	}
}

// writeDetails lists the other details, one line each, in key order.
func writeDetails(b *strings.Builder, details map[string]any) {
	var keys []string
	for k := range details {
		if k != "targets" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Strings(keys)
	b.WriteString("\nDetails:\n")
	for _, k := range keys {
		fmt.Fprintf(b, "  %s: %s\n", notify.Cut(oneLine(k), 60), notify.Cut(oneLine(text(details[k])), maxDetailRunes))
	}
}

func text(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	case time.Time:
		return stamp(s)
	}
	return fmt.Sprint(v)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// encodeHeader RFC 2047-encodes a header value that needs it, folding between the
// encoded words so that no line passes 998 characters.
func encodeHeader(s string) string {
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// oneLine folds white space (CR and LF included) to single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cutBytes cuts s to at most n bytes, at a rune boundary.
func cutBytes(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:min(n, len(s))]
}
