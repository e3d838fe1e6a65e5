package expect

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// DNSInfo is what a dns step saw.
type DNSInfo struct {
	Rcode         string   // NOERROR, NXDOMAIN, ...
	Answers       []string // one per answer record: its data ("192.0.2.1", "10 mx.example.", ...)
	TTLs          []uint32 // of the answers, same order
	Authoritative bool
}

// TLSInfo is what a TLS handshake gave.
type TLSInfo struct {
	Version     string // "1.2", "1.3"
	Cipher      string
	OCSPStapled bool
}

// PingInfo is what an icmp step saw.
type PingInfo struct {
	Sent, Received int
	Loss           float64 // 0 to 1
	RTTAvg, RTTMax time.Duration
}

type protocolChecks struct {
	rcode         string
	answers       []*regexp.Regexp
	answersExact  []string // sorted
	minTTL        time.Duration
	authoritative *bool
	tlsVersions   []string
	ocspStapled   *bool
	grpcStatus    string
	maxLoss       *float64
	maxRTT        time.Duration
}

var (
	rcodes       = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}
	grpcStatuses = []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}
	tlsVersions  = []string{"1.0", "1.1", "1.2", "1.3"}
)

func compileProtocol(s Spec, add func(field, key string, err error)) protocolChecks {
	p := protocolChecks{
		rcode: strings.ToUpper(s.Rcode), minTTL: s.MinTTL, authoritative: s.Authoritative,
		ocspStapled: s.OCSPStapled, grpcStatus: strings.ToUpper(s.GRPCStatus), maxLoss: s.MaxLoss, maxRTT: s.MaxRTT,
	}
	if p.rcode != "" && !slices.Contains(rcodes, p.rcode) {
		add("rcode", "", fmt.Errorf("want one of %s, got %q", strings.Join(rcodes, ", "), s.Rcode))
	}
	for _, a := range s.Answers {
		re, err := regexp.Compile(a)
		if err != nil {
			add("answers", "", fmt.Errorf("bad regex %q: %w", a, err))
			continue
		}
		p.answers = append(p.answers, re)
	}
	if len(s.AnswersExact) > 0 {
		p.answersExact = slices.Clone(s.AnswersExact)
		sort.Strings(p.answersExact)
	}
	if s.MinTTL < 0 {
		add("min_ttl", "", fmt.Errorf("want a positive duration, got %v", s.MinTTL))
	}
	for _, v := range s.TLSVersion {
		if !slices.Contains(tlsVersions, v) {
			add("tls_version", "", fmt.Errorf("want 1.0, 1.1, 1.2 or 1.3, got %q", v))
		}
	}
	p.tlsVersions = s.TLSVersion
	if p.grpcStatus != "" && !slices.Contains(grpcStatuses, p.grpcStatus) {
		add("grpc_status", "", fmt.Errorf("want one of %s, got %q", strings.Join(grpcStatuses, ", "), s.GRPCStatus))
	}
	if s.MaxLoss != nil && (*s.MaxLoss < 0 || *s.MaxLoss > 1) {
		add("max_loss", "", fmt.Errorf("want a fraction from 0 to 1, got %v", *s.MaxLoss))
	}
	if s.MaxRTT < 0 {
		add("max_rtt", "", fmt.Errorf("want a positive duration, got %v", s.MaxRTT))
	}
	return p
}

func (p *protocolChecks) empty() bool {
	return p.rcode == "" && len(p.answers) == 0 && len(p.answersExact) == 0 && p.minTTL == 0 &&
		p.authoritative == nil && len(p.tlsVersions) == 0 && p.ocspStapled == nil && p.grpcStatus == "" &&
		p.maxLoss == nil && p.maxRTT == 0
}

// HasGRPCStatus reports whether the step says which health status it wants (the grpc
// prober wants SERVING otherwise).
func (c *Checks) HasGRPCStatus() bool { return c != nil && c.proto.grpcStatus != "" }

// HasMaxLoss reports whether the step judges packet loss itself (an icmp step without
// it fails when every ping is lost).
func (c *Checks) HasMaxLoss() bool { return c != nil && c.proto.maxLoss != nil }

// HasRcode reports whether the step says which rcode it wants (NOERROR otherwise).
func (c *Checks) HasRcode() bool { return c != nil && c.proto.rcode != "" }

func (p *protocolChecks) check(o *Observation, fail func(string)) {
	p.checkDNS(o.DNS, fail)
	if len(p.tlsVersions) > 0 || p.ocspStapled != nil {
		switch {
		case o.TLS == nil:
			fail("no TLS handshake, want TLS")
		default:
			if len(p.tlsVersions) > 0 && !slices.Contains(p.tlsVersions, o.TLS.Version) {
				fail(fmt.Sprintf("TLS version %s, want %s", o.TLS.Version, strings.Join(p.tlsVersions, " or ")))
			}
			if p.ocspStapled != nil && o.TLS.OCSPStapled != *p.ocspStapled {
				fail(fmt.Sprintf("OCSP stapled %v, want %v", o.TLS.OCSPStapled, *p.ocspStapled))
			}
		}
	}
	if p.grpcStatus != "" && o.GRPCStatus != p.grpcStatus {
		fail(fmt.Sprintf("grpc health %s, want %s", orNone(o.GRPCStatus), p.grpcStatus))
	}
	if p.maxLoss != nil || p.maxRTT > 0 {
		switch {
		case o.Ping == nil:
			fail("no ping result")
		default:
			if p.maxLoss != nil && o.Ping.Loss > *p.maxLoss {
				fail(fmt.Sprintf("packet loss %.0f%% (%d of %d lost), want at most %.0f%%", o.Ping.Loss*100,
					o.Ping.Sent-o.Ping.Received, o.Ping.Sent, *p.maxLoss*100))
			}
			if p.maxRTT > 0 && o.Ping.RTTAvg > p.maxRTT {
				fail(fmt.Sprintf("round trip %s on average, want at most %s", o.Ping.RTTAvg.Round(10*time.Microsecond), p.maxRTT))
			}
		}
	}
}

func (p *protocolChecks) checkDNS(d *DNSInfo, fail func(string)) {
	needs := p.rcode != "" || len(p.answers) > 0 || len(p.answersExact) > 0 || p.minTTL > 0 || p.authoritative != nil
	if !needs {
		return
	}
	if d == nil {
		fail("no DNS answer, want a DNS step")
		return
	}
	if p.rcode != "" && d.Rcode != p.rcode {
		fail(fmt.Sprintf("rcode %s, want %s", d.Rcode, p.rcode))
	}
	for _, re := range p.answers {
		if !slices.ContainsFunc(d.Answers, re.MatchString) {
			fail(fmt.Sprintf("no answer matches `%s` (answers: %s)", re, list(d.Answers)))
		}
	}
	if len(p.answersExact) > 0 {
		got := slices.Clone(d.Answers)
		sort.Strings(got)
		if !slices.Equal(got, p.answersExact) {
			fail(fmt.Sprintf("answers %s, want exactly %s", list(got), list(p.answersExact)))
		}
	}
	if p.minTTL > 0 {
		for i, ttl := range d.TTLs {
			if time.Duration(ttl)*time.Second < p.minTTL {
				fail(fmt.Sprintf("TTL %ds of %s, want at least %s", ttl, d.Answers[i], p.minTTL))
				break
			}
		}
	}
	if p.authoritative != nil && d.Authoritative != *p.authoritative {
		fail(fmt.Sprintf("authoritative %v, want %v", d.Authoritative, *p.authoritative))
	}
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return "[" + strings.Join(xs, ", ") + "]"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
