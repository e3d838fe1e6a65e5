package probetest

import (
	"testing"
	"time"
)

// BenchmarkHealthz is the platform's floor: one keep-alive request, client included.
func BenchmarkHealthz(b *testing.B) {
	benchRequest(b, "GET", "/healthz", "")
}

// BenchmarkLogsWrite adds JSON decoding, an id and a store insert to the floor.
func BenchmarkLogsWrite(b *testing.B) {
	benchRequest(b, "POST", "/v1/logs", `{"m":"bench"}`)
}

func benchRequest(b *testing.B, method, path, body string) {
	p, err := Start(Options{Regions: []string{"eu1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c := newClient(b, 5*time.Second)
	url := p.URL("eu1") + path
	b.ReportAllocs()
	for b.Loop() {
		if _, err := call(c, method, url, body); err != nil {
			b.Fatal(err)
		}
	}
}
