package probetest

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// The DNS server is authoritative for sim.test. and nothing else:
//
//	sim.test.                  SOA, NS ns.sim.test., MX 10,20.. intake.<region>, TXT
//	ns.sim.test.               A 127.0.0.1, AAAA ::1
//	intake.<region>.sim.test.  A 127.0.0.1, AAAA ::1
//	api.<region>.sim.test.     CNAME intake.<region>.sim.test.
//	_intake._tcp.<region>...   SRV to the region's line intake port (when it has one)
//
// every record with TTL 60 and AA set; unknown names under sim.test. are
// NXDOMAIN, names elsewhere REFUSED. Region-wide faults apply to the region's
// names: down and hang never answer (down also closes a TCP connection), error
// answers SERVFAIL, wrong_body points intake at TEST-NET addresses, slow answers
// after the delay.
const (
	dnsTTL = 60
	// wrongIPv4 and wrongIPv6 are documentation addresses (RFC 5737, RFC 3849):
	// a probe that follows a wrong answer contacts nothing.
	wrongIPv4 = "192.0.2.1"
	wrongIPv6 = "2001:db8::1"
	// maxCNAMEHops bounds following CNAMEs inside the zone.
	maxCNAMEHops = 8
	// maxDNSUDPSize is the largest answer offered over UDP with EDNS0.
	maxDNSUDPSize = 4096
)

// dnsZone is the zone's data, fixed once built.
type dnsZone struct {
	origin  string              // "sim.test."
	records map[string][]dns.RR // by canonical owner name
	wrong   map[string][]dns.RR // what wrong_body serves instead, by owner
	names   map[string]bool     // owners and their ancestors: what is not NXDOMAIN
	regions map[string]string   // "<region>.sim.test." -> region
	soa     dns.RR
}

// newDNSZone builds the zone; linePorts has the line intake port of each region
// that has one.
func newDNSZone(regions []string, linePorts map[string]string) (*dnsZone, error) {
	z := &dnsZone{
		origin:  dns.Fqdn(zone),
		records: map[string][]dns.RR{},
		wrong:   map[string][]dns.RR{},
		names:   map[string]bool{},
		regions: map[string]string{},
	}
	apex := z.origin
	lines := []string{
		apex + " SOA ns." + apex + " hostmaster." + apex + " 1 3600 600 86400 60",
		apex + " NS ns." + apex,
		apex + ` TXT "picket simulated platform" "not a real zone"`,
		"ns." + apex + " A 127.0.0.1",
		"ns." + apex + " AAAA ::1",
	}
	var wrong []string
	for i, r := range regions {
		intake, api := dns.Fqdn(intakeHost(r)), dns.Fqdn(apiHost(r))
		z.regions[dns.CanonicalName(r+"."+apex)] = r
		lines = append(lines,
			fmt.Sprintf("%s MX %d %s", apex, 10*(i+1), intake),
			intake+" A 127.0.0.1", intake+" AAAA ::1",
			api+" CNAME "+intake)
		if port, ok := linePorts[r]; ok {
			lines = append(lines, fmt.Sprintf("_intake._tcp.%s.%s SRV 10 0 %s %s", r, apex, port, intake))
		}
		wrong = append(wrong, intake+" A "+wrongIPv4, intake+" AAAA "+wrongIPv6)
	}
	if err := z.add(z.records, lines); err != nil {
		return nil, err
	}
	if err := z.add(z.wrong, wrong); err != nil {
		return nil, err
	}
	z.soa = z.records[apex][0]
	return z, nil
}

// add parses each line as a record in master-file form, with the zone's TTL.
func (z *dnsZone) add(into map[string][]dns.RR, lines []string) error {
	for _, line := range lines {
		rr, err := dns.NewRR(fmt.Sprintf("$TTL %d\n%s", dnsTTL, line))
		if err != nil {
			return fmt.Errorf("probetest: DNS record %q (check the region names): %w", line, err)
		}
		owner := dns.CanonicalName(rr.Header().Name)
		into[owner] = append(into[owner], rr)
		for name := owner; dns.IsSubDomain(z.origin, name); name = parentName(name) {
			z.names[name] = true
		}
	}
	return nil
}

// parentName drops the first label; the root's parent is "" (never in the zone).
func parentName(name string) string {
	if name == "." {
		return ""
	}
	_, rest, _ := strings.Cut(name, ".")
	if rest == "" {
		return "."
	}
	return rest
}

// regionOf is the region whose names include name, or "" for the zone's own names.
func (z *dnsZone) regionOf(name string) string {
	for n := name; n != "" && n != z.origin; n = parentName(n) {
		if r, ok := z.regions[n]; ok {
			return r
		}
	}
	return ""
}

// answer is the authoritative reply to a question about name in the zone.
func (z *dnsZone) answer(req *dns.Msg, name string, qtype uint16, wrong bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if !z.names[name] {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa}
		return m
	}
	m.Answer = z.lookup(name, qtype, wrong)
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{z.soa} // NODATA: the name exists, the type does not
	}
	return m
}

// lookup finds name's records of qtype, following CNAMEs inside the zone as an
// authoritative server does.
func (z *dnsZone) lookup(name string, qtype uint16, wrong bool) []dns.RR {
	var out []dns.RR
	for range maxCNAMEHops {
		rrs := z.at(name, wrong)
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			if qtype == dns.TypeANY || rr.Header().Rrtype == qtype {
				out = append(out, rr)
				found = true
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if found || cname == nil {
			return out
		}
		out = append(out, cname)
		name = dns.CanonicalName(cname.Target)
	}
	return out
}

// at is the records of owner name; wrong_body swaps those wrong has.
func (z *dnsZone) at(name string, wrong bool) []dns.RR {
	if !wrong {
		return z.records[name]
	}
	swapped := z.wrong[name]
	if swapped == nil {
		return z.records[name]
	}
	var out []dns.RR
	for _, rr := range z.records[name] {
		if t := rr.Header().Rrtype; t != dns.TypeA && t != dns.TypeAAAA {
			out = append(out, rr)
		}
	}
	return append(out, swapped...)
}

// dnsServer serves the zone on UDP and TCP at one address.
type dnsServer struct {
	p       *Platform
	zone    *dnsZone
	addr    string
	started []*dns.Server // only started servers can be shut down
}

// ServeDNS answers one query; the faults of the region the name belongs to act first.
func (d *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		d.write(w, req, new(dns.Msg).SetRcode(req, dns.RcodeFormatError))
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	if q.Qclass != dns.ClassINET || !dns.IsSubDomain(d.zone.origin, name) {
		d.write(w, req, new(dns.Msg).SetRcode(req, dns.RcodeRefused))
		return
	}
	var f Fault
	if region := d.zone.regionOf(name); region != "" {
		f, _ = d.p.faultTable().resolve(region, "")
	}
	if f.Kind == FaultHang {
		return // no answer; a TCP connection stays open until its idle timeout
	}
	delay := f.Delay
	if f.Kind == FaultSlow && delay == 0 {
		delay = defaultSlowDelay
	}
	if !pause(d.p.ctx, delay) {
		return
	}
	switch f.Kind {
	case FaultDown:
		_ = w.Close() // closes a TCP connection; over UDP the query is just dropped
	case FaultError:
		d.write(w, req, new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
	default:
		d.write(w, req, d.zone.answer(req, name, q.Qtype, f.Kind == FaultWrongBody))
	}
}

// write echoes EDNS0 and truncates to what a UDP client can take.
func (d *dnsServer) write(w dns.ResponseWriter, req, m *dns.Msg) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxDNSUDPSize)
		m.SetEdns0(uint16(size), false)
	}
	if w.LocalAddr().Network() == "udp" {
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil {
		d.p.logger.Warn("probetest: DNS answer not sent", "err", err)
	}
}

// listenDNS opens TCP and UDP on the same address. With port 0 the kernel picks
// the TCP port, which UDP may already have in use: a few tries find a free pair.
func listenDNS(addr string) (net.Listener, net.PacketConn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("expected host:port, got %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 10
	}
	var errs []error
	for range tries {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		errs = append(errs, err)
	}
	return nil, nil, errors.Join(errs...)
}

// start serves on both sockets and returns once both serve, so that Close can
// always shut them down.
func (d *dnsServer) start(ln net.Listener, pc net.PacketConn) error {
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: d}, {Listener: ln, Handler: d}} {
		if err := d.serve(srv); err != nil {
			ln.Close()
			pc.Close()
			return fmt.Errorf("probetest: DNS server on %s: %w", d.addr, err)
		}
		d.started = append(d.started, srv)
	}
	return nil
}

func (d *dnsServer) serve(srv *dns.Server) error {
	serving := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(serving) }
	failed := make(chan error, 1)
	d.p.serving.Add(1)
	go func() {
		defer d.p.serving.Done()
		if err := srv.ActivateAndServe(); err != nil {
			failed <- err
			d.p.logger.Error("probetest: DNS server stopped", "addr", d.addr, "err", err)
		}
	}()
	select {
	case <-serving:
		return nil
	case err := <-failed:
		return err
	}
}

// shutdown stops both servers; it returns once their handlers have, which the
// platform's cancelled context makes quick.
func (d *dnsServer) shutdown() error {
	var errs []error
	for _, srv := range d.started {
		errs = append(errs, srv.Shutdown())
	}
	return errors.Join(errs...)
}
