package expect

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestEvaluateRealTLSResponse builds the Observation from a real HTTPS exchange on
// loopback, the way the prober does, with a certificate that expires in three days.
func TestEvaluateRealTLSResponse(t *testing.T) {
	cert, key := selfSigned(t, time.Now().Add(3*24*time.Hour+time.Hour))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"r-1","items":[{"ok":true}]}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}}
	srv.StartTLS()
	defer srv.Close()

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}

	start := time.Now()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	obs := &Observation{
		Status: resp.StatusCode, Headers: resp.Header, Body: body,
		Latency: time.Since(start), Certs: resp.TLS.PeerCertificates,
	}

	holds := mustCompile(t, Spec{
		Status: []string{"200"}, Latency: 5 * time.Second, CertMinDays: 3,
		JSON: map[string]string{"$.id": "r-1", "items.0.ok": "true"}, BodyContains: `"items"`,
		Headers: map[string]string{"content-type": "^application/json$"}, Expr: "json.items[0].ok && status == 200",
	})
	if err := holds.Evaluate(obs, nil); err != nil {
		t.Errorf("Evaluate = %v, want nil", err)
	}

	tooSoon := mustCompile(t, Spec{Status: []string{"200"}, CertMinDays: 14})
	if err := tooSoon.Evaluate(obs, nil); err != nil {
		t.Errorf("Evaluate = %v, want nil: near expiry is a warning", err)
	}
	want := fmt.Sprintf("certificate expires in 3 days (%s), want at least 14", cert.NotAfter.UTC().Format(time.DateOnly))
	if w := tooSoon.CertWarning(obs); w == nil || w.String() != want || w.DaysLeft != 3 {
		t.Errorf("CertWarning = %v, want %q", w, want)
	}
}
