package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/tmpl"
)

// benchAddrs is how many loopback addresses the benchmark servers spread over. A fresh
// connection per probe leaves a socket in TIME_WAIT for 60 s (on the server side here:
// net/http's server closes first after "Connection: close"); spreading the 4-tuples over
// several addresses keeps long runs clear of port exhaustion.
const benchAddrs = 8

// benchServers starts one server per loopback address 127.0.0.2, 127.0.0.3, ... (all of
// 127/8 is loopback on Linux), falling back to 127.0.0.1 where an address is refused.
func benchServers(b *testing.B, h http.Handler) []string {
	b.Helper()
	urls := make([]string, 0, benchAddrs)
	for i := range benchAddrs {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+2))
		if err != nil {
			if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
		}
		srv := httptest.NewUnstartedServer(h)
		srv.Listener.Close()
		srv.Listener = ln
		quietServer(srv).Start()
		b.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	return urls
}

// benchTargets builds one target per server: regions r0..rN, the journey shared.
func benchTargets(b *testing.B, urls []string, journey string) []*config.Target {
	b.Helper()
	var src strings.Builder
	src.WriteString("regions:\n")
	for i, u := range urls {
		fmt.Fprintf(&src, "  r%d: {vars: {api: %q}}\n", i, u)
	}
	src.WriteString("products:\n  - name: p\n    journeys:\n")
	src.WriteString(indent(dedent(journey), "      "))
	cfg, err := config.Parse("bench.yaml", []byte(src.String()))
	if err != nil {
		b.Fatalf("%v\n%s", err, src.String())
	}
	return cfg.Targets
}

// cpuTime is the CPU this process has used (client and server both live in it).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs op b.N times and reports ops per second (in unit) and the process's CPU
// per op.
func measure(b *testing.B, unit string, op func(i int)) {
	b.ReportAllocs()
	began, cpu := time.Now(), cpuTime()
	n := 0
	for b.Loop() {
		op(n)
		n++
	}
	wall, used := time.Since(began), cpuTime()-cpu
	b.ReportMetric(float64(n)/wall.Seconds(), unit)
	b.ReportMetric(float64(used.Microseconds())/float64(n), "cpu-µs/op")
}

const benchBody = `{"status":"ok","region":"eu1","version":"1.2.3"}`

func benchHandler(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, benchBody) }

// BenchmarkHTTPProbe is one HTTPProber.Probe: templates rendered, fresh connection,
// traced, body read into a pooled buffer.
func BenchmarkHTTPProbe(b *testing.B) {
	urls := benchServers(b, http.HandlerFunc(benchHandler))
	targets := benchTargets(b, urls, `[{name: j, steps: [{http: {url: "{{.region.api}}/health"}, expect: {status: [200]}}]}]`)
	data := make([]tmpl.Data, len(targets))
	for i, tg := range targets {
		data[i] = tg.TemplateData(map[string]string{"id": "bench"}, map[string]string{})
	}
	p := NewHTTPProber()
	defer p.Close()
	ctx := context.Background()
	measure(b, "probes/s", func(i int) {
		k := i % len(targets)
		ex := p.Probe(ctx, targets[k].Steps[0], data[k])
		if ex.Err != nil || ex.Obs.Status != 200 || len(ex.Obs.Body) != len(benchBody) {
			b.Fatalf("probe: %v, status %d", ex.Err, ex.Obs.Status)
		}
		ex.Release()
	})
}

// BenchmarkFloorNetHTTPGet is the floor: a plain net/http GET on a Transport with
// keep-alives off (so also a fresh connection per request), body read and dropped.
func BenchmarkFloorNetHTTPGet(b *testing.B) {
	urls := benchServers(b, http.HandlerFunc(benchHandler))
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := range urls {
		urls[i] += "/health"
	}
	measure(b, "gets/s", func(i int) {
		resp, err := client.Get(urls[i%len(urls)])
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || n != int64(len(benchBody)) {
			b.Fatalf("get: %v, status %d", err, resp.StatusCode)
		}
	})
}

// BenchmarkJourneyTwoSteps is a whole submit + read-back journey through Runner.Run:
// two fresh connections, templates, extraction, JSON checks.
func BenchmarkJourneyTwoSteps(b *testing.B) {
	store := &logStore{}
	urls := benchServers(b, store.handler())
	targets := benchTargets(b, urls, fmt.Sprintf(submitAndRead, ""))
	r := NewRunner()
	defer r.Close()
	ctx := context.Background()
	measure(b, "journeys/s", func(i int) {
		res := r.Run(ctx, targets[i%len(targets)])
		if res.Status != StatusUp {
			b.Fatalf("journey: %s", res.Error)
		}
	})
}
