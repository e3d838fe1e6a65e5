// Package tmpl wraps text/template for the strings of a config that may refer to
// run-time data (.region, .secret, .vars, .run). Templates are parsed once, at config
// load, and a string without "{{" costs nothing to render.
package tmpl

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/picket-dev/picket/internal/scrub"
)

// Data is what a template sees: region vars, secrets, extracted vars, run facts.
type Data map[string]any

// Template is a parsed template, or a literal when Raw has no action.
type Template struct {
	Raw string
	t   *template.Template
}

// Parse compiles raw; missing keys are an error at execution, as DESIGN.md asks.
func Parse(name, raw string) (*Template, error) { return ParseFuncs(name, raw, nil) }

// ParseFuncs is Parse for a template that may also call funcs (a notifier's body
// template has json); the bounds are the same.
func ParseFuncs(name, raw string, funcs template.FuncMap) (*Template, error) {
	if !strings.Contains(raw, "{{") {
		return &Template{Raw: raw}, nil
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(signing).Funcs(funcs).Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("template: %w", cleanErr(err, name))
	}
	if err := checkBounds(t.Tree.Root, len(t.Templates())); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return &Template{Raw: raw, t: t}, nil
}

// IsLiteral reports whether rendering always yields Raw.
func (t *Template) IsLiteral() bool { return t == nil || t.t == nil }

// Render executes the template with data.
func (t *Template) Render(data Data) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.t == nil {
		return t.Raw, nil
	}
	w := &limitedWriter{max: MaxOutputBytes}
	if err := t.t.Execute(w, map[string]any(data)); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("template %q: %w", excerpt(t.Raw), errTooLong)
		}
		return "", fmt.Errorf("template %q: %w", t.Raw, cleanErr(err, t.t.Name()))
	}
	return string(w.buf), nil
}

// cleanErr drops text/template's "template: NAME:" prefix, which only repeats what the
// caller already says.
func cleanErr(err error, name string) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, name+":")
	return fmt.Errorf("%s", strings.TrimSpace(msg))
}

// excerpt keeps an error about a huge template short (and on one line).
func excerpt(s string) string { return scrub.Excerpt([]byte(s), 80) }
