package probetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeDemoCA regenerates the committed demo CA:
//
//	go test ./probe/probetest -run TestCommittedDemoCA -args -write-demo-ca
var writeDemoCA = flag.Bool("write-demo-ca", false, "regenerate examples/sim/ca.pem and ca-key.pem")

var (
	committedCA    = filepath.Join("..", "..", "examples", "sim", "ca.pem")
	committedCAKey = filepath.Join("..", "..", "examples", "sim", "ca-key.pem")
)

// TestCommittedDemoCA checks the CA in examples/sim is what the brief says and
// signs region certificates that verify against it.
func TestCommittedDemoCA(t *testing.T) {
	if *writeDemoCA {
		certPEM, keyPEM, err := generateCA(time.Now(), demoCAValidity)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(committedCA, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(committedCAKey, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := loadAuthority(committedCA, committedCAKey)
	if err != nil {
		t.Fatalf("load the committed CA: %v", err)
	}
	checkDemoCA(t, a.cert, demoCAValidity)

	p := startPlatform(t, Options{TLSAddrs: map[string]string{"eu1": ""}, CACertFile: committedCA, CAKeyFile: committedCAKey})
	if p.CAFile() != committedCA {
		t.Errorf("CAFile: expected the given %s, got %s", committedCA, p.CAFile())
	}
	state := handshake(t, p, "eu1", "intake.eu1.sim.test", p.CAFile())
	if got := state.PeerCertificates[0].Issuer.CommonName; got != demoCAName {
		t.Errorf("leaf issuer: expected %q, got %q", demoCAName, got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(committedCA); err != nil {
		t.Errorf("Close must leave a CA file it did not write: %v", err)
	}
}

func checkDemoCA(t *testing.T, ca *x509.Certificate, validFor time.Duration) {
	t.Helper()
	if ca.Subject.CommonName != demoCAName {
		t.Errorf("CN: expected %q, got %q", demoCAName, ca.Subject.CommonName)
	}
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key: expected ECDSA P-256, got %T", ca.PublicKey)
	}
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("expected a CA that signs leaves only, got IsCA %v MaxPathLenZero %v usage %b", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if got := ca.NotAfter.Sub(ca.NotBefore); got != validFor+clockSkew {
		t.Errorf("validity: expected %s, got %s", validFor+clockSkew, got)
	}
	if strings.Join(ca.PermittedDNSDomains, ",") != zone || len(ca.PermittedIPRanges) != 2 || !ca.PermittedDNSDomainsCritical {
		t.Errorf("name constraints: expected critical %s and loopback, got %v %v", zone, ca.PermittedDNSDomains, ca.PermittedIPRanges)
	}
}

// TestGeneratedCA: without CA files, TLS gets a fresh CA in a temporary file
// that Close removes; without TLS there is no CA at all.
func TestGeneratedCA(t *testing.T) {
	p, err := Start(Options{Regions: []string{"eu1"}, TLSAddrs: map[string]string{"eu1": ""}})
	if err != nil {
		t.Fatal(err)
	}
	file := p.CAFile()
	data, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(data), "BEGIN CERTIFICATE") {
		p.Close()
		t.Fatalf("CAFile %q: expected a PEM certificate, got %q %v", file, data, err)
	}
	if strings.Contains(string(data), "PRIVATE KEY") {
		t.Errorf("expected the CA file to hold the certificate only, got a private key in it")
	}
	handshake(t, p, "eu1", "intake.eu1.sim.test", file)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("expected Close to remove %s, got %v", file, err)
	}

	plain := startPlatform(t, Options{})
	if plain.CAFile() != "" || plain.TLSURL("eu1") != "" {
		t.Errorf("without TLS: expected no CA file and no TLS URL, got %q %q", plain.CAFile(), plain.TLSURL("eu1"))
	}
}

// TestDemoCACannotVouchForOtherNames: a leaf for a real site, signed with the
// demo CA's key, fails verification, so a copy trusted by mistake is harmless.
func TestDemoCACannotVouchForOtherNames(t *testing.T) {
	certPEM, keyPEM, err := generateCA(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseAuthority(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	checkDemoCA(t, a.cert, time.Hour)
	roots := x509.NewCertPool()
	roots.AddCert(a.cert)
	cases := []struct {
		name string
		tmpl x509.Certificate
		ok   bool
	}{
		{"zone name", x509.Certificate{DNSNames: []string{"intake.eu1.sim.test"}}, true},
		{"loopback", x509.Certificate{IPAddresses: []net.IP{{127, 0, 0, 1}}}, true},
		{"real site", x509.Certificate{DNSNames: []string{"www.example.com"}}, false},
		{"zone lookalike", x509.Certificate{DNSNames: []string{"evilsim.test"}}, false},
		{"public address", x509.Certificate{IPAddresses: []net.IP{{192, 0, 2, 1}}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf := signWith(t, a, tc.tmpl)
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots})
			if tc.ok && err != nil {
				t.Errorf("expected to verify, got %v", err)
			}
			var invalid x509.CertificateInvalidError
			if !tc.ok && (!errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName) {
				t.Errorf("expected a name constraint failure, got %v", err)
			}
		})
	}
}

func signWith(t *testing.T, a *authority, tmpl x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.Subject = pkix.Name{CommonName: "leaf"}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
