package probe

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/expect"
)

// grpcTestServer is a real grpc-go server on 127.0.0.1, with the standard health
// service unless noHealth; it is stopped, and its Serve goroutine waited for, at cleanup.
type grpcTestServer struct {
	addr   string
	health *health.Server // nil without the health service
}

func startGRPCServer(t testing.TB, creds credentials.TransportCredentials, noHealth bool) *grpcTestServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	ts := &grpcTestServer{addr: ln.Addr().String()}
	if !noHealth {
		ts.health = health.NewServer()
		healthpb.RegisterHealthServer(srv, ts.health)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return ts
}

// grpcStep compiles a journey with one grpc step whose address is {{.region.api}}.
// spec is the YAML flow mapping of the step's grpc: key without the address; expectYAML,
// when not empty, its expect: mapping.
func grpcStep(t testing.TB, addr, spec, expectYAML string) (*config.Step, *config.Target) {
	t.Helper()
	j := "- name: health\n  steps:\n    - name: check\n      grpc: {address: \"{{.region.api}}\", " + spec + "}\n"
	if expectYAML != "" {
		j += "      expect: " + expectYAML + "\n"
	}
	tg := targetFor(t, addr, j)
	return tg.Steps[0], tg
}

func grpcProbe(t testing.TB, addr, spec string, timeout time.Duration) *Exchange {
	t.Helper()
	step, tg := grpcStep(t, addr, spec, "")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return NewGRPCProber().Probe(ctx, step, tg.TemplateData(nil, nil))
}

func TestGRPCHealthStatuses(t *testing.T) {
	srv := startGRPCServer(t, nil, false)
	srv.health.SetServingStatus("logs.Intake", healthpb.HealthCheckResponse_NOT_SERVING)
	srv.health.SetServingStatus("logs.Query", healthpb.HealthCheckResponse_SERVING)
	cases := []struct {
		name, service, want string
	}{
		{"whole server", "", "SERVING"},
		{"serving service", "logs.Query", "SERVING"},
		{"not serving service", "logs.Intake", "NOT_SERVING"},
		// Check answers NotFound for a service it does not know: the health protocol's
		// SERVICE_UNKNOWN, an answer that expectations judge, not a failed exchange.
		{"unknown service", "logs.Gone", "SERVICE_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex := grpcProbe(t, srv.addr, "plaintext: true, service: "+quoteYAML(tc.service), 2*time.Second)
			if ex.Err != nil {
				t.Fatalf("want an answer, got error: %v", ex.Err)
			}
			if ex.Obs.GRPCStatus != tc.want || string(ex.Obs.Body) != tc.want {
				t.Errorf("status %q body %q, want %s", ex.Obs.GRPCStatus, ex.Obs.Body, tc.want)
			}
			if ex.Info["grpc_status"] != tc.want || ex.Info["service"] != tc.service {
				t.Errorf("info %v, want grpc_status %s and service %q", ex.Info, tc.want, tc.service)
			}
			if ex.Phases.Connect <= 0 || ex.Phases.Processing <= 0 || ex.Phases.TLS != 0 || ex.Obs.Latency < ex.Phases.Connect {
				t.Errorf("phases %+v, latency %s: want connect and processing, no TLS", ex.Phases, ex.Obs.Latency)
			}
			if ex.Obs.TLS != nil || ex.Obs.Certs != nil || !ex.Cert.IsZero() {
				t.Errorf("plaintext probe reports TLS facts: %+v", ex.Obs.TLS)
			}
		})
	}
}

func quoteYAML(s string) string { return `"` + s + `"` }

func TestGRPCStatusExpectations(t *testing.T) {
	srv := startGRPCServer(t, nil, false)
	srv.health.SetServingStatus("logs.Intake", healthpb.HealthCheckResponse_NOT_SERVING)
	ex := grpcProbe(t, srv.addr, `plaintext: true, service: logs.Intake`, 2*time.Second)
	if ex.Err != nil {
		t.Fatal(ex.Err)
	}
	for _, tc := range []struct {
		want, fails string
	}{
		{"NOT_SERVING", ""},
		{"not_serving", ""}, // names are case-insensitive in config
		{"SERVING", "grpc health NOT_SERVING, want SERVING"},
	} {
		checks, errs := expect.Compile(expect.Spec{GRPCStatus: tc.want})
		if errs != nil {
			t.Fatalf("%s: %v", tc.want, errs)
		}
		err := checks.Evaluate(&ex.Obs, nil)
		switch {
		case tc.fails == "" && err != nil:
			t.Errorf("grpc_status %s: want a pass, got %v", tc.want, err)
		case tc.fails != "" && (err == nil || err.Error() != tc.fails):
			t.Errorf("grpc_status %s: want %q, got %v", tc.want, tc.fails, err)
		}
	}
}

// The journey wants SERVING when expect: says nothing of the status.
func TestGRPCJourneyWantsServingByDefault(t *testing.T) {
	srv := startGRPCServer(t, nil, false)
	srv.health.SetServingStatus("logs.Intake", healthpb.HealthCheckResponse_NOT_SERVING)
	for _, tc := range []struct {
		name, service, expectYAML, wantErr string
	}{
		{"serving", "", "", ""},
		{"not serving", "logs.Intake", "", "grpc health NOT_SERVING, want SERVING"},
		{"unknown service", "logs.Gone", "", "grpc health SERVICE_UNKNOWN, want SERVING"},
		{"not serving expected", "logs.Intake", "{grpc_status: NOT_SERVING}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tg := grpcStep(t, srv.addr, "plaintext: true, service: "+quoteYAML(tc.service), tc.expectYAML)
			r := newRunner(t)
			r.probers["grpc"] = NewGRPCProber() // until the lead wires it into buildProbers
			res := r.Run(context.Background(), tg)
			st := res.Steps[0]
			if tc.wantErr == "" && res.Status != StatusUp {
				t.Fatalf("want up, got %s: %s", res.Status, res.Error)
			}
			if tc.wantErr != "" && (res.Status != StatusDown || !strings.Contains(st.Error, tc.wantErr)) {
				t.Fatalf("want down with %q, got %s: %q", tc.wantErr, res.Status, st.Error)
			}
			if st.Kind != "grpc" || st.Info["grpc_status"] == "" {
				t.Errorf("step result %+v: want kind grpc with grpc_status info", st)
			}
		})
	}
}

func TestGRPCFailuresSayWhatHappened(t *testing.T) {
	bare := startGRPCServer(t, nil, true)
	refused := closedPort(t)
	// Accepts TCP and never speaks HTTP/2: the client waits for the server's preface.
	silent := strings.TrimPrefix(rawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }), "http://")

	cases := []struct {
		name, addr, spec string
		timeout          time.Duration
		want             []string
		slowest          time.Duration
	}{
		{"no health service", bare.addr, "plaintext: true", 2 * time.Second,
			[]string{"grpc Unimplemented", "grpc.health.v1.Health", "the server has no grpc.health.v1 service"}, time.Second},
		{"refused", refused, "plaintext: true", 2 * time.Second,
			[]string{"grpc Unavailable", "connect: connection refused"}, time.Second},
		{"never speaks HTTP/2", silent, "plaintext: true", 300 * time.Millisecond,
			[]string{"timeout", "connected, but no HTTP/2 gRPC answer before the deadline"}, time.Second},
		{"address without port", "127.0.0.1", "plaintext: true", 2 * time.Second,
			[]string{`address "127.0.0.1": want host:port`}, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ex := grpcProbe(t, tc.addr, tc.spec, tc.timeout)
			took := time.Since(start)
			if ex.Err == nil {
				t.Fatalf("want an error, got status %q", ex.Obs.GRPCStatus)
			}
			msg := ex.Err.Error()
			t.Logf("error: %s", msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if ex.Obs.GRPCStatus != "" || ex.Info["grpc_status"] != "" {
				t.Errorf("a failed exchange reports status %q", ex.Obs.GRPCStatus)
			}
			if took > tc.slowest {
				t.Errorf("took %s, want under %s", took, tc.slowest)
			}
		})
	}
}

// closedPort returns a 127.0.0.1 address that refuses connections.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestGRPCOverTLS(t *testing.T) {
	now := time.Now()
	ca, caKey, _ := makeCert(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), true, nil, nil)
	leaf, _, leafPair := makeCert(t, now.Add(-time.Hour), now.Add(30*24*time.Hour), false, ca, caKey)
	_, _, selfSigned := makeCert(t, now.Add(-time.Hour), now.Add(30*24*time.Hour), false, nil, nil)
	caFile := writeCAFile(t, ca)

	good := startGRPCServer(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{leafPair}}), false)
	untrusted := startGRPCServer(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{selfSigned}}), false)
	plain := startGRPCServer(t, nil, false)
	silent := strings.TrimPrefix(rawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }), "http://")

	t.Run("trusted CA", func(t *testing.T) {
		ex := grpcProbe(t, good.addr, "tls: {ca_file: "+quoteYAML(caFile)+"}", 2*time.Second)
		if ex.Err != nil {
			t.Fatal(ex.Err)
		}
		if ex.Obs.GRPCStatus != "SERVING" {
			t.Errorf("status %q, want SERVING", ex.Obs.GRPCStatus)
		}
		if ex.Obs.TLS == nil || ex.Obs.TLS.Version != "1.3" || ex.Obs.TLS.Cipher == "" {
			t.Errorf("TLS facts %+v, want version 1.3 and a cipher", ex.Obs.TLS)
		}
		if len(ex.Obs.Certs) != 1 || !ex.Obs.Certs[0].Equal(leaf) || !ex.Cert.Equal(leaf.NotAfter) {
			t.Errorf("peer chain %d certs, expiry %s: want the leaf expiring %s", len(ex.Obs.Certs), ex.Cert, leaf.NotAfter)
		}
		if ex.Phases.TLS <= 0 || ex.Phases.Connect <= 0 || ex.Phases.Processing <= 0 {
			t.Errorf("phases %+v: want connect, TLS and processing", ex.Phases)
		}
		checks, _ := expect.Compile(expect.Spec{TLSVersion: []string{"1.3"}, CertMinDays: 20})
		if err := checks.Evaluate(&ex.Obs, nil); err != nil {
			t.Errorf("tls_version and cert_min_days on a grpc step: %v", err)
		}
	})

	for _, tc := range []struct {
		name, addr, spec string
		want             []string
	}{
		{"certificate from an unknown CA", untrusted.addr, "tls: {ca_file: " + quoteYAML(caFile) + "}",
			[]string{"grpc Unavailable: TLS handshake", "certificate signed by unknown authority"}},
		{"silent after connect", silent, "tls: {ca_file: " + quoteYAML(caFile) + "}",
			[]string{"timeout: connected, but the TLS handshake did not complete before the deadline"}},
		{"name not in the certificate", good.addr, "tls: {ca_file: " + quoteYAML(caFile) + ", server_name: other.test}",
			[]string{"TLS handshake", "not other.test"}},
		{"TLS to a plaintext server", plain.addr, "tls: {ca_file: " + quoteYAML(caFile) + "}",
			[]string{"TLS handshake", "does not look like a TLS handshake"}},
		{"plaintext to a TLS server", good.addr, "plaintext: true",
			[]string{"grpc Unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := grpcProbe(t, tc.addr, tc.spec, 500*time.Millisecond)
			if ex.Err == nil {
				t.Fatalf("want an error, got status %q", ex.Obs.GRPCStatus)
			}
			t.Logf("error: %v", ex.Err)
			for _, w := range tc.want {
				if !strings.Contains(ex.Err.Error(), w) {
					t.Errorf("error %q does not say %q", ex.Err, w)
				}
			}
		})
	}
}

func TestGRPCBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, grpc, want string
	}{
		{"no address", `{plaintext: true}`, "grpc.address is required"},
		{"no port", `{address: "127.0.0.1", plaintext: true}`, "want host:port"},
		{"tls and plaintext", `{address: "127.0.0.1:1", plaintext: true, tls: {}}`, "give tls or plaintext: true, not both"},
		{"unknown key", `{address: "127.0.0.1:1", servce: x}`, "servce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "regions:\n  r1: {}\nproducts:\n  - name: p\n    journeys:\n      - name: j\n        steps:\n          - name: s\n            grpc: " + tc.grpc + "\n"
			_, err := config.Parse("test.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a load error saying %q, got %v", tc.want, err)
			}
		})
	}
}

// A name is resolved by the prober (timed as the DNS phase) and stays the authority.
func TestGRPCResolvesAName(t *testing.T) {
	srv := startGRPCServer(t, nil, false)
	_, port, _ := net.SplitHostPort(srv.addr)
	ex := grpcProbe(t, net.JoinHostPort("localhost", port), "plaintext: true", 2*time.Second)
	if ex.Err != nil {
		t.Fatal(ex.Err)
	}
	if ex.Obs.GRPCStatus != "SERVING" || ex.Phases.DNS <= 0 {
		t.Errorf("status %q, dns %s: want SERVING after a timed lookup", ex.Obs.GRPCStatus, ex.Phases.DNS)
	}
}

// BenchmarkGRPCHealthCheck is one probe over loopback: a fresh connection, HTTP/2
// setup and the Check.
func BenchmarkGRPCHealthCheck(b *testing.B) {
	srv := startGRPCServer(b, nil, false)
	step, tg := grpcStep(b, srv.addr, "plaintext: true", "")
	data := tg.TemplateData(nil, nil)
	p := NewGRPCProber()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ex := p.Probe(ctx, step, data); ex.Err != nil {
			b.Fatal(ex.Err)
		}
	}
}
