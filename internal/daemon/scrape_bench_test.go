package daemon

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// BenchmarkScrapeTargets10k writes the per-target series of 10,000 targets of one
// HTTPS step, as each scrape of /metrics does.
func BenchmarkScrapeTargets10k(b *testing.B) {
	m := NewMetrics("bench", "test", "abc")
	run := probe.Result{Status: probe.StatusUp, Duration: time.Millisecond, Steps: []probe.StepResult{{Name: "get", Kind: "http", HTTPStatus: 200,
		Phases: probe.Phases{Connect: time.Millisecond, TLS: time.Millisecond, Processing: time.Millisecond, Transfer: time.Millisecond},
		Wire:   probe.Wire{HTTPVersion: 2, HTTPSSL: true, TLSVersion: "1.3"}}}}
	for i := range 10_000 {
		m.ObserveResult(&config.Target{ID: fmt.Sprint(i), Product: fmt.Sprintf("p%02d", i%10), Journey: fmt.Sprintf("j%03d", i%100), Region: fmt.Sprintf("r%04d", i/100)}, run)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := m.targets.writeTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
