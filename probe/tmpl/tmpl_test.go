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

// Templates are bounded: `{{range 1000000000}}` took validate to 4 GB, a range over
// 2^63 never ended, and either wedged a reload.
func TestTemplatesAreBounded(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"huge range", "{{range 1000000000}}x{{end}}", "at most 1000 iterations"},
		{"range over 2^63", "{{range 9223372036854775807}}{{end}}", "at most 1000 iterations"},
		{"nested ranges", "{{range 1000}}{{range 1000}}{{end}}{{end}}", "nested ranges would run"},
		{"range over a variable", "{{$n := 1000000000}}{{range $n}}{{end}}", "may range over its data"},
		{"range over a call", `{{range len "abc"}}{{end}}`, "may range over its data"},
		{"recursion", `{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`, "not allowed"},
		{"template action", `{{template "x"}}`, "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t", tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q): got %v, want an error containing %q", tc.raw, err, tc.want)
			}
		})
	}
	for _, ok := range []string{"{{range .vars}}{{.}}{{end}}", "{{range $k, $v := .region}}{{$k}}={{$v}}{{end}}", "{{range 3}}x{{end}}", "{{range $.vars}}{{end}}"} {
		if _, err := Parse("t", ok); err != nil {
			t.Errorf("Parse(%q): %v, want it accepted", ok, err)
		}
	}
	// Output is bounded too: 1000 x 1000 would be fine by count but not by size.
	tp, err := Parse("t", "{{range 100}}{{range 1000}}"+strings.Repeat("x", 100)+"{{end}}{{end}}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Render(nil); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("10 MB of output: got %v, want the output bound", err)
	}
}
