package probetest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// rootsFrom trusts only the CA in caFile.
func rootsFrom(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("read CA file: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		t.Fatalf("expected a PEM certificate in %s", caFile)
	}
	return roots
}

func tlsAddr(p *Platform, region string) string {
	return strings.TrimPrefix(p.TLSURL(region), "https://")
}

// dialTLS handshakes with region's TLS listener as serverName, trusting roots.
func dialTLS(p *Platform, region, serverName string, roots *x509.CertPool) (tls.ConnectionState, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 2 * time.Second},
		Config:    &tls.Config{ServerName: serverName, RootCAs: roots},
	}
	conn, err := d.Dial("tcp", tlsAddr(p, region))
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}

// handshake is dialTLS that must succeed.
func handshake(t *testing.T, p *Platform, region, serverName, caFile string) tls.ConnectionState {
	t.Helper()
	state, err := dialTLS(p, region, serverName, rootsFrom(t, caFile))
	if err != nil {
		t.Fatalf("TLS handshake with %s as %s: %v", region, serverName, err)
	}
	return state
}

func newTLSClient(t *testing.T, caFile string, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: rootsFrom(t, caFile)}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

func TestTLSServesTheRegionAPI(t *testing.T) {
	p := startPlatform(t, Options{TLSAddrs: map[string]string{"eu1": "", "us1": ""}})
	c := newTLSClient(t, p.CAFile(), 2*time.Second)
	for _, region := range p.Regions() {
		url := p.TLSURL(region)
		if !strings.HasPrefix(url, "https://127.0.0.1:") || url == p.TLSURL("eu1") && region != "eu1" {
			t.Errorf("TLSURL(%s): expected its own https://127.0.0.1:PORT, got %s", region, url)
		}
		before := p.Requests(region, "")
		for _, product := range append(Products(), "healthz") {
			if err := journey(c, url, region, product); err != nil {
				t.Errorf("%s in %s over TLS: %v", product, region, err)
			}
		}
		if p.Requests(region, "") == before {
			t.Errorf("expected requests over TLS to count for %s", region)
		}
	}
	if p.TLSURL("nope") != "" {
		t.Errorf("TLSURL(nope): expected \"\", got %s", p.TLSURL("nope"))
	}
}

func TestTLSCertificate(t *testing.T) {
	p := startPlatform(t, Options{TLSAddrs: map[string]string{"eu1": "", "us1": ""}})
	roots := rootsFrom(t, p.CAFile())
	cases := []struct {
		name, region, serverName string
		errHas                   string
	}{
		{"intake name", "eu1", "intake.eu1.sim.test", ""},
		{"api name", "eu1", "api.eu1.sim.test", ""},
		{"loopback address", "eu1", "127.0.0.1", ""},
		{"other region's name", "eu1", "intake.us1.sim.test", "not intake.us1.sim.test"},
		{"us1 by its own name", "us1", "intake.us1.sim.test", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialTLS(p, tc.region, tc.serverName, roots)
			if tc.errHas == "" && err != nil {
				t.Fatalf("expected the certificate to verify, got %v", err)
			}
			var hostErr x509.HostnameError
			if tc.errHas != "" && (!errors.As(err, &hostErr) || !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("expected a hostname mismatch containing %q, got %v", tc.errHas, err)
			}
		})
	}
	t.Run("leaf", func(t *testing.T) {
		state := handshake(t, p, "eu1", "intake.eu1.sim.test", p.CAFile())
		if len(state.PeerCertificates) != 1 {
			t.Errorf("chain: expected the leaf alone (the root is the client's), got %d certificates", len(state.PeerCertificates))
		}
		leaf := state.PeerCertificates[0]
		if days := time.Until(leaf.NotAfter).Hours() / 24; days < 89.9 || days > 90 {
			t.Errorf("expiry: expected 90 days from now, got %.2f days", days)
		}
		if got, want := strings.Join(leaf.DNSNames, ","), "intake.eu1.sim.test,api.eu1.sim.test"; got != want {
			t.Errorf("DNS names: expected %s, got %s", want, got)
		}
		var ips []string
		for _, ip := range leaf.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
			t.Errorf("IP addresses: expected 127.0.0.1 and ::1, got %v", ips)
		}
		if state.Version != tls.VersionTLS13 || state.NegotiatedProtocol != "" && state.NegotiatedProtocol != "http/1.1" {
			t.Errorf("expected TLS 1.3 and no HTTP/2, got version %x protocol %q", state.Version, state.NegotiatedProtocol)
		}
	})
	t.Run("untrusted without the CA", func(t *testing.T) {
		_, err := dialTLS(p, "eu1", "intake.eu1.sim.test", x509.NewCertPool())
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("expected an unknown authority, got %v", err)
		}
	})
	t.Run("each region its own certificate", func(t *testing.T) {
		eu1 := handshake(t, p, "eu1", "127.0.0.1", p.CAFile()).PeerCertificates[0]
		us1 := handshake(t, p, "us1", "127.0.0.1", p.CAFile()).PeerCertificates[0]
		if eu1.SerialNumber.Cmp(us1.SerialNumber) == 0 || us1.Subject.CommonName != "intake.us1.sim.test" {
			t.Errorf("expected distinct certificates, got %s and %s", eu1.Subject, us1.Subject)
		}
	})
}

// TestTLSFaults: faults reach the TLS listener as they reach the HTTP one.
func TestTLSFaults(t *testing.T) {
	cases := []struct {
		name, product string
		fault         Fault
		check         func(p *Platform, c *http.Client) error
	}{
		{"region down drops before the handshake", "", Fault{Kind: FaultDown}, func(p *Platform, _ *http.Client) error {
			_, err := dialTLS(p, "eu1", "intake.eu1.sim.test", nil)
			var netErr net.Error
			if err == nil || errors.As(err, &netErr) && netErr.Timeout() {
				return errors.New("expected the connection closed during the handshake, got " + errString(err))
			}
			return nil
		}},
		{"region error answers 500", "", Fault{Kind: FaultError}, func(p *Platform, c *http.Client) error {
			return wantErrorContaining("status 500")(journey(c, p.TLSURL("eu1"), "eu1", "healthz"), 0)
		}},
		{"region hang times out", "", Fault{Kind: FaultHang}, func(p *Platform, c *http.Client) error {
			return wantTimeout(journey(c, p.TLSURL("eu1"), "eu1", "healthz"), 0)
		}},
		{"product wrong body", "logs", Fault{Kind: FaultWrongBody}, func(p *Platform, c *http.Client) error {
			return wantErrorContaining(`"m":"something else"`)(journey(c, p.TLSURL("eu1"), "eu1", "logs"), 0)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startPlatform(t, Options{TLSAddrs: map[string]string{"eu1": "", "us1": ""}})
			c := newTLSClient(t, p.CAFile(), hangClientTimeout)
			p.SetFault("eu1", tc.product, tc.fault)
			if err := tc.check(p, c); err != nil {
				t.Error(err)
			}
			for _, product := range []string{"logs", "healthz"} {
				if err := journey(c, p.TLSURL("us1"), "us1", product); err != nil {
					t.Errorf("us1 %s over TLS, not hit: %v", product, err)
				}
			}
		})
	}
}
