package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/picket-dev/picket/config"
)

// --- a real DNS server for the zone picket.test. ----------------------------------------

// dnsTestRecords is the zone the test server answers from. big.picket.test. has 40 TXT
// records (about 2.6 kB), more than a UDP answer of 1232 bytes can carry.
func dnsTestRecords(t testing.TB) []dns.RR {
	t.Helper()
	lines := []string{
		"www.picket.test. 300 IN A 192.0.2.10",
		"www.picket.test. 300 IN A 192.0.2.11",
		"www.picket.test. 300 IN AAAA 2001:db8::10",
		"alias.picket.test. 120 IN CNAME www.picket.test.",
		"picket.test. 3600 IN MX 10 mx1.picket.test.",
		"picket.test. 3600 IN MX 20 mx2.picket.test.",
		`picket.test. 300 IN TXT "v=spf1 " "include:_spf.picket.test -all"`,
		"_api._tcp.picket.test. 60 IN SRV 10 5 8443 api.picket.test.",
		"picket.test. 86400 IN NS ns1.picket.test.",
		"picket.test. 86400 IN NS ns2.picket.test.",
		`picket.test. 300 IN CAA 0 issue "letsencrypt.org"`,
		"short.picket.test. 5 IN A 192.0.2.20",
	}
	for i := range 40 {
		lines = append(lines, fmt.Sprintf(`big.picket.test. 300 IN TXT "record-%02d-%s"`, i, strings.Repeat("x", 40)))
	}
	rrs := make([]dns.RR, 0, len(lines))
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("record %q: %v", l, err)
		}
		rrs = append(rrs, rr)
	}
	return rrs
}

// dnsTestServer answers for picket.test. on one port over UDP and TCP (and, when
// started with a certificate, over TLS on another port). It answers authoritatively
// when the query does not ask for recursion, and as a cache (AA clear) when it does:
// that is how the tests see the RD flag arrive.
type dnsTestServer struct {
	Addr    string // 127.0.0.1:port, UDP and TCP
	TLSAddr string // 127.0.0.1:port of DNS over TLS; "" unless started with a certificate
	records []dns.RR
	udp     atomic.Int32 // queries received over UDP
	tcp     atomic.Int32 // over TCP or TLS
	lastRD  atomic.Bool
}

// startDNSTestServer serves UDP, and TCP on the same port when withTCP; with cert, it
// also serves DNS over TLS on a port of its own.
func startDNSTestServer(t testing.TB, withTCP bool, cert *tls.Certificate) *dnsTestServer {
	t.Helper()
	s := &dnsTestServer{records: dnsTestRecords(t)}
	pc, ln := dnsListenPair(t, withTCP)
	s.Addr = pc.LocalAddr().String()
	dnsServe(t, &dns.Server{PacketConn: pc, Handler: s})
	if ln != nil {
		dnsServe(t, &dns.Server{Listener: ln, Handler: s})
	}
	if cert != nil {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.TLSAddr = raw.Addr().String()
		tl := tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{*cert}})
		dnsServe(t, &dns.Server{Net: "tcp-tls", Listener: tl, Handler: s})
	}
	return s
}

// dnsListenPair opens UDP on 127.0.0.1 and, when withTCP, TCP on the same port, so a
// truncated UDP answer can be asked again over TCP as resolvers do.
func dnsListenPair(t testing.TB, withTCP bool) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if !withTCP {
			return pc, nil
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close() // the TCP side of this port is taken: try another
	}
	t.Fatal("no port on 127.0.0.1 free for both UDP and TCP in 20 tries")
	return nil, nil
}

// dnsServe runs srv until the test ends and waits for it (and its connections) to stop.
func dnsServe(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dns server did not start: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("dns server did not start within 5s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("dns server did not stop within 5s")
		}
	})
}

func (s *dnsTestServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	overUDP := w.LocalAddr().Network() == "udp"
	if overUDP {
		s.udp.Add(1)
	} else {
		s.tcp.Add(1)
	}
	s.lastRD.Store(req.RecursionDesired)
	reply := s.answer(req)
	if overUDP {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		reply.Truncate(size) // sets TC when the answer does not fit
	}
	w.WriteMsg(reply)
}

func (s *dnsTestServer) answer(req *dns.Msg) *dns.Msg {
	reply := new(dns.Msg)
	reply.SetReply(req)
	if len(req.Question) != 1 {
		return reply.SetRcode(req, dns.RcodeFormatError)
	}
	q := req.Question[0]
	reply.Authoritative = !req.RecursionDesired
	switch {
	case !dns.IsSubDomain("picket.test.", q.Name):
		return reply.SetRcode(req, dns.RcodeRefused)
	case q.Name == "broken.picket.test.":
		return reply.SetRcode(req, dns.RcodeServerFailure)
	}
	reply.Answer = s.lookup(q.Name, q.Qtype)
	if len(reply.Answer) == 0 && !s.exists(q.Name) {
		reply.Rcode = dns.RcodeNameError
	}
	return reply
}

// lookup returns name's records of qtype, following one CNAME as a server does.
func (s *dnsTestServer) lookup(name string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range s.records {
		h := rr.Header()
		if !strings.EqualFold(h.Name, name) {
			continue
		}
		switch {
		case h.Rrtype == qtype:
			out = append(out, dns.Copy(rr))
		case h.Rrtype == dns.TypeCNAME:
			out = append(out, dns.Copy(rr))
			out = append(out, s.lookup(rr.(*dns.CNAME).Target, qtype)...)
		}
	}
	return out
}

func (s *dnsTestServer) exists(name string) bool {
	return slices.ContainsFunc(s.records, func(rr dns.RR) bool { return strings.EqualFold(rr.Header().Name, name) })
}

// dnsSilentServer reads UDP queries and never answers.
func dnsSilentServer(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return // closed at cleanup
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// dnsClosedPort returns an address on 127.0.0.1 where nothing listens on network.
func dnsClosedPort(t testing.TB, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		pc.Close()
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// --- running one dns step -----------------------------------------------------------

// dnsStep loads a journey whose one step is {name: q, dns: {dnsYAML}, extra}, in a
// region whose var api is the zone (picket.test), and returns its target and step.
func dnsStep(t testing.TB, timeout time.Duration, dnsYAML, extra string) (*config.Target, *config.Step) {
	t.Helper()
	if extra != "" {
		extra = ", " + extra
	}
	tg := targetFor(t, "picket.test", fmt.Sprintf(`[{name: j, timeout: %s, steps: [{name: q, dns: {%s}%s}]}]`, timeout, dnsYAML, extra))
	return tg, tg.Steps[0]
}

// dnsProbe runs the step once with the prober and judges it as the journey does (the
// default expectation, then expect:). ctx bounds the attempt like the journey's timeout.
func dnsProbe(t testing.TB, timeout time.Duration, dnsYAML, extra string) (*Exchange, error) {
	t.Helper()
	tg, step := dnsStep(t, timeout, dnsYAML, extra)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	data := tg.TemplateData(map[string]string{}, map[string]string{})
	ex := NewDNSProber().Probe(ctx, step, data)
	if ex.Err != nil {
		return ex, ex.Err
	}
	return ex, evaluate(step, &ex.Obs, data)
}

// --- success ------------------------------------------------------------------------

func TestDNSAnswersEachRecordType(t *testing.T) {
	srv := startDNSTestServer(t, true, nil)
	cases := []struct {
		name, qname, qtype string
		answers            []string
		ttls               []uint32
	}{
		{"A", "www.picket.test", "A", []string{"192.0.2.10", "192.0.2.11"}, []uint32{300, 300}},
		{"AAAA", "www.picket.test", "AAAA", []string{"2001:db8::10"}, []uint32{300}},
		{"CNAME", "alias.picket.test", "CNAME", []string{"www.picket.test."}, []uint32{120}},
		{"A through a CNAME", "alias.picket.test", "A", []string{"www.picket.test.", "192.0.2.10", "192.0.2.11"}, []uint32{120, 300, 300}},
		{"MX", "picket.test", "MX", []string{"10 mx1.picket.test.", "20 mx2.picket.test."}, []uint32{3600, 3600}},
		{"TXT strings joined", "picket.test", "TXT", []string{"v=spf1 include:_spf.picket.test -all"}, []uint32{300}},
		{"SRV", "_api._tcp.picket.test", "SRV", []string{"10 5 8443 api.picket.test."}, []uint32{60}},
		{"NS", "picket.test", "NS", []string{"ns1.picket.test.", "ns2.picket.test."}, []uint32{86400, 86400}},
		{"CAA as its zone-file text", "picket.test", "CAA", []string{`0 issue "letsencrypt.org"`}, []uint32{300}},
		{"a name given fully qualified", "www.picket.test.", "AAAA", []string{"2001:db8::10"}, []uint32{300}},
		{"NODATA is NOERROR with no answers", "short.picket.test", "AAAA", []string{}, []uint32{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, name: %q, type: %s", srv.Addr, tc.qname, tc.qtype), "")
			if err != nil {
				t.Fatalf("want up, got %v", err)
			}
			d := ex.Obs.DNS
			if d.Rcode != "NOERROR" || !slices.Equal(d.Answers, tc.answers) || !slices.Equal(d.TTLs, tc.ttls) {
				t.Errorf("rcode %s, answers %q, ttls %v\nwant NOERROR, %q, %v", d.Rcode, d.Answers, d.TTLs, tc.answers, tc.ttls)
			}
			if body := string(ex.Obs.Body); body != strings.Join(tc.answers, "\n") {
				t.Errorf("body %q, want the answers one per line", body)
			}
			if got, want := ex.Info["answers"], strings.Join(tc.answers, ", "); got != want {
				t.Errorf("info answers %q, want %q", got, want)
			}
		})
	}
}

func TestDNSReportsFactsAndPhases(t *testing.T) {
	srv := startDNSTestServer(t, true, nil)
	ex, err := dnsProbe(t, 2*time.Second, fmt.Sprintf(`server: %q, name: "www.{{.region.api}}", recursion: false`, srv.Addr), "")
	if err != nil {
		t.Fatalf("want up, got %v", err)
	}
	want := map[string]string{
		"rcode": "NOERROR", "answers": "192.0.2.10, 192.0.2.11", "server": srv.Addr, "transport": "udp",
		"authoritative": "true", "question": "www.picket.test. A",
	}
	for k, v := range want {
		if ex.Info[k] != v {
			t.Errorf("info %s = %q, want %q", k, ex.Info[k], v)
		}
	}
	if len(ex.Info) != len(want) {
		t.Errorf("info %v has keys beyond %v", ex.Info, want)
	}
	if srv.lastRD.Load() {
		t.Error("the server saw RD set; recursion: false wants it clear")
	}
	ph := ex.Phases
	if ph.Processing <= 0 || ph.DNS != 0 || ph.TLS != 0 {
		t.Errorf("processing %v, dns %v, tls %v: want processing > 0, no dns (IP literal), no tls", ph.Processing, ph.DNS, ph.TLS)
	}
	if ex.Obs.Latency < ph.Processing+ph.Connect {
		t.Errorf("latency %v < connect %v + processing %v", ex.Obs.Latency, ph.Connect, ph.Processing)
	}
}

func TestDNSInfoCutsLongAnswers(t *testing.T) {
	srv := startDNSTestServer(t, true, nil)
	ex, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, name: big.picket.test, type: TXT, transport: tcp", srv.Addr), "")
	if err != nil {
		t.Fatalf("want up, got %v", err)
	}
	got := ex.Info["answers"]
	if len(got) > dnsInfoAnswersLen || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "record-00-") {
		t.Errorf("info answers (%d bytes) %q: want at most %d bytes, cut with …", len(got), got, dnsInfoAnswersLen)
	}
	if n := len(ex.Obs.DNS.Answers); n != 40 {
		t.Errorf("%d answers, want all 40 (only Info is cut)", n)
	}
}

func TestDNSServerGivenByHostName(t *testing.T) {
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), "localhost")
	if err != nil || len(ips) == 0 || !ips[0].IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Skipf("localhost does not resolve to 127.0.0.1 first here (%v, %v)", ips, err)
	}
	srv := startDNSTestServer(t, true, nil)
	_, port, _ := net.SplitHostPort(srv.Addr)
	server := net.JoinHostPort("localhost", port)
	ex, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, name: www.picket.test", server), "")
	if err != nil {
		t.Fatalf("want up, got %v", err)
	}
	if ex.Phases.DNS <= 0 {
		t.Errorf("dns phase %v, want > 0 for a server given by name", ex.Phases.DNS)
	}
	if want := server + " (" + srv.Addr + ")"; ex.Info["server"] != want {
		t.Errorf("info server %q, want %q", ex.Info["server"], want)
	}
}

// --- expectations -------------------------------------------------------------------

func TestDNSExpectationsJudgeTheAnswer(t *testing.T) {
	srv := startDNSTestServer(t, true, nil)
	cases := []struct {
		name, query, expect string
		want                string // "" for up
	}{
		{"no expect wants NOERROR", "name: nope.picket.test", "", "rcode NXDOMAIN, want NOERROR"},
		{"rcode NXDOMAIN expected", "name: nope.picket.test", "rcode: NXDOMAIN", ""},
		{"rcode NOERROR expected, NXDOMAIN came", "name: nope.picket.test", "rcode: noerror", "rcode NXDOMAIN, want NOERROR"},
		{"SERVFAIL", "name: broken.picket.test", "", "rcode SERVFAIL, want NOERROR"},
		{"SERVFAIL expected", "name: broken.picket.test", "rcode: SERVFAIL", ""},
		{"REFUSED outside the zone", "name: example.com", "", "rcode REFUSED, want NOERROR"},
		{"answers regex matches one", "name: www.picket.test", `answers: ['^192\.0\.2\.11$']`, ""},
		{"answers regex matches none", "name: www.picket.test", `answers: ['^10\.']`, "no answer matches `^10\\.` (answers: [192.0.2.10, 192.0.2.11])"},
		{"answers regex over MX", "name: picket.test, type: MX", `answers: ['^10 mx1\.']`, ""},
		{"answers_exact in any order", "name: www.picket.test", "answers_exact: [192.0.2.11, 192.0.2.10]", ""},
		{"answers_exact with one missing", "name: www.picket.test", "answers_exact: [192.0.2.10]", "answers [192.0.2.10, 192.0.2.11], want exactly [192.0.2.10]"},
		{"answers_exact against NXDOMAIN", "name: nope.picket.test", "{rcode: NXDOMAIN, answers_exact: [192.0.2.10]}", "answers none, want exactly [192.0.2.10]"},
		{"min_ttl held", "name: www.picket.test", "min_ttl: 5m", ""},
		{"min_ttl not held", "name: short.picket.test", "min_ttl: 1m", "TTL 5s of 192.0.2.20, want at least 1m0s"},
		{"authoritative true when asked without recursion", "{name: www.picket.test, recursion: false}", "authoritative: true", ""},
		{"authoritative true, a cache answered", "name: www.picket.test", "authoritative: true", "authoritative false, want true"},
		{"authoritative false", "name: www.picket.test", "authoritative: false", ""},
		{"body_contains sees the answers", "name: picket.test, type: TXT", "body_contains: include:_spf", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			query := strings.Trim(tc.query, "{}")
			extra := ""
			if tc.expect != "" {
				extra = "expect: {" + strings.Trim(tc.expect, "{}") + "}"
			}
			_, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, %s", srv.Addr, query), extra)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("want up, got %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

// --- transports ---------------------------------------------------------------------

func TestDNSTransportIsTheOneConfigured(t *testing.T) {
	for _, tc := range []struct {
		transport        string
		wantUDP, wantTCP int32
	}{{"udp", 1, 0}, {"tcp", 0, 1}} {
		t.Run(tc.transport, func(t *testing.T) {
			srv := startDNSTestServer(t, true, nil)
			ex, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, name: www.picket.test, transport: %s", srv.Addr, tc.transport), "expect: {answers_exact: [192.0.2.10, 192.0.2.11]}")
			if err != nil {
				t.Fatalf("want up, got %v", err)
			}
			if u, c := srv.udp.Load(), srv.tcp.Load(); u != tc.wantUDP || c != tc.wantTCP {
				t.Errorf("server saw %d UDP and %d TCP queries, want %d and %d", u, c, tc.wantUDP, tc.wantTCP)
			}
			if !srv.lastRD.Load() || ex.Info["authoritative"] != "false" {
				t.Errorf("RD seen %v, authoritative %s: want RD set by default (and so a cache's answer)", srv.lastRD.Load(), ex.Info["authoritative"])
			}
			if ex.Info["transport"] != tc.transport {
				t.Errorf("info transport %q, want %q", ex.Info["transport"], tc.transport)
			}
		})
	}
}

func TestDNSTruncatedUDPAnswerIsAskedAgainOverTCP(t *testing.T) {
	srv := startDNSTestServer(t, true, nil)
	ex, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, name: big.picket.test, type: TXT", srv.Addr), `expect: {answers: ["^record-39-x+$"]}`)
	if err != nil {
		t.Fatalf("want up, got %v", err)
	}
	if n := len(ex.Obs.DNS.Answers); n != 40 {
		t.Errorf("%d answers, want all 40 from TCP", n)
	}
	if u, c := srv.udp.Load(), srv.tcp.Load(); u != 1 || c != 1 {
		t.Errorf("server saw %d UDP and %d TCP queries, want 1 and 1", u, c)
	}
	if ex.Info["transport"] != "udp, then tcp" || !strings.Contains(ex.Info["truncated"], "asked again over TCP") {
		t.Errorf("info %v does not say the answer was asked again over TCP", ex.Info)
	}

	t.Run("no TCP on the server", func(t *testing.T) {
		udpOnly := startDNSTestServer(t, false, nil)
		_, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, name: big.picket.test, type: TXT", udpOnly.Addr), "")
		want := "UDP answer truncated (TC bit), retry over TCP: dial: connect: connection refused"
		if err == nil || err.Error() != want {
			t.Errorf("got %v\nwant %q", err, want)
		}
	})
}

func TestDNSOverTLS(t *testing.T) {
	now := time.Now()
	ca, caKey, _ := makeCert(t, now.Add(-time.Hour), now.Add(48*time.Hour), true, nil, nil)
	leafCert, _, leaf := makeCert(t, now.Add(-time.Hour), now.Add(24*time.Hour), false, ca, caKey)
	_, _, expired := makeCert(t, now.Add(-48*time.Hour), now.Add(-time.Hour), false, ca, caKey)
	caFile := writeCAFile(t, ca)
	srv := startDNSTestServer(t, true, &leaf)
	old := startDNSTestServer(t, true, &expired)
	cases := []struct {
		name, server, tls string
		want              string // "" for up
	}{
		{"CA given", srv.TLSAddr, fmt.Sprintf("{ca_file: %q}", caFile), ""},
		{"server_name the certificate names", srv.TLSAddr, fmt.Sprintf("{ca_file: %q, server_name: picket.test}", caFile), ""},
		{"CA not given", srv.TLSAddr, "{}", "TLS handshake: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"wrong server_name", srv.TLSAddr, fmt.Sprintf("{ca_file: %q, server_name: other.test}", caFile), "TLS handshake: tls: failed to verify certificate: x509: certificate is valid for picket.test, not other.test"},
		{"expired certificate", old.TLSAddr, fmt.Sprintf("{ca_file: %q}", caFile), "x509: certificate has expired or is not yet valid"},
		{"nothing listening", dnsClosedPort(t, "tcp"), fmt.Sprintf("{ca_file: %q}", caFile), "dial: connect: connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := dnsProbe(t, 2*time.Second, fmt.Sprintf("server: %q, name: www.picket.test, transport: tls, tls_config: %s", tc.server, tc.tls), "")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got %v\nwant an error saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("want up, got %v", err)
			}
			if ex.Phases.TLS <= 0 || ex.Phases.Connect <= 0 || ex.Phases.Processing <= 0 {
				t.Errorf("phases %+v: want connect, tls and processing > 0", ex.Phases)
			}
			if ex.Obs.TLS == nil || ex.Obs.TLS.Version != "1.3" || ex.Info["tls_version"] != "1.3" || ex.Info["transport"] != "tls" {
				t.Errorf("tls %+v, info %v: want TLS 1.3 over transport tls", ex.Obs.TLS, ex.Info)
			}
			if !ex.Cert.Equal(leafCert.NotAfter) || len(ex.Obs.Certs) != 1 {
				t.Errorf("cert expiry %v (%d certs), want the leaf's %v", ex.Cert, len(ex.Obs.Certs), leafCert.NotAfter)
			}
			if srv.tcp.Load() == 0 {
				t.Error("the TLS server saw no query")
			}
		})
	}
}

// --- failures -----------------------------------------------------------------------

func TestDNSFailuresFailFastWithAReason(t *testing.T) {
	cases := []struct {
		name    string
		timeout time.Duration
		query   func(t *testing.T) string // the dns: mapping's fields
		want    string
	}{
		{
			name: "server never answers over UDP", timeout: 300 * time.Millisecond,
			query: func(t *testing.T) string { return fmt.Sprintf("server: %q, name: www.picket.test", dnsSilentServer(t)) },
			want:  "timeout: no complete answer before the deadline (context deadline exceeded)",
		},
		{
			name: "server accepts TCP and never answers", timeout: 300 * time.Millisecond,
			query: func(t *testing.T) string {
				addr := strings.TrimPrefix(rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) }), "http://")
				return fmt.Sprintf("server: %q, name: www.picket.test, transport: tcp", addr)
			},
			want: "timeout: no complete answer before the deadline (context deadline exceeded)",
		},
		{
			name: "TLS server that never finishes the handshake", timeout: 300 * time.Millisecond,
			query: func(t *testing.T) string {
				addr := strings.TrimPrefix(rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) }), "http://")
				return fmt.Sprintf("server: %q, name: www.picket.test, transport: tls", addr)
			},
			want: "TLS handshake: timeout: no complete answer before the deadline (context deadline exceeded)",
		},
		{
			name: "TCP refused", timeout: 2 * time.Second,
			query: func(t *testing.T) string {
				return fmt.Sprintf("server: %q, name: www.picket.test, transport: tcp", dnsClosedPort(t, "tcp"))
			},
			want: "dial: connect: connection refused",
		},
		{
			name: "UDP refused (ICMP port unreachable)", timeout: 2 * time.Second,
			query: func(t *testing.T) string {
				return fmt.Sprintf("server: %q, name: www.picket.test", dnsClosedPort(t, "udp"))
			},
			want: "read: connection refused",
		},
		{
			name: "TCP closed before an answer", timeout: 2 * time.Second,
			query: func(t *testing.T) string {
				addr := strings.TrimPrefix(rawServer(t, func(c net.Conn) { c.Read(make([]byte, 512)) }), "http://")
				return fmt.Sprintf("server: %q, name: www.picket.test, transport: tcp", addr)
			},
			want: "connection closed by the server before a complete answer: EOF",
		},
		{
			name: "an answer of garbage", timeout: 2 * time.Second,
			query: func(t *testing.T) string {
				addr := strings.TrimPrefix(rawServer(t, func(c net.Conn) {
					c.Read(make([]byte, 512))
					c.Write([]byte{0, 4, 0xde, 0xad, 0xbe, 0xef})
				}), "http://")
				return fmt.Sprintf("server: %q, name: www.picket.test, transport: tcp", addr)
			},
			want: "malformed answer: dns: short read",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			ex, err := dnsProbe(t, tc.timeout, tc.query(t), "")
			elapsed := time.Since(began)
			t.Logf("%v: %v", elapsed.Round(time.Millisecond), err)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
			if ex.Obs.DNS != nil {
				t.Errorf("an exchange that failed observed %+v", ex.Obs.DNS)
			}
			if elapsed > tc.timeout+500*time.Millisecond {
				t.Errorf("took %v, want within the timeout %v + 500ms", elapsed, tc.timeout)
			}
		})
	}
}

func TestDNSCancelStopsAWaitingProbe(t *testing.T) {
	_, step := dnsStep(t, 10*time.Second, fmt.Sprintf("server: %q, name: www.picket.test", dnsSilentServer(t)), "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	ex := NewDNSProber().Probe(ctx, step, nil)
	if elapsed := time.Since(began); elapsed > 2*time.Second {
		t.Errorf("took %v after a cancel at 100ms", elapsed)
	}
	if ex.Err == nil || !errors.Is(ex.Err, context.Canceled) || !strings.HasPrefix(ex.Err.Error(), "cancelled") {
		t.Errorf("err %v, want cancelled", ex.Err)
	}
}

// --- bad config ---------------------------------------------------------------------

func TestDNSBadConfigIsALoadError(t *testing.T) {
	cases := []struct{ dns, want string }{
		{"name: www.picket.test", "dns.server is required"},
		{"server: 127.0.0.1:53", "dns.name is required"},
		{"server: 127.0.0.1:53, name: x.test, type: BOGUS", `dns type "BOGUS": want one of`},
		{"server: 127.0.0.1:53, name: x.test, transport: quic", `dns transport "quic": want udp, tcp or tls`},
		{"server: 127.0.0.1:53, name: x.test, colour: red", "colour"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			src := dedent(fmt.Sprintf(`
				regions: {r1: {vars: {api: x}}}
				products:
				  - name: p
				    journeys: [{name: j, timeout: 1s, steps: [{name: q, dns: {%s}}]}]
			`, tc.dns))
			_, err := config.Parse("test.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a load error saying %q", err, tc.want)
			}
		})
	}
}

func TestDNSBadRenderedNameFailsWithoutAQuery(t *testing.T) {
	srv := startDNSTestServer(t, true, nil)
	long := strings.Repeat("a", 64)
	_, err := dnsProbe(t, 2*time.Second, fmt.Sprintf(`server: %q, name: "%s.{{.region.api}}"`, srv.Addr, long), "")
	want := fmt.Sprintf("name %q is not a domain name (want labels of 1 to 63 bytes, 255 in all)", long+".picket.test")
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %q", err, want)
	}
	if n := srv.udp.Load() + srv.tcp.Load(); n != 0 {
		t.Errorf("server saw %d queries, want none", n)
	}
}

// --- in a journey -------------------------------------------------------------------

// dnsSkipUnlessWired skips journey tests until the Runner dispatches dns steps.
func dnsSkipUnlessWired(t *testing.T) {
	r := NewRunner()
	defer r.Close()
	if r.probers["dns"] == nil {
		t.Skip("wired by the lead: the Runner has no dns prober yet")
	}
}

// TestDNSStepsInAJourney runs dns steps through the Runner: the default expectation,
// Info and phases in the step result, and a value extracted from one answer used by the
// next step's name.
func TestDNSStepsInAJourney(t *testing.T) {
	dnsSkipUnlessWired(t)
	srv := startDNSTestServer(t, true, nil)
	tg := targetFor(t, "picket.test", fmt.Sprintf(`
		- name: j
		  timeout: 2s
		  steps:
		    - name: alias
		      dns: {server: %[1]q, name: "alias.{{.region.api}}", type: CNAME}
		      extract: {target: {regex: '(\S+)'}}
		    - name: target
		      dns: {server: %[1]q, name: "{{.vars.target}}"}
		      expect: {answers_exact: [192.0.2.10, 192.0.2.11], min_ttl: 1m}
		    - name: gone
		      dns: {server: %[1]q, name: "nope.{{.region.api}}"}
	`, srv.Addr))
	res := newRunner(t).Run(context.Background(), tg)
	if want := "step gone: rcode NXDOMAIN, want NOERROR"; res.Status != StatusDown || res.Error != want {
		t.Fatalf("got %s %q, want down %q", res.Status, res.Error, want)
	}
	if len(res.Steps) != 3 || res.Steps[0].Status != StatusUp || res.Steps[1].Status != StatusUp {
		t.Fatalf("steps %+v: want alias and target up", res.Steps)
	}
	st := res.Steps[1]
	if st.Kind != "dns" || st.Info["answers"] != "192.0.2.10, 192.0.2.11" || st.Info["question"] != "www.picket.test. A" {
		t.Errorf("step target: kind %s, info %v", st.Kind, st.Info)
	}
	if st.Phases.Processing <= 0 {
		t.Errorf("step target: processing %v, want > 0", st.Phases.Processing)
	}
	if res.Steps[2].Info["rcode"] != "NXDOMAIN" {
		t.Errorf("step gone: info %v, want rcode NXDOMAIN", res.Steps[2].Info)
	}
}

func TestDNSTimeoutInAJourney(t *testing.T) {
	dnsSkipUnlessWired(t)
	tg := targetFor(t, "x", fmt.Sprintf(`[{name: j, timeout: 2s, steps: [{name: q, timeout: 300ms, dns: {server: %q, name: www.picket.test}}]}]`, dnsSilentServer(t)))
	began := time.Now()
	res := newRunner(t).Run(context.Background(), tg)
	if elapsed := time.Since(began); elapsed > 800*time.Millisecond {
		t.Errorf("took %v, want about the step's 300ms", elapsed)
	}
	if want := "step q: timeout: no complete answer before the deadline (context deadline exceeded)"; res.Error != want {
		t.Errorf("error %q, want %q", res.Error, want)
	}
}
