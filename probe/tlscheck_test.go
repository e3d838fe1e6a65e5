package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
)

// tlsTestCA makes a CA valid for a year and writes its PEM to a temp file.
func tlsTestCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	now := time.Now()
	ca, key, _ := makeCert(t, now.Add(-48*time.Hour), now.Add(365*24*time.Hour), true, nil, nil)
	return ca, key, writeCAFile(t, ca)
}

// tlsTestLeaf makes a certificate for 127.0.0.1 and picket.test signed by ca, valid
// until notAfter; its chain carries the CA.
func tlsTestLeaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, notAfter time.Time) tls.Certificate {
	t.Helper()
	_, _, leaf := makeCert(t, time.Now().Add(-48*time.Hour), notAfter, false, ca, caKey)
	leaf.Certificate = append(leaf.Certificate, ca.Raw)
	return leaf
}

// tlsTestPKI is a CA, its PEM file and one leaf it signed, valid until notAfter.
func tlsTestPKI(t testing.TB, notAfter time.Time) (*x509.Certificate, string, tls.Certificate) {
	t.Helper()
	ca, key, caFile := tlsTestCA(t)
	return ca, caFile, tlsTestLeaf(t, ca, key, notAfter)
}

// tlsCheckJourney is a one-step journey: a tls check of the region's api address with
// the given extra keys of tls: and expect:.
func tlsCheckJourney(timeout, tlsKeys, expect string) string {
	if tlsKeys != "" {
		tlsKeys = ", " + tlsKeys
	}
	return fmt.Sprintf(`
		- name: cert
		  timeout: %s
		  steps:
		    - {name: check, tls: {address: "{{.region.api}}"%s}, expect: {%s}}
	`, timeout, tlsKeys, expect)
}

func TestTLSCheckReportsChainVersionAndCipher(t *testing.T) {
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	ca, caFile, leaf := tlsTestPKI(t, notAfter)
	addr := tcpTLSListen(t, &tls.Config{Certificates: []tls.Certificate{leaf}}, nil)
	journey := tlsCheckJourney("2s", fmt.Sprintf("ca_file: %q", caFile), "cert_min_days: 14, tls_version: ['1.3']")

	ex, step := tcpProbeStep(t, NewTLSProber(), addr, journey)
	if ex.Err != nil {
		t.Fatalf("want no error, got %v", ex.Err)
	}
	if ex.Obs.TLS == nil || ex.Obs.TLS.Version != "1.3" || ex.Obs.TLS.Cipher == "" || ex.Obs.TLS.OCSPStapled {
		t.Errorf("tls %+v: want 1.3, a cipher, no OCSP staple", ex.Obs.TLS)
	}
	if len(ex.Obs.Certs) != 2 || !ex.Obs.Certs[1].Equal(ca) || !ex.Cert.Equal(notAfter) {
		t.Errorf("chain of %d, earliest expiry %v: want leaf and CA, %v", len(ex.Obs.Certs), ex.Cert, notAfter)
	}
	want := map[string]string{
		"tls_version": "1.3", "cipher": ex.Obs.TLS.Cipher, "subject": "picket test", "issuer": "picket test",
		"not_after": notAfter.UTC().Format(time.RFC3339), "sans": "picket.test, 127.0.0.1", "chain": "2", "remote": addr,
	}
	if fmt.Sprint(ex.Info) != fmt.Sprint(want) {
		t.Errorf("info\n  %v\nwant\n  %v", ex.Info, want)
	}
	if ex.Phases.Connect <= 0 || ex.Phases.TLS <= 0 || ex.Phases.Processing != 0 || len(ex.Obs.Body) != 0 {
		t.Errorf("phases %+v, body %q: want connect and TLS timed, nothing else", ex.Phases, ex.Obs.Body)
	}
	if step.TLS.Config.ServerName != "" {
		t.Errorf("the step's TLS config was changed: server name %q", step.TLS.Config.ServerName)
	}

	res := tcpRun(t, addr, journey)
	tcpWantUp(t, res)
	if !res.Steps[0].CertExpiry.Equal(notAfter) || res.Steps[0].Info["tls_version"] != "1.3" {
		t.Errorf("step result: cert expiry %v, info %v", res.Steps[0].CertExpiry, res.Steps[0].Info)
	}
}

func TestTLSCheckFailures(t *testing.T) {
	now := time.Now()
	soon := now.Add(3*24*time.Hour + time.Hour)
	ca, caKey, caFile := tlsTestCA(t)
	good := tlsTestLeaf(t, ca, caKey, now.Add(90*24*time.Hour))
	expiring := tlsTestLeaf(t, ca, caKey, soon)
	expired := tlsTestLeaf(t, ca, caKey, now.Add(-time.Hour))
	_, _, selfSigned := makeCert(t, now.Add(-time.Hour), soon, false, nil, nil)
	serve := func(cert tls.Certificate, maxVersion uint16) func(t *testing.T) string {
		return func(t *testing.T) string {
			return tcpTLSListen(t, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion}, nil)
		}
	}
	trust := fmt.Sprintf("ca_file: %q", caFile)
	cases := []struct {
		name          string
		start         func(t *testing.T) string // the address to check
		timeout       string
		tls, expect   string
		want          string // the journey's error, or its start when prefix
		prefix        bool
		keepsCertInfo bool // the rejected certificate still shows in the result
	}{
		{
			// Near expiry alone is a warning (cert_test.go); another failure still fails.
			name: "cert too close to expiry and TLS 1.2", start: serve(expiring, tls.VersionTLS12), tls: trust,
			expect: "cert_min_days: 14, tls_version: ['1.3']",
			want:   "step check: TLS version 1.2, want 1.3",
		},
		{
			name: "expired", start: serve(expired, 0), tls: trust,
			want: "step check: TLS handshake: bad certificate: x509: certificate has expired or is not yet valid: current time ", prefix: true,
			keepsCertInfo: true,
		},
		{
			name: "self-signed", start: serve(selfSigned, 0),
			want:          "step check: TLS handshake: bad certificate: x509: certificate signed by unknown authority",
			keepsCertInfo: true,
		},
		{
			name: "wrong host name (sni)", start: serve(good, 0), tls: trust + ", server_name: api.other.test",
			want:          "step check: TLS handshake: bad certificate: x509: certificate is valid for picket.test, not api.other.test",
			keepsCertInfo: true,
		},
		{
			name: "insecure_skip_verify still judges cert_min_days", start: serve(expired, 0),
			tls: "insecure_skip_verify: true", expect: "cert_min_days: 14",
			want: fmt.Sprintf("step check: certificate expired on %s, want at least 14 days left", now.Add(-time.Hour).UTC().Format(time.DateOnly)),
		},
		{
			name: "server limited to TLS 1.2", start: serve(good, tls.VersionTLS12), tls: trust, expect: "tls_version: ['1.3']",
			want: "step check: TLS version 1.2, want 1.3",
		},
		{
			name: "accepts TCP and stalls the handshake", timeout: "300ms",
			start: func(t *testing.T) string { return tcpListen(t, tcpSilentServer) },
			want:  "step check: TLS handshake: timed out (context deadline exceeded)",
		},
		{
			name: "speaks something else than TLS",
			start: func(t *testing.T) string {
				return tcpListen(t, func(c net.Conn) { io.WriteString(c, "220 mail.test ESMTP\r\n"); io.Copy(io.Discard, c) })
			},
			want: "step check: TLS handshake: tls: first record does not look like a TLS handshake",
		},
		{
			name: "refused", start: func(t *testing.T) string { return tcpClosedAddr(t) },
			want: "step check: connect to %s: connection refused",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.start(t)
			timeout := tc.timeout
			if timeout == "" {
				timeout = "2s"
			}
			started := time.Now()
			res := tcpRun(t, addr, tlsCheckJourney(timeout, tc.tls, tc.expect))
			took := time.Since(started)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, addr)
			}
			switch {
			case res.Status != StatusDown:
				t.Fatalf("want down, got %s", res.Status)
			case tc.prefix && !strings.HasPrefix(res.Error, want):
				t.Errorf("error\n  %s\nwant it to start with\n  %s", res.Error, want)
			case !tc.prefix && res.Error != want:
				t.Errorf("error\n  %s\nwant\n  %s", res.Error, want)
			}
			if tc.keepsCertInfo && (res.Steps[0].CertExpiry.IsZero() || res.Steps[0].Info["subject"] != "picket test") {
				t.Errorf("cert expiry %v, info %v: want the rejected certificate named", res.Steps[0].CertExpiry, res.Steps[0].Info)
			}
			if took > 2*time.Second {
				t.Errorf("took %v, want it to stop at once or at the deadline", took)
			}
		})
	}
}

// The server name comes from server_name, else from the address's host; each probe
// works on its own copy of the step's TLS config, so concurrent probes do not race.
func TestTLSCheckServerName(t *testing.T) {
	_, caFile, leaf := tlsTestPKI(t, time.Now().Add(90*24*time.Hour))
	var mu sync.Mutex
	var seen []string
	addr := tcpTLSListen(t, &tls.Config{
		Certificates: []tls.Certificate{leaf},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			seen = append(seen, hello.ServerName)
			mu.Unlock()
			return nil, nil
		},
	}, nil)
	lastSeen := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return ""
		}
		return seen[len(seen)-1]
	}
	trust := fmt.Sprintf("ca_file: %q", caFile)

	tcpWantUp(t, tcpRun(t, addr, tlsCheckJourney("2s", trust+", server_name: picket.test", "")))
	if got := lastSeen(); got != "picket.test" {
		t.Errorf("server saw SNI %q, want picket.test from server_name", got)
	}

	if _, err := net.DefaultResolver.LookupIPAddr(context.Background(), "localhost"); err == nil {
		_, port, _ := net.SplitHostPort(addr)
		res := tcpRun(t, "localhost:"+port, tlsCheckJourney("2s", trust, ""))
		tcpWantError(t, res, "step check: TLS handshake: bad certificate: x509: certificate is valid for picket.test, not localhost")
		if got := lastSeen(); got != "localhost" {
			t.Errorf("server saw SNI %q, want localhost from the address", got)
		}
	}

	tg := targetFor(t, addr, tlsCheckJourney("2s", trust, ""))
	step := tg.Steps[0]
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			errs[i] = NewTLSProber().Probe(ctx, step, tg.TemplateData(map[string]string{}, map[string]string{})).Err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if step.TLS.Config.ServerName != "" {
		t.Errorf("the step's TLS config was changed: server name %q", step.TLS.Config.ServerName)
	}
}

func TestTLSCheckBadConfig(t *testing.T) {
	for _, tc := range []struct{ name, step, want string }{
		{"no address", `tls: {server_name: x}`, "tls.address is required"},
		{"no port", `tls: {address: "127.0.0.1"}`, "want host:port"},
		{"missing ca file", `tls: {address: "127.0.0.1:1", ca_file: /nonexistent/ca.pem}`, "ca_file"},
		{"bad tls_version", `tls: {address: "127.0.0.1:1"}, expect: {tls_version: ["1.4"]}`, "want 1.0, 1.1, 1.2 or 1.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "regions: {r1: {}}\nproducts:\n  - name: p\n    journeys:\n      - name: j\n        steps:\n          - {name: s, " + tc.step + "}\n"
			_, err := config.Parse("test.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v: want it to say %q", err, tc.want)
			}
		})
	}
}
