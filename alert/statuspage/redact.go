package statuspage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

// redactedText replaces the token wherever it would appear. It is plain ASCII with
// nothing to escape, so it keeps HTML and JSON well formed.
const redactedText = "[redacted]"

// minRedactLen matches config's: a one- or two-letter value would blank out ordinary
// text, and no real token is that short.
const minRedactLen = 3

// redactor scrubs the write token from every answer, in each form the page or the
// API could have written it (raw, HTML-, JSON- or URL-escaped). The page shows only
// Status and Incident data, but that data carries probe errors and names taken from
// the outside world: this is the last line that guarantees the token never shows.
type redactor struct {
	r *strings.Replacer
}

// newRedactor returns nil (scrubs nothing) for an empty or too short token.
func newRedactor(token string) *redactor {
	if len(token) < minRedactLen {
		return nil
	}
	forms := []string{
		token,
		template.HTMLEscapeString(token),
		jsonForm(token),
		url.PathEscape(token),
		url.QueryEscape(token),
	}
	forms = append(forms, templateForms(token)...)
	// Longest first, so that a form containing another is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		if f != "" {
			pairs = append(pairs, f, redactedText)
		}
	}
	return &redactor{r: strings.NewReplacer(pairs...)}
}

func (x *redactor) bytes(b []byte) []byte {
	if x == nil {
		return b
	}
	return []byte(x.r.Replace(string(b)))
}

func (x *redactor) string(s string) string {
	if x == nil {
		return s
	}
	return x.r.Replace(s)
}

// jsonForm is how encoding/json writes s inside a string.
func jsonForm(s string) string {
	b, _ := json.Marshal(s)
	return string(bytes.Trim(b, `"`))
}

// templateForms renders s the way html/template does in text, attribute and URL
// contexts, which escape more than HTMLEscapeString (for example + and =).
func templateForms(s string) []string {
	contexts := [][2]string{{"<p>", "</p>"}, {`<p title="`, `">`}, {`<a href="/x/`, `">`}}
	var forms []string
	for _, c := range contexts {
		t, err := template.New("form").Parse(c[0] + "{{.}}" + c[1])
		if err != nil {
			continue
		}
		var b strings.Builder
		if t.Execute(&b, s) != nil {
			continue
		}
		out := strings.TrimSuffix(strings.TrimPrefix(b.String(), c[0]), c[1])
		forms = append(forms, out)
	}
	return forms
}

// scrubbed returns v with the token taken out of every string in it, by way of its
// JSON form. The page derives text from what it is given (tooltips are cut short,
// keys have "/" turned to "~"), which would hide a token from the final scrub; cleaning
// the input first leaves nothing to derive from. Without a token, v is returned as is.
func scrubbed[T any](x *redactor, v T) (T, error) {
	if x == nil {
		return v, nil
	}
	var out T
	raw, err := json.Marshal(v)
	if err != nil {
		return out, fmt.Errorf("scrub %T: encode: %w", v, err)
	}
	if err := json.Unmarshal(x.bytes(raw), &out); err != nil {
		return out, fmt.Errorf("scrub %T: decode: %w", v, err)
	}
	return out, nil
}

// redactingHandler scrubs the token from log messages and attributes: errors from the
// source and target ids are logged, and either could carry it.
type redactingHandler struct {
	next  slog.Handler
	scrub *redactor
}

func redactLogs(l *slog.Logger, x *redactor) *slog.Logger {
	if x == nil {
		return l
	}
	return slog.New(redactingHandler{next: l.Handler(), scrub: x})
}

func (h redactingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.scrub.string(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		attrs := v.Group()
		clean := make([]any, 0, len(attrs))
		for _, g := range attrs {
			clean = append(clean, h.attr(g))
		}
		return slog.Group(a.Key, clean...)
	case slog.KindString, slog.KindAny: // strings, errors, Stringers
		return slog.String(a.Key, h.scrub.string(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v} // numbers, times, durations, bools
}

func (h redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		clean = append(clean, h.attr(a))
	}
	return redactingHandler{next: h.next.WithAttrs(clean), scrub: h.scrub}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{next: h.next.WithGroup(name), scrub: h.scrub}
}
