package tmpl

import (
	"strings"
	"testing"
)

func TestLiteralAndTemplate(t *testing.T) {
	lit, err := Parse("x", "https://example.test/")
	if err != nil || !lit.IsLiteral() {
		t.Fatalf("literal: %v %v", lit, err)
	}
	if got, _ := lit.Render(nil); got != "https://example.test/" {
		t.Errorf("literal rendered %q", got)
	}
	tp, err := Parse("url", "{{.region.api}}/v1/{{.vars.id}}")
	if err != nil || tp.IsLiteral() {
		t.Fatalf("template: %v", err)
	}
	got, err := tp.Render(Data{"region": map[string]string{"api": "http://a"}, "vars": map[string]string{"id": "7"}})
	if err != nil || got != "http://a/v1/7" {
		t.Errorf("rendered %q, %v", got, err)
	}
	if _, err := tp.Render(Data{"region": map[string]string{}, "vars": map[string]string{}}); err == nil ||
		!strings.Contains(err.Error(), `map has no entry for key "api"`) {
		t.Errorf("missing key must be an error, got %v", err)
	}
	if _, err := Parse("bad", "{{.x"); err == nil || strings.Contains(err.Error(), "template: bad:") {
		t.Errorf("parse error %v: want an error without text/template's name prefix", err)
	}
	var nilT *Template
	if s, err := nilT.Render(nil); s != "" || err != nil || !nilT.IsLiteral() {
		t.Error("nil template must render empty")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"{{.region.api}}/x", "plain", "{{", "{{.a}}{{end}}", "{{range .vars}}{{.}}{{end}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tp, err := Parse("f", raw)
		if err != nil {
			return
		}
		_, _ = tp.Render(Data{"region": map[string]string{"api": "a"}, "vars": map[string]string{}})
	})
}
