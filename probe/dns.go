package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/miekg/dns"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

const (
	// dnsEDNSSize is the UDP payload size we advertise: the DNS Flag Day 2020 value,
	// which Go's own resolver sends too, so medium answers need no TCP retry.
	dnsEDNSSize = 1232
	// dnsInfoAnswersLen bounds the answers shown in the step's Info.
	dnsInfoAnswersLen = 200
	// dnsFallbackTimeout bounds an attempt whose ctx has no deadline (the journey
	// always sets one; this is for callers that do not).
	dnsFallbackTimeout = 5 * time.Second
)

// DNSProber asks a named DNS server one question per attempt over a fresh connection
// (UDP, TCP or TLS), as a customer's resolver would. It holds no state.
type DNSProber struct{}

var _ Prober = (*DNSProber)(nil)

// NewDNSProber returns a DNS prober.
func NewDNSProber() *DNSProber { return &DNSProber{} }

// Probe asks step.DNS's question. A UDP answer with the TC bit set is asked again once
// over TCP, as resolvers do. A non-NOERROR rcode is an answer, not an error: the journey
// judges it.
func (p *DNSProber) Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange {
	q := step.DNS
	ex := &Exchange{Info: map[string]string{"server": q.Server, "transport": q.Transport}}
	start := time.Now()
	msg, err := dnsQuestion(q, data)
	if err != nil {
		ex.Err = err
		return ex
	}
	ex.Info["question"] = msg.Question[0].Name + " " + q.TypeName
	r, err := p.ask(ctx, q, msg, ex)
	end := time.Now()
	ex.Obs.Latency = end.Sub(start)
	ex.Obs.Now = end
	if err != nil {
		ex.Err = err
		return ex
	}
	observeDNS(ex, r)
	return ex
}

// ask resolves the server's host if needed, asks over the configured transport, and
// once more over TCP when a UDP answer comes back truncated.
func (p *DNSProber) ask(ctx context.Context, q *config.DNSQuery, msg *dns.Msg, ex *Exchange) (*dns.Msg, error) {
	addr, err := resolveDNSServer(ctx, q.Server, &ex.Phases)
	if err != nil {
		return nil, err
	}
	if addr != q.Server {
		ex.Info["server"] = q.Server + " (" + addr + ")"
	}
	r, err := exchangeDNS(ctx, q, q.Transport, addr, msg, ex)
	if err != nil || !r.Truncated || q.Transport != "udp" {
		return r, err
	}
	ex.Info["transport"] = "udp, then tcp"
	ex.Info["truncated"] = "UDP answer truncated (TC bit); asked again over TCP"
	r, err = exchangeDNS(ctx, q, "tcp", addr, msg, ex)
	if err != nil {
		return nil, fmt.Errorf("UDP answer truncated (TC bit), retry over TCP: %w", err)
	}
	return r, nil
}

// dnsQuestion renders the name and builds the query: one question, RD as configured,
// EDNS0 with dnsEDNSSize.
func dnsQuestion(q *config.DNSQuery, data tmpl.Data) (*dns.Msg, error) {
	name, err := q.Name.Render(data)
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return nil, fmt.Errorf("name %q is not a domain name (want labels of 1 to 63 bytes, 255 in all)", name)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), q.Type)
	m.RecursionDesired = q.Recursion // SetQuestion sets it; the step decides
	m.SetEdns0(dnsEDNSSize, false)
	return m, nil
}

// resolveDNSServer returns server with its host resolved to an IP (the first the
// resolver gives), timing the lookup into ph.DNS. An IP literal is returned as is.
func resolveDNSServer(ctx context.Context, server string, ph *Phases) (string, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return "", fmt.Errorf("server %q: want host:port: %w", server, err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return server, nil
	}
	began := time.Now()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	ph.DNS += time.Since(began)
	if err != nil {
		return "", fmt.Errorf("resolve server host %s: %w", host, describeDNSError(ctx, err))
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("resolve server host %s: no addresses", host)
	}
	return net.JoinHostPort(ips[0].String(), port), nil
}

// exchangeDNS asks msg over one fresh connection; connect, TLS and the exchange's round
// trip add to ex.Phases (Processing is the round trip).
func exchangeDNS(ctx context.Context, q *config.DNSQuery, transport, addr string, msg *dns.Msg, ex *Exchange) (*dns.Msg, error) {
	conn, err := dialDNS(ctx, q, transport, addr, ex)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// miekg/dns honours the deadline but not a cancel: closing the connection ends a
	// read at once when the scheduler stops.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	client := &dns.Client{Timeout: dnsFallbackTimeout}
	if deadline, ok := ctx.Deadline(); ok {
		// Without this, miekg/dns cuts reads at its own 2 s default.
		client.Timeout = max(time.Until(deadline), time.Millisecond)
	}
	r, rtt, err := client.ExchangeWithConnContext(ctx, msg, &dns.Conn{Conn: conn})
	ex.Phases.Processing += rtt
	if err != nil {
		return nil, describeDNSError(ctx, err)
	}
	return r, nil
}

// dialDNS connects (and for tls, shakes hands), timing each into ex.Phases. A DoT
// handshake also fills ex.Obs.TLS and the certificates, so tls_version and
// cert_min_days work on DoT steps.
func dialDNS(ctx context.Context, q *config.DNSQuery, transport, addr string, ex *Exchange) (net.Conn, error) {
	network := "tcp"
	if transport == "udp" {
		network = "udp"
	}
	d := net.Dialer{KeepAlive: -1}
	if _, ok := ctx.Deadline(); !ok {
		d.Timeout = dnsFallbackTimeout
	}
	began := time.Now()
	conn, err := d.DialContext(ctx, network, addr)
	ex.Phases.Connect += time.Since(began)
	if err != nil {
		return nil, describeDNSError(ctx, err)
	}
	if transport != "tls" {
		return conn, nil
	}
	tc := tls.Client(conn, dnsTLSConfig(q))
	began = time.Now()
	err = tc.HandshakeContext(ctx)
	ex.Phases.TLS += time.Since(began)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", describeDNSError(ctx, err))
	}
	st := tc.ConnectionState()
	ex.Obs.TLS = tlsInfo(&st)
	ex.Obs.Certs = st.PeerCertificates
	ex.Cert = earliestExpiry(st.PeerCertificates)
	ex.Info["tls_version"] = ex.Obs.TLS.Version
	return tc, nil
}

// dnsTLSConfig is the step's TLS config with ServerName defaulting to the configured
// server's host (a name or an IP, which Go then checks against the IP SANs).
func dnsTLSConfig(q *config.DNSQuery) *tls.Config {
	base := q.TLS
	if base == nil {
		base = &tls.Config{}
	}
	if base.ServerName != "" {
		return base
	}
	c := base.Clone()
	c.ServerName, _, _ = net.SplitHostPort(q.Server)
	return c
}

// observeDNS fills the observation, the body (one answer per line) and Info from r.
func observeDNS(ex *Exchange, r *dns.Msg) {
	info := &expect.DNSInfo{
		Rcode:         dnsRcodeName(r.Rcode),
		Answers:       make([]string, 0, len(r.Answer)),
		TTLs:          make([]uint32, 0, len(r.Answer)),
		Authoritative: r.Authoritative,
	}
	for _, rr := range r.Answer {
		info.Answers = append(info.Answers, dnsAnswerText(rr))
		info.TTLs = append(info.TTLs, rr.Header().Ttl)
	}
	ex.Obs.DNS = info
	ex.Wire.DNSAnswers, ex.Wire.DNSAuthority, ex.Wire.DNSAdditional = len(r.Answer), len(r.Ns), len(r.Extra)
	ex.Obs.Body = []byte(strings.Join(info.Answers, "\n"))
	ex.Info["rcode"] = info.Rcode
	ex.Info["answers"] = scrub.Excerpt([]byte(strings.Join(info.Answers, ", ")), dnsInfoAnswersLen)
	ex.Info["authoritative"] = strconv.FormatBool(info.Authoritative)
}

func dnsRcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}

// dnsAnswerText is a record's data as a person writes it in an expectation: the IP, the
// target name, "10 mx.example.", the TXT strings joined (as miekg/dns presents them:
// quotes and backslashes escaped, bytes outside printable ASCII as \DDD).
func dnsAnswerText(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.A:
		return v.A.String()
	case *dns.AAAA:
		return v.AAAA.String()
	case *dns.CNAME:
		return v.Target
	case *dns.NS:
		return v.Ns
	case *dns.PTR:
		return v.Ptr
	case *dns.MX:
		return fmt.Sprintf("%d %s", v.Preference, v.Mx)
	case *dns.TXT:
		return strings.Join(v.Txt, "")
	case *dns.SRV:
		return fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, v.Target)
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// describeDNSError makes one line of what went wrong. The connection's deadline is the
// ctx's, so a read can time out a moment before ctx says so: both are a timeout.
func describeDNSError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); errors.Is(ctxErr, context.Canceled) {
		return fmt.Errorf("cancelled: %w", ctxErr)
	}
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("timeout: no complete answer before the deadline (%w)", context.DeadlineExceeded)
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		var se *os.SyscallError
		if errors.As(ne.Err, &se) && se.Syscall == ne.Op {
			return fmt.Errorf("%s: %w", ne.Op, se.Err) // not "read: read: connection refused"
		}
		return fmt.Errorf("%s: %w", ne.Op, ne.Err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("connection closed by the server before a complete answer: %w", err)
	}
	var de *dns.Error
	if errors.As(err, &de) {
		return fmt.Errorf("malformed answer: %w", err) // what the server sent does not parse
	}
	return err
}
