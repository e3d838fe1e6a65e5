package scrub

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Redactor replaces secrets with Marker. A nil Redactor redacts nothing; all methods
// are safe on nil and for concurrent use.
type Redactor struct {
	r *strings.Replacer
}

// New makes a redactor of the secrets at least MinSecretLen long (nil when there are
// none). Longest first, so that a secret containing another is replaced whole.
func New(secrets ...string) *Redactor { return build(secrets) }

// NewWithForms also replaces each secret in every form a page or an API answer could
// have written it: HTML-, JSON-, path- and query-escaped, and as html/template writes
// it in text, attributes and URLs (which escape more than HTMLEscapeString). For text
// that is scrubbed after it was encoded.
func NewWithForms(secrets ...string) *Redactor {
	var forms []string
	for _, s := range secrets {
		if len(s) < MinSecretLen {
			continue
		}
		forms = append(forms, s, template.HTMLEscapeString(s), jsonForm(s), url.PathEscape(s), url.QueryEscape(s))
		forms = append(forms, templateForms(s)...)
	}
	return build(forms)
}

func build(values []string) *Redactor {
	values = slices.DeleteFunc(slices.Clone(values), func(v string) bool { return len(v) < MinSecretLen })
	if len(values) == 0 {
		return nil
	}
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	values = slices.Compact(values)
	pairs := make([]string, 0, 2*len(values))
	for _, v := range values {
		pairs = append(pairs, v, Marker)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret replaced.
func (x *Redactor) String(s string) string {
	if x == nil {
		return s
	}
	return x.r.Replace(s)
}

// Bytes returns b with every secret replaced.
func (x *Redactor) Bytes(b []byte) []byte {
	if x == nil {
		return b
	}
	return []byte(x.r.Replace(string(b)))
}

// Redact replaces every secret (of at least MinSecretLen) in text: for a text and a
// handful of secrets at hand, as a notifier's error has.
func Redact(text string, secrets ...string) string { return New(secrets...).String(text) }

// jsonForm is how encoding/json writes s inside a string.
func jsonForm(s string) string {
	b, _ := json.Marshal(s)
	return string(bytes.Trim(b, `"`))
}

// templateForms renders s the way html/template does in text, attribute and URL
// contexts.
func templateForms(s string) []string {
	var forms []string
	for _, c := range formContexts() {
		var b strings.Builder
		if c.t.Execute(&b, s) != nil {
			continue
		}
		forms = append(forms, strings.TrimSuffix(strings.TrimPrefix(b.String(), c.before), c.after))
	}
	return forms
}

// formContext is one place html/template may write a secret: its template, and the
// text around the value.
type formContext struct {
	t             *template.Template
	before, after string
}

// formContexts are parsed once: a redactor is built per browser run, and parsing
// three templates for each secret each time cost more than the rest of building it.
var formContexts = sync.OnceValue(func() []formContext {
	var out []formContext
	for _, c := range [][2]string{{"<p>", "</p>"}, {`<p title="`, `">`}, {`<a href="/x/`, `">`}} {
		out = append(out, formContext{template.Must(template.New("form").Parse(c[0] + "{{.}}" + c[1])), c[0], c[1]})
	}
	return out
})
