package probetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

const (
	// zone is the DNS zone the platform is authoritative for; every host name it
	// serves, and every name its certificates carry, is under it.
	zone = "sim.test"
	// demoCAName is the common name of the demo CA, generated or committed.
	demoCAName = "Picket simulated platform demo CA — not a real CA"
	// demoCAValidity is how long a generated CA is valid: the committed one should
	// outlive the project.
	demoCAValidity = 20 * 365 * 24 * time.Hour
	// leafValidity keeps cert_min_days: 14 passing for any platform started today.
	leafValidity = 90 * 24 * time.Hour
	// clockSkew backdates certificates so a client a little behind still accepts them.
	clockSkew = time.Hour
)

// authority is the CA that signs the region certificates.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
	file string // PEM of cert, what CAFile returns
	temp bool   // file was written by Start; Close removes it
}

// setUpAuthority loads the CA named by opts, or generates one and writes it to a
// temporary file when TLS is wanted without one. No TLS and no files: nil.
func setUpAuthority(opts Options) (*authority, error) {
	if opts.CACertFile != "" {
		return loadAuthority(opts.CACertFile, opts.CAKeyFile)
	}
	if len(opts.TLSAddrs) == 0 {
		return nil, nil
	}
	certPEM, keyPEM, err := generateCA(time.Now(), demoCAValidity)
	if err != nil {
		return nil, err
	}
	a, err := parseAuthority(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if a.file, err = writeTemp(certPEM); err != nil {
		return nil, err
	}
	a.temp = true
	return a, nil
}

func loadAuthority(certFile, keyFile string) (*authority, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("probetest: read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("probetest: read CA key: %w", err)
	}
	a, err := parseAuthority(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("probetest: CA %s with key %s: %w", certFile, keyFile, err)
	}
	a.file = certFile
	return a, nil
}

// parseAuthority checks that the pair is a CA that can sign: the key matches the
// certificate (tls.X509KeyPair checks), which is a CA, and valid now.
func parseAuthority(certPEM, keyPEM []byte) (*authority, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("expected a PEM certificate and its private key: %w", err)
	}
	cert := pair.Leaf
	if cert == nil {
		if cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse CA certificate: %w", err)
		}
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("expected a CA certificate (CA:TRUE, keyCertSign), got one for %q that is not", cert.Subject.CommonName)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("expected a CA valid now, got one valid %s to %s", cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly))
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("expected a private key that can sign, got %T", pair.PrivateKey)
	}
	return &authority{cert: cert, key: key}, nil
}

func writeTemp(certPEM []byte) (string, error) {
	f, err := os.CreateTemp("", "probetest-ca-*.pem")
	if err != nil {
		return "", fmt.Errorf("probetest: write the generated CA: %w", err)
	}
	_, err = f.Write(certPEM)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("probetest: write the generated CA to %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// remove deletes the CA file if Start wrote it.
func (a *authority) remove() error {
	if a == nil || !a.temp {
		return nil
	}
	if err := os.Remove(a.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("probetest: remove the generated CA: %w", err)
	}
	return nil
}

// generateCA returns a new ECDSA P-256 CA certificate and its PKCS#8 key, both
// PEM, valid from now for validFor. Name constraints limit it to names under zone
// and to loopback addresses, so even a copy trusted by mistake cannot vouch for a
// real site. examples/sim/ca.pem was made with it (see TestCommittedDemoCA).
func generateCA(now time.Time, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("probetest: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:                serial,
		Subject:                     pkix.Name{CommonName: demoCAName, Organization: []string{"Picket"}},
		NotBefore:                   now.Add(-clockSkew),
		NotAfter:                    now.Add(validFor),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true, // signs leaves only
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{zone},
		PermittedIPRanges: []*net.IPNet{
			{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
			{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("probetest: self-sign CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("probetest: encode CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// issueLeaf signs a server certificate for region's host names and loopback,
// valid from now for leafValidity.
func (a *authority) issueLeaf(region string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("probetest: generate key for region %s: %w", region, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: intakeHost(region), Organization: []string{"Picket simulated platform"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{intakeHost(region), apiHost(region)},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("probetest: sign certificate for region %s: %w", region, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("probetest: parse certificate for region %s: %w", region, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("probetest: certificate serial: %w", err)
	}
	return serial, nil
}

// intakeHost and apiHost are a region's public names, without the trailing dot.
func intakeHost(region string) string { return "intake." + region + "." + zone }
func apiHost(region string) string    { return "api." + region + "." + zone }
