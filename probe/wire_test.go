package probe

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/miekg/dns"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The facts blackbox_exporter exports (probe_http_version, probe_http_ssl,
// probe_http_redirects, probe_tls_version_info) come from the exchange itself.
func TestHTTPWireFacts(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", http.RedirectHandler("/one", http.StatusFound))
	mux.Handle("/one", http.RedirectHandler("/final", http.StatusMovedPermanently))
	mux.HandleFunc("/final", answerOK)
	plain := startServer(t, mux)
	h2 := quietServer(httptest.NewUnstartedServer(mux))
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	ca := writeCAFile(t, h2.Certificate())
	for _, tc := range []struct {
		name, url, extra string
		want             Wire
	}{
		{"plain, two redirects", plain.URL + "/", "follow_redirects: true", Wire{HTTPVersion: 1.1, Redirects: 2}},
		{"plain, redirects not followed", plain.URL + "/", "follow_redirects: false", Wire{HTTPVersion: 1.1}},
		{"TLS and HTTP/2, one redirect", h2.URL + "/one", fmt.Sprintf("tls: {ca_file: %q}", ca), Wire{HTTPVersion: 2, HTTPSSL: true, Redirects: 1, TLSVersion: "1.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := targetFor(t, tc.url, fmt.Sprintf(`[{name: j, timeout: 2s, steps: [{http: {url: "{{.region.api}}", %s}, expect: {status: [200, 3xx]}}]}]`, tc.extra))
			res := newRunner(t).Run(context.Background(), tg)
			if res.Status != StatusUp {
				t.Fatalf("want up, got %s: %s", res.Status, res.Error)
			}
			if got := res.Steps[0].Wire; got != tc.want {
				t.Errorf("wire %+v, want %+v", got, tc.want)
			}
		})
	}
	// No answer: nothing seen, not HTTP/1.1 with 0 redirects.
	tg := targetFor(t, "http://127.0.0.1:1", `[{name: j, timeout: 1s, steps: [{http: {url: "{{.region.api}}/"}}]}]`)
	if res := newRunner(t).Run(context.Background(), tg); res.Status != StatusDown || res.Steps[0].Wire != (Wire{}) {
		t.Errorf("refused: %s, wire %+v: want down with nothing seen", res.Status, res.Steps[0].Wire)
	}
}

func TestTLSStepWireHasTheVersion(t *testing.T) {
	srv := startTLSServer(t, http.HandlerFunc(answerOK), nil)
	ca := writeCAFile(t, srv.Certificate())
	tg := targetFor(t, srv.Listener.Addr().String(), fmt.Sprintf(`[{name: j, timeout: 2s, steps: [{tls: {address: "{{.region.api}}", server_name: example.com, ca_file: %q}}]}]`, ca))
	res := newRunner(t).Run(context.Background(), tg)
	if res.Status != StatusUp || res.Steps[0].Wire.TLSVersion != "1.3" {
		t.Errorf("%s (%s), wire %+v: want up with TLS version 1.3", res.Status, res.Error, res.Steps[0].Wire)
	}
}

// A server that fills every section: one answer, two authority and three additional
// records, so each count is told apart from the others.
func TestDNSWireCountsTheSections(t *testing.T) {
	pc, _ := dnsListenPair(t, false)
	dnsServe(t, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		reply := new(dns.Msg).SetReply(req)
		rr := func(s string) dns.RR { r, _ := dns.NewRR(s); return r }
		reply.Answer = []dns.RR{rr("www.picket.test. 60 IN A 192.0.2.1")}
		reply.Ns = []dns.RR{rr("picket.test. 60 IN NS ns1.picket.test."), rr("picket.test. 60 IN NS ns2.picket.test.")}
		reply.Extra = []dns.RR{rr("ns1.picket.test. 60 IN A 192.0.2.53"), rr("ns2.picket.test. 60 IN A 192.0.2.54"), rr("ns2.picket.test. 60 IN AAAA 2001:db8::53")}
		_ = w.WriteMsg(reply)
	})})
	tg := targetFor(t, "picket.test", fmt.Sprintf(`[{name: j, timeout: 2s, steps: [{dns: {server: %q, name: www.picket.test, type: A}}]}]`, pc.LocalAddr()))
	res := newRunner(t).Run(context.Background(), tg)
	w := res.Steps[0].Wire
	if res.Status != StatusUp || w.DNSAnswers != 1 || w.DNSAuthority != 2 || w.DNSAdditional != 3 {
		t.Errorf("%s (%s), wire %+v: want 1 answer, 2 authority, 3 additional", res.Status, res.Error, w)
	}
}

func TestGRPCWireHasTheStatusCode(t *testing.T) {
	srv := startGRPCServer(t, nil, false)
	srv.health.SetServingStatus("logs.Intake", healthpb.HealthCheckResponse_NOT_SERVING)
	for _, tc := range []struct {
		name, addr, service string
		want                int
	}{
		{"an answer is OK whatever it says", srv.addr, "logs.Intake", 0},
		{"an unknown service is NotFound", srv.addr, "logs.Gone", 5},
		{"no server is Unavailable", "127.0.0.1:1", "", 14},
	} {
		ex := grpcProbe(t, tc.addr, "plaintext: true, service: "+quoteYAML(tc.service), 2*time.Second)
		if ex.Wire.GRPCCode != tc.want {
			t.Errorf("%s: code %d (err %v), want %d", tc.name, ex.Wire.GRPCCode, ex.Err, tc.want)
		}
	}
}
