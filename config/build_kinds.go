package config

import (
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func (b *builder) requireTemplate(owner any, key, raw, what string) {
	if raw == "" {
		b.d.errorf(b.d.at(owner, ""), "%s.%s is required", what, key)
	}
}

func (b *builder) buildTCP(x *TCPSpec) *TCPRequest {
	b.requireTemplate(x, "address", x.Address, "tcp")
	req := &TCPRequest{Address: b.template(x, "address", x.Address)}
	b.checkHostPort(x, "address", x.Address)
	if x.TLS != nil {
		req.TLS = b.buildTLS(x.TLS)
		req.ServerName = b.serverName(x.TLS, "server_name", x.TLS.ServerName)
	}
	for _, ex := range x.Exchange {
		if ex == nil {
			continue
		}
		var e Exchange
		if ex.Send != "" {
			e.Send = b.template(ex, "send", ex.Send)
		}
		if ex.Expect != "" {
			re, err := regexp.Compile(ex.Expect)
			if err != nil {
				b.d.errorf(b.d.at(ex, "expect"), "expect: bad regex: %v", err)
			}
			e.Expect = re
		}
		if ex.Send == "" && ex.Expect == "" {
			b.d.errorf(b.d.at(ex, ""), "an exchange needs send, expect or both")
		}
		req.Exchange = append(req.Exchange, e)
	}
	return req
}

// checkHostPort checks a literal host:port at load; a template is checked when rendered.
func (b *builder) checkHostPort(owner any, key, raw string) {
	if raw == "" || strings.Contains(raw, "{{") {
		return
	}
	if _, port, err := net.SplitHostPort(raw); err != nil || port == "" {
		b.d.errorf(b.d.at(owner, key), "%s %q: want host:port", key, raw)
	}
}

var dnsTypes = map[string]bool{"A": true, "AAAA": true, "CNAME": true, "MX": true, "TXT": true, "SRV": true, "NS": true, "SOA": true, "PTR": true, "CAA": true}

func (b *builder) buildDNS(x *DNSSpec) *DNSQuery {
	b.requireTemplate(x, "name", x.Name, "dns")
	if x.Server == "" {
		b.d.errorf(b.d.at(x, ""), "dns.server is required (host:port of the server to ask)")
	}
	q := &DNSQuery{
		Name:      b.template(x, "name", x.Name),
		TypeName:  strings.ToUpper(orDefault(x.Type, "A")),
		Transport: orDefault(strings.ToLower(x.Transport), "udp"),
		Recursion: x.Recursion == nil || *x.Recursion,
		Server:    x.Server,
	}
	if !dnsTypes[q.TypeName] {
		b.d.errorf(b.d.at(x, "type"), "dns type %q: want one of A, AAAA, CNAME, MX, TXT, SRV, NS, SOA, PTR, CAA", x.Type)
	}
	q.Type = dns.StringToType[q.TypeName]
	switch q.Transport {
	case "udp", "tcp":
	case "tls":
		q.TLS = &tls.Config{}
		if x.TLS != nil {
			q.TLS = b.buildTLS(x.TLS)
		}
	default:
		b.d.errorf(b.d.at(x, "transport"), "dns transport %q: want udp, tcp or tls", x.Transport)
	}
	if x.Server != "" {
		if _, _, err := net.SplitHostPort(x.Server); err != nil {
			port := "53"
			if q.Transport == "tls" {
				port = "853"
			}
			q.Server = net.JoinHostPort(x.Server, port)
		}
	}
	return q
}

func (b *builder) buildTLSCheck(x *TLSCheckSpec) *TLSCheck {
	b.requireTemplate(x, "address", x.Address, "tls")
	b.checkHostPort(x, "address", x.Address)
	c := b.buildTLS(&TLSSpec{CAFile: x.CAFile, ServerName: x.ServerName, InsecureSkipVerify: x.InsecureSkipVerify})
	return &TLSCheck{Address: b.template(x, "address", x.Address), Config: c, ServerName: b.serverName(x, "server_name", x.ServerName)}
}

func (b *builder) buildGRPC(x *GRPCSpec) *GRPCCheck {
	b.requireTemplate(x, "address", x.Address, "grpc")
	b.checkHostPort(x, "address", x.Address)
	g := &GRPCCheck{Address: b.template(x, "address", x.Address), Service: x.Service}
	switch {
	case x.TLS != nil && x.Plaintext:
		b.d.errorf(b.d.at(x, "plaintext"), "grpc: give tls or plaintext: true, not both")
	case x.TLS != nil:
		g.TLS = b.buildTLS(x.TLS)
	case !x.Plaintext:
		g.TLS = &tls.Config{} // TLS with the system roots unless plaintext is asked for
	}
	return g
}

func (b *builder) buildICMP(x *ICMPSpec) *ICMPCheck {
	b.requireTemplate(x, "host", x.Host, "icmp")
	c := &ICMPCheck{Host: b.template(x, "host", x.Host), Count: x.Count, Interval: x.Interval, Privileged: x.Privileged}
	if c.Count == 0 {
		c.Count = 3
	}
	if c.Interval == 0 {
		c.Interval = 200 * time.Millisecond
	}
	if c.Count < 1 || c.Count > 100 {
		b.d.errorf(b.d.at(x, "count"), "icmp.count must be 1 to 100, got %d", x.Count)
	}
	return c
}
