package probetest

import (
	"fmt"
	"net"
)

// listenSet is every socket the platform serves on, opened before anything
// serves so that a busy port fails Start cleanly.
type listenSet struct {
	http   map[string]net.Listener // by region; "" is the control API
	tls    map[string]net.Listener // by region, for Options.TLSAddrs
	line   map[string]net.Listener // by region, for Options.TCPAddrs
	grpc   map[string]net.Listener // by region, for Options.GRPCAddrs
	dnsTCP net.Listener            // nil without Options.DNSAddr
	dnsUDP net.PacketConn
}

func listenAll(opts Options) (*listenSet, error) {
	ls := &listenSet{http: map[string]net.Listener{}, tls: map[string]net.Listener{}, line: map[string]net.Listener{}, grpc: map[string]net.Listener{}}
	err := ls.listen("control API", opts.ControlAddr, ls.http, "")
	for _, r := range opts.Regions {
		if err != nil {
			break
		}
		err = ls.listen("region "+r, opts.Addrs[r], ls.http, r)
		if addr, ok := opts.TLSAddrs[r]; ok && err == nil {
			err = ls.listen("TLS of region "+r, addr, ls.tls, r)
		}
		if addr, ok := opts.TCPAddrs[r]; ok && err == nil {
			err = ls.listen("line intake of region "+r, addr, ls.line, r)
		}
		if addr, ok := opts.GRPCAddrs[r]; ok && err == nil {
			err = ls.listen("gRPC health of region "+r, addr, ls.grpc, r)
		}
	}
	if opts.DNSAddr != "" && err == nil {
		if ls.dnsTCP, ls.dnsUDP, err = listenDNS(opts.DNSAddr); err != nil {
			err = fmt.Errorf("probetest: listen for DNS on %s: %w", opts.DNSAddr, err)
		}
	}
	if err != nil {
		ls.close()
		return nil, err
	}
	return ls, nil
}

// listen opens addr ("" for defaultAddr) as into[key]; what names it in errors.
func (ls *listenSet) listen(what, addr string, into map[string]net.Listener, key string) error {
	if addr == "" {
		addr = defaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("probetest: listen for %s on %s: %w", what, addr, err)
	}
	into[key] = ln
	return nil
}

// close closes what is open, when Start gives up before serving.
func (ls *listenSet) close() {
	for _, group := range []map[string]net.Listener{ls.http, ls.tls, ls.line, ls.grpc} {
		for _, ln := range group {
			ln.Close()
		}
	}
	if ls.dnsTCP != nil {
		ls.dnsTCP.Close()
		ls.dnsUDP.Close()
	}
}
