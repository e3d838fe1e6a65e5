package expect

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/picket-dev/picket/probe/tmpl"
)

func FuzzCompile(f *testing.F) {
	f.Add("len(json.items) > 0", `^ok`, "{{.run.id}}")
	f.Add(`latency < duration("2s")`, `(`, "{{.run.id")
	f.Add("status", `[a-`, "{{end}}")
	f.Add("", ``, "")
	f.Add(`$env["body"] contains "x"`, `\p{Greek}+`, "{{range .x}}{{.}}{{end}}")
	f.Add("json.a.b.c == nil", `(?i)`, "{{.vars.id}}")
	f.Fuzz(func(t *testing.T, exprSrc, pattern, template string) {
		spec := Spec{
			Expr: exprSrc, BodyMatches: pattern, Headers: map[string]string{"X": pattern},
			JSON: map[string]string{"a": template}, BodyContains: template,
		}
		c, errs := Compile(spec)
		_, reErr := regexp.Compile(pattern)
		_, tmplErr := tmpl.Parse("fuzz", template)
		if got, want := hasFieldError(errs, "body_matches"), pattern != "" && reErr != nil; got != want {
			t.Errorf("body_matches error = %v, regexp.Compile error = %v", got, reErr)
		}
		if got, want := hasFieldError(errs, "json"), tmplErr != nil; got != want {
			t.Errorf("json error = %v, template error = %v", got, tmplErr)
		}
		for _, e := range errs {
			if e.Field == "" || e.Error() == "" {
				t.Errorf("FieldError %#v without field or message", e)
			}
			if e.Field == "expr" && strings.Contains(e.Error(), "\n") {
				t.Errorf("expr error %q spans lines", e)
			}
		}
		if (c == nil) == (len(errs) == 0) {
			t.Fatalf("Compile returned checks %v and %d errors", c != nil, len(errs))
		}
		if c == nil {
			return
		}
		obs := &Observation{Status: 200, Body: []byte(`{"a":"x","items":[1]}`), Latency: time.Second}
		_ = c.Evaluate(obs, tmpl.Data{"run": map[string]any{"id": "r"}})
	})
}

func hasFieldError(errs []*FieldError, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

func FuzzEvaluate(f *testing.F) {
	f.Add([]byte(`{"id":"x","items":[1]}`))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`ok`))
	f.Add([]byte(""))
	f.Add([]byte("\xff\xfe{\"id\":\"x\"}"))
	f.Add([]byte(`{"id":"\ud800"}`))
	f.Add([]byte(`[1e999]`))
	c, errs := Compile(Spec{
		JSON:         map[string]string{"id": "x", "items.0": "1"},
		BodyContains: "ok",
		BodyMatches:  `^\s*\{`,
		Expr:         `json == nil || body != ""`, // never false: a JSON body is never empty
	})
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := c.Evaluate(&Observation{Status: 200, Body: body}, nil)
		if err == nil {
			t.Fatal("Evaluate = nil, want at least the failed body_contains or json checks")
		}
		msg := err.Error()
		if got, want := strings.Contains(msg, "body is not JSON"), !json.Valid(body); got != want {
			t.Errorf("not-JSON failure = %v, json.Valid = %v: %s", got, !want, msg)
		}
		if got, want := strings.Contains(msg, `body does not contain "ok"`), !bytes.Contains(body, []byte("ok")); got != want {
			t.Errorf("body_contains failure = %v, want %v: %s", got, want, msg)
		}
		if strings.Contains(msg, "expr") {
			t.Errorf("expression that cannot be false failed: %s", msg)
		}
		_ = scrub.Excerpt(body, 40) // its own promises: internal/scrub
	})
}
