package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certServer serves HTTPS on loopback with a self-signed certificate valid until
// notAfter, and writes that certificate as the CA file a config trusts.
func certServer(t *testing.T, dir string, notAfter time.Time) (url, caFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "api.example.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, caFile
}

// `picket check` exits 0 when a certificate only nears expiry, and shows the warning in
// the table and in -o json; an expired certificate is down (exit 1).
func TestCheckCertNearExpiryIsAWarning(t *testing.T) {
	dir := t.TempDir()
	notAfter := time.Now().Add(5*24*time.Hour + time.Hour).Truncate(time.Second)
	date := notAfter.UTC().Format(time.DateOnly)
	url, caFile := certServer(t, dir, notAfter)
	cfg := filepath.Join(dir, "c.yaml")
	src := fmt.Sprintf(`vantage: cert
defaults: {timeout: 2s}
regions: {eu1: {vars: {api: %q}}, us1: {vars: {api: %q}}}
products:
  - name: web
    journeys:
      - name: home
        steps:
          - {name: get, http: {url: "{{.region.api}}/", tls: {ca_file: %q}}, expect: {status: [200], cert_min_days: 14}}
`, url, url, caFile)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	warning := fmt.Sprintf("step get: certificate expires in 5 days (%s), want at least 14", date)

	r := picket(t, "check", "-c", cfg)
	if r.code != 0 {
		t.Errorf("table: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	words := strings.Join(strings.Fields(r.stdout), " ") // the reasons wrap
	if !strings.Contains(r.stdout, "eu1     home                 up ") || !strings.Contains(r.stdout, "cert: 5 days left") ||
		strings.Count(words, "web/home@eu1 (up) warning: "+warning) != 1 ||
		!strings.Contains(r.stdout, "2 up, 0 degraded, 0 down; 2 certificate warnings") {
		t.Errorf("table does not show the warning:\n%s", r.stdout)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}

	r = picket(t, "check", "-c", cfg, "-o", "json")
	if r.code != 0 {
		t.Errorf("json: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Results []struct {
			Target, Status, Error string
			CertWarnings          []struct {
				Step     string    `json:"step"`
				Expires  time.Time `json:"expires"`
				DaysLeft int       `json:"days_left"`
				MinDays  int       `json:"min_days"`
				Subject  string    `json:"subject"`
				Message  string    `json:"message"`
			} `json:"cert_warnings"`
		}
		Summary struct {
			Up, Down     int
			CertWarnings int `json:"cert_warnings"`
		}
		Scope struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if out.Summary.Up != 2 || out.Summary.Down != 0 || out.Summary.CertWarnings != 2 || out.Scope.Kind != "none" {
		t.Errorf("summary %+v, scope %+v", out.Summary, out.Scope)
	}
	for _, res := range out.Results {
		if res.Status != "up" || res.Error != "" || len(res.CertWarnings) != 1 {
			t.Errorf("%s: %s %q, warnings %+v", res.Target, res.Status, res.Error, res.CertWarnings)
			continue
		}
		w := res.CertWarnings[0]
		if w.Step != "get" || !w.Expires.Equal(notAfter) || w.DaysLeft != 5 || w.MinDays != 14 || w.Subject != "api.example.test" || w.Message != warning {
			t.Errorf("%s: warning %+v", res.Target, w)
		}
	}

	expiredURL, expiredCA := certServer(t, t.TempDir(), time.Now().Add(-time.Hour))
	src = strings.ReplaceAll(strings.ReplaceAll(src, url, expiredURL), caFile, expiredCA)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if r = picket(t, "check", "-c", cfg); r.code != 1 || !strings.Contains(r.stdout, "certificate has expired") {
		t.Errorf("expired: exit %d, want 1 with the reason\n%s", r.code, r.stdout)
	}
}
