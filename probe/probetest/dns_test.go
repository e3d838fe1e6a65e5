package probetest

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// query asks the platform's DNS server one question over network (udp or tcp).
func query(p *Platform, network, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: timeout}
	m := new(dns.Msg).SetQuestion(name, qtype)
	r, _, err := c.Exchange(m, p.DNSAddr())
	return r, err
}

// rrText is a record as one space-separated line, "name ttl class type data".
func rrText(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

func TestDNSAnswers(t *testing.T) {
	p := startPlatform(t, Options{DNSAddr: "127.0.0.1:0", TCPAddrs: map[string]string{"eu1": ""}})
	if !strings.HasPrefix(p.DNSAddr(), "127.0.0.1:") {
		t.Fatalf("DNSAddr: expected 127.0.0.1:PORT, got %q", p.DNSAddr())
	}
	_, linePort, _ := net.SplitHostPort(p.TCPAddr("eu1"))
	soa := []string{"sim.test. 60 IN SOA ns.sim.test. hostmaster.sim.test. 1 3600 600 86400 60"}
	cases := []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		aa        bool
		answer    []string
		authority []string
	}{
		{"intake A", "intake.eu1.sim.test.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{"intake.eu1.sim.test. 60 IN A 127.0.0.1"}, nil},
		{"intake AAAA", "intake.us1.sim.test.", dns.TypeAAAA, dns.RcodeSuccess, true,
			[]string{"intake.us1.sim.test. 60 IN AAAA ::1"}, nil},
		{"names are case-insensitive", "INTAKE.Eu1.SIM.test.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{"intake.eu1.sim.test. 60 IN A 127.0.0.1"}, nil},
		{"api A follows the CNAME", "api.eu1.sim.test.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{"api.eu1.sim.test. 60 IN CNAME intake.eu1.sim.test.", "intake.eu1.sim.test. 60 IN A 127.0.0.1"}, nil},
		{"api CNAME", "api.us1.sim.test.", dns.TypeCNAME, dns.RcodeSuccess, true,
			[]string{"api.us1.sim.test. 60 IN CNAME intake.us1.sim.test."}, nil},
		{"zone NS", "sim.test.", dns.TypeNS, dns.RcodeSuccess, true, []string{"sim.test. 60 IN NS ns.sim.test."}, nil},
		{"name server A", "ns.sim.test.", dns.TypeA, dns.RcodeSuccess, true, []string{"ns.sim.test. 60 IN A 127.0.0.1"}, nil},
		{"zone SOA", "sim.test.", dns.TypeSOA, dns.RcodeSuccess, true, soa, nil},
		{"zone MX, one per region", "sim.test.", dns.TypeMX, dns.RcodeSuccess, true,
			[]string{"sim.test. 60 IN MX 10 intake.eu1.sim.test.", "sim.test. 60 IN MX 20 intake.us1.sim.test."}, nil},
		{"zone TXT", "sim.test.", dns.TypeTXT, dns.RcodeSuccess, true,
			[]string{`sim.test. 60 IN TXT "picket simulated platform" "not a real zone"`}, nil},
		{"line intake SRV", "_intake._tcp.eu1.sim.test.", dns.TypeSRV, dns.RcodeSuccess, true,
			[]string{"_intake._tcp.eu1.sim.test. 60 IN SRV 10 0 " + linePort + " intake.eu1.sim.test."}, nil},
		{"no SRV without a line intake", "_intake._tcp.us1.sim.test.", dns.TypeSRV, dns.RcodeNameError, true, nil, soa},
		{"known name, type absent", "intake.eu1.sim.test.", dns.TypeMX, dns.RcodeSuccess, true, nil, soa},
		{"empty non-terminal", "eu1.sim.test.", dns.TypeA, dns.RcodeSuccess, true, nil, soa},
		{"unknown name", "nope.sim.test.", dns.TypeA, dns.RcodeNameError, true, nil, soa},
		{"unknown region", "intake.nope.sim.test.", dns.TypeA, dns.RcodeNameError, true, nil, soa},
		{"outside the zone", "www.example.com.", dns.TypeA, dns.RcodeRefused, false, nil, nil},
		{"the zone's parent", "test.", dns.TypeNS, dns.RcodeRefused, false, nil, nil},
		{"a lookalike zone", "evilsim.test.", dns.TypeA, dns.RcodeRefused, false, nil, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range cases {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				r, err := query(p, network, tc.qname, tc.qtype, 2*time.Second)
				if err != nil {
					t.Fatalf("query: %v", err)
				}
				if r.Rcode != tc.rcode || r.Authoritative != tc.aa {
					t.Fatalf("expected rcode %s AA %v, got %s AA %v", dns.RcodeToString[tc.rcode], tc.aa, dns.RcodeToString[r.Rcode], r.Authoritative)
				}
				if got := rrText(r.Answer); !slices.Equal(got, tc.answer) {
					t.Errorf("answer: expected %q, got %q", tc.answer, got)
				}
				if got := rrText(r.Ns); !slices.Equal(got, tc.authority) {
					t.Errorf("authority: expected %q, got %q", tc.authority, got)
				}
			})
		}
	}
}

func TestDNSProtocolEdges(t *testing.T) {
	p := startPlatform(t, Options{DNSAddr: "127.0.0.1:0"})
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	t.Run("EDNS0 is echoed", func(t *testing.T) {
		m := new(dns.Msg).SetQuestion("intake.eu1.sim.test.", dns.TypeA)
		m.SetEdns0(1232, false)
		r, _, err := c.Exchange(m, p.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		if opt := r.IsEdns0(); opt == nil || opt.UDPSize() != 1232 {
			t.Errorf("expected an OPT record with size 1232, got %v", opt)
		}
	})
	t.Run("two questions are a format error", func(t *testing.T) {
		m := new(dns.Msg).SetQuestion("intake.eu1.sim.test.", dns.TypeA)
		m.Question = append(m.Question, dns.Question{Name: "intake.us1.sim.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
		r, _, err := c.Exchange(m, p.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("expected FORMERR, got %s", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("class CHAOS is refused", func(t *testing.T) {
		m := new(dns.Msg).SetQuestion("intake.eu1.sim.test.", dns.TypeA)
		m.Question[0].Qclass = dns.ClassCHAOS
		r, _, err := c.Exchange(m, p.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("expected REFUSED, got %s", dns.RcodeToString[r.Rcode])
		}
	})
}

const noAnswerTimeout = 300 * time.Millisecond

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// dnsOutcome is what a query under a fault should come to.
type dnsOutcome func(r *dns.Msg, err error, took time.Duration) error

func wantDNSTimeout(_ *dns.Msg, err error, _ time.Duration) error {
	if !isTimeout(err) {
		return errors.New("expected no answer (timeout), got " + errString(err))
	}
	return nil
}

// wantDNSClosed: over TCP, the connection closed at once, no timeout.
func wantDNSClosed(_ *dns.Msg, err error, took time.Duration) error {
	if err == nil || isTimeout(err) || took >= noAnswerTimeout {
		return errors.New("expected the connection closed without an answer, got " + errString(err) + " after " + took.String())
	}
	return nil
}

func wantRcode(rcode int) dnsOutcome {
	return func(r *dns.Msg, err error, _ time.Duration) error {
		if err != nil {
			return err
		}
		if r.Rcode != rcode {
			return errors.New("expected " + dns.RcodeToString[rcode] + ", got " + dns.RcodeToString[r.Rcode])
		}
		return nil
	}
}

func wantAnswer(want ...string) dnsOutcome {
	return func(r *dns.Msg, err error, _ time.Duration) error {
		if err != nil {
			return err
		}
		if got := rrText(r.Answer); !slices.Equal(got, want) || r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			return errors.New("expected authoritative " + strings.Join(want, "; ") + ", got " + r.String())
		}
		return nil
	}
}

func wantAfter(d time.Duration, then dnsOutcome) dnsOutcome {
	return func(r *dns.Msg, err error, took time.Duration) error {
		if took < d {
			return errors.New("expected an answer no sooner than " + d.String() + ", got one after " + took.String())
		}
		return then(r, err, took)
	}
}

// TestDNSFaults sets each region-wide fault on eu1 and checks eu1's names show
// it over UDP and TCP, while us1's names and the zone's own do not.
func TestDNSFaults(t *testing.T) {
	intakeA := wantAnswer("intake.eu1.sim.test. 60 IN A 127.0.0.1")
	cases := []struct {
		fault    Fault
		qname    string
		qtype    uint16
		udp, tcp dnsOutcome
	}{
		{Fault{Kind: FaultDown}, "intake.eu1.sim.test.", dns.TypeA, wantDNSTimeout, wantDNSClosed},
		{Fault{Kind: FaultHang}, "intake.eu1.sim.test.", dns.TypeA, wantDNSTimeout, wantDNSTimeout},
		{Fault{Kind: FaultError}, "api.eu1.sim.test.", dns.TypeA, wantRcode(dns.RcodeServerFailure), wantRcode(dns.RcodeServerFailure)},
		{Fault{Kind: FaultWrongBody}, "intake.eu1.sim.test.", dns.TypeA,
			wantAnswer("intake.eu1.sim.test. 60 IN A 192.0.2.1"), wantAnswer("intake.eu1.sim.test. 60 IN A 192.0.2.1")},
		{Fault{Kind: FaultWrongBody}, "api.eu1.sim.test.", dns.TypeAAAA,
			wantAnswer("api.eu1.sim.test. 60 IN CNAME intake.eu1.sim.test.", "intake.eu1.sim.test. 60 IN AAAA 2001:db8::1"),
			wantAnswer("api.eu1.sim.test. 60 IN CNAME intake.eu1.sim.test.", "intake.eu1.sim.test. 60 IN AAAA 2001:db8::1")},
		{Fault{Kind: FaultSlow, Delay: matrixSlowDelay}, "intake.eu1.sim.test.", dns.TypeA,
			wantAfter(matrixSlowDelay, intakeA), wantAfter(matrixSlowDelay, intakeA)},
		{Fault{Kind: FaultError, Delay: matrixSlowDelay}, "intake.eu1.sim.test.", dns.TypeA,
			wantAfter(matrixSlowDelay, wantRcode(dns.RcodeServerFailure)), wantAfter(matrixSlowDelay, wantRcode(dns.RcodeServerFailure))},
		{Fault{Kind: FaultStale}, "intake.eu1.sim.test.", dns.TypeA, intakeA, intakeA},
	}
	for _, tc := range cases {
		t.Run(string(tc.fault.Kind)+"/"+tc.qname+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			t.Parallel()
			p := startPlatform(t, Options{DNSAddr: "127.0.0.1:0"})
			p.SetFault("eu1", "", tc.fault)
			p.SetFault("us1", "logs", Fault{Kind: FaultDown}) // a product fault: DNS never sees it
			var wg sync.WaitGroup
			for network, want := range map[string]dnsOutcome{"udp": tc.udp, "tcp": tc.tcp} {
				wg.Go(func() {
					start := time.Now()
					r, err := query(p, network, tc.qname, tc.qtype, noAnswerTimeout)
					if bad := want(r, err, time.Since(start)); bad != nil {
						t.Errorf("%s: %v", network, bad)
					}
				})
				for _, other := range []string{"intake.us1.sim.test.", "sim.test."} {
					wg.Go(func() {
						r, err := query(p, network, other, dns.TypeA, time.Second)
						if err != nil || r.Rcode != dns.RcodeSuccess {
							t.Errorf("%s %s, not hit: expected NOERROR, got %v %v", network, other, r, err)
						}
					})
				}
			}
			wg.Wait()
		})
	}
}
