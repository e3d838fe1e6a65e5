package expect

import (
	"net/http"
	"testing"
	"time"

	"github.com/picket-dev/picket/probe/tmpl"
)

func BenchmarkEvaluateStatusOnly(b *testing.B) {
	c := mustCompile(b, Spec{Status: []string{"2xx"}})
	obs := &Observation{Status: 200, Latency: 30 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Evaluate(obs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBody is a typical small API response (about 700 bytes).
var benchBody = []byte(`{"id":"r-42","status":"stored","meta":{"ok":true,"count":3,"region":"eu1"},
"items":[{"id":"a1","ts":1764000000,"msg":"hello from the probe","tags":["x","y"]},
{"id":"a2","ts":1764000001,"msg":"hello again","tags":[]},
{"id":"a3","ts":1764000002,"msg":"and once more with a longer message to look like real data","tags":["z"]}],
"links":{"self":"https://api.eu1.example.com/v1/logs/r-42","next":null},
"padding":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`)

func BenchmarkEvaluateJSON(b *testing.B) {
	c := mustCompile(b, Spec{
		Status:  []string{"2xx"},
		Latency: 2 * time.Second,
		JSON:    map[string]string{"$.id": "{{.run.id}}", "meta.count": "3", "meta.ok": "true", "items.#": "3"},
		Headers: map[string]string{"Content-Type": "json"},
	})
	obs := &Observation{Status: 200, Latency: 30 * time.Millisecond, Body: benchBody,
		Headers: http.Header{"Content-Type": {"application/json"}}}
	data := tmpl.Data{"run": map[string]any{"id": "r-42"}}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Evaluate(obs, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluateExpr(b *testing.B) {
	c := mustCompile(b, Spec{Expr: `status == 200 && latency < duration("2s") && len(json.items) == 3`})
	obs := &Observation{Status: 200, Latency: 30 * time.Millisecond, Body: benchBody}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Evaluate(obs, nil); err != nil {
			b.Fatal(err)
		}
	}
}
