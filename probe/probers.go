package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/tmpl"
)

// Prober runs one attempt of one kind of step; ctx carries the deadline. What it saw
// goes into the Exchange's Observation, which the journey judges the same way for
// every kind.
type Prober interface {
	Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange
}

var _ Prober = (*HTTPProber)(nil)

// buildProbers maps step kinds to their probers (one file per protocol).
func (r *Runner) buildProbers() map[string]Prober {
	return map[string]Prober{
		"http":    r.HTTP,
		"dns":     NewDNSProber(),
		"tcp":     NewTCPProber(),
		"tls":     NewTLSProber(),
		"grpc":    NewGRPCProber(),
		"icmp":    NewICMPProber(),
		"browser": r.Browser,
	}
}

// probeLookup resolves host, timed; an IP literal needs no lookup. Names under .invalid
// are refused without asking anyone: RFC 6761 reserves them to never resolve, and
// Go's resolver would still send the query to the network's name server.
func probeLookup(ctx context.Context, r *net.Resolver, host string) ([]net.IPAddr, time.Duration, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		return []net.IPAddr{{IP: a.AsSlice(), Zone: a.Zone()}}, 0, nil
	}
	if reservedInvalid(host) {
		return nil, 0, fmt.Errorf("resolve %q: no such host (.invalid is reserved never to resolve, RFC 6761; no query sent)", host)
	}
	start := time.Now()
	ips, err := r.LookupIPAddr(ctx, host)
	took := time.Since(start)
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, took, fmt.Errorf("timeout: resolving %q did not complete before the deadline (%w)", host, context.DeadlineExceeded)
	case err != nil:
		return nil, took, fmt.Errorf("resolve: %w", err)
	case len(ips) == 0:
		return nil, took, fmt.Errorf("resolve %q: no addresses", host)
	}
	return ips, took, nil
}

// reservedInvalid: the name is .invalid or under it (RFC 6761).
func reservedInvalid(host string) bool {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	return name == "invalid" || strings.HasSuffix(name, ".invalid")
}
