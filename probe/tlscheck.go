package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

// tlsShownSANs is how many subject alternative names Info lists.
const tlsShownSANs = 4

// TLSProber runs tls steps: a handshake only, for the certificate chain, its earliest
// expiry, the protocol version and the cipher. It holds no state; every probe makes a
// fresh connection and a full handshake.
type TLSProber struct{}

// NewTLSProber returns a TLS prober.
func NewTLSProber() *TLSProber { return &TLSProber{} }

var _ Prober = (*TLSProber)(nil)

// Probe connects to step.TLS.Address and completes a TLS handshake, nothing more.
func (p *TLSProber) Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange {
	c := step.TLS
	ex := &Exchange{Info: map[string]string{}}
	start := time.Now()
	defer tcpStamp(ex, start)

	conn, host, sni, err := tcpConnect(ctx, c.Address, c.ServerName, data, ex)
	if err != nil {
		ex.Err = err
		return ex
	}
	defer conn.Close()
	defer tcpBindContext(ctx, conn)()
	_, ex.Err = tlsHandshake(ctx, conn, tlsConfigFor(c.Config, host, sni), ex)
	return ex
}

// tlsConfigFor returns a copy of base for one probe, with the server name taken from
// the address's host when the step gives none (as a client of that host would).
func tlsConfigFor(base *tls.Config, host, sni string) *tls.Config {
	c := &tls.Config{}
	if base != nil {
		c = base.Clone()
	}
	switch {
	case sni != "":
		c.ServerName = sni
	case c.ServerName == "":
		c.ServerName = host
	}
	return c
}

// renderSNI renders a templated server_name ("" when there is none).
func renderSNI(t *tmpl.Template, data tmpl.Data) (string, error) {
	if t == nil {
		return "", nil
	}
	sni, err := t.Render(data)
	if err != nil {
		return "", fmt.Errorf("server_name: %w", err)
	}
	return sni, nil
}

// tlsHandshake runs the client handshake on conn (timed as the TLS phase) and records
// what it showed in ex: the chain and its earliest expiry, version and cipher. A chain
// that fails verification is recorded too, so the output still names the certificate.
func tlsHandshake(ctx context.Context, conn net.Conn, cfg *tls.Config, ex *Exchange) (*tls.Conn, error) {
	tc := tls.Client(conn, cfg)
	began := time.Now()
	err := tc.HandshakeContext(ctx)
	ex.Phases.TLS = time.Since(began)
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			tlsRecordChain(ex, cve.UnverifiedCertificates)
			return nil, fmt.Errorf("TLS handshake: bad certificate: %w", cve.Err)
		}
		return nil, tcpFail(ctx, "TLS handshake", err)
	}
	st := tc.ConnectionState()
	tlsRecordChain(ex, st.PeerCertificates)
	ex.Obs.TLS = tlsInfo(&st)
	ex.Info["tls_version"] = ex.Obs.TLS.Version
	ex.Info["cipher"] = ex.Obs.TLS.Cipher
	if ex.Obs.TLS.OCSPStapled {
		ex.Info["ocsp_stapled"] = "true"
	}
	return tc, nil
}

// tlsRecordChain puts the peer chain (leaf first) into ex, with short facts for output.
func tlsRecordChain(ex *Exchange, chain []*x509.Certificate) {
	if len(chain) == 0 {
		return
	}
	ex.Obs.Certs = chain
	ex.Cert = earliestExpiry(chain)
	leaf := chain[0]
	ex.Info["subject"] = leaf.Subject.CommonName
	ex.Info["issuer"] = leaf.Issuer.CommonName
	ex.Info["not_after"] = leaf.NotAfter.UTC().Format(time.RFC3339)
	ex.Info["chain"] = strconv.Itoa(len(chain))
	if sans := tlsSANs(leaf); sans != "" {
		ex.Info["sans"] = sans
	}
}

// tlsSANs lists the first few DNS names and IP addresses the certificate is valid for.
func tlsSANs(c *x509.Certificate) string {
	names := make([]string, 0, len(c.DNSNames)+len(c.IPAddresses))
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) > tlsShownSANs {
		return strings.Join(names[:tlsShownSANs], ", ") + fmt.Sprintf(" (+%d more)", len(names)-tlsShownSANs)
	}
	return strings.Join(names, ", ")
}

// tlsInfo is what every kind that did a TLS handshake reports for expectations.
func tlsInfo(cs *tls.ConnectionState) *expect.TLSInfo {
	return &expect.TLSInfo{
		Version:     tlsVersionName(cs.Version),
		Cipher:      tls.CipherSuiteName(cs.CipherSuite),
		OCSPStapled: len(cs.OCSPResponse) > 0,
	}
}

// tlsVersionName gives the version as the tls_version expectation spells it.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}
