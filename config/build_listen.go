package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
)

// buildListen checks the addresses the daemon serves on and the names it answers to.
func (b *builder) buildListen() {
	f, cfg := b.f, b.cfg
	cfg.Listen = orDefault(f.Listen, DefaultListen)
	if f.Listen != "" {
		b.checkListenAddr("listen", f.Listen)
	}
	node := b.d.at(f, "allowed_hosts")
	for i, h := range f.AllowedHosts {
		if err := checkHostName(h); err != nil {
			b.d.errorf(item(node, i), "allowed_hosts: %q: %v", h, err)
			continue
		}
		cfg.AllowedHosts = append(cfg.AllowedHosts, NormalHost(h))
	}
}

// checkListenAddr reports whether v is host:port (port 0: any free port, for tests).
func (b *builder) checkListenAddr(key, v string) bool {
	if err := hostPort(v, true); err != nil {
		b.d.errorf(b.d.at(b.f, key), "%s %q: %v", key, v, err)
		return false
	}
	return true
}

// sameListenAddr: two binds that would collide. Port 0 never does (each gets its own).
func sameListenAddr(a, b string) bool {
	ah, ap, _ := net.SplitHostPort(a)
	bh, bp, _ := net.SplitHostPort(b)
	return ap == bp && ap != "0" && (ah == bh || anyHost(ah) || anyHost(bh))
}

// anyHost: a bind to every address, which collides with a bind to any one of them.
func anyHost(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }

var hostNamePattern = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$`)

// checkHostName: allowed_hosts holds names as a browser puts them in Host, which is
// easy to get wrong by pasting a URL or host:port, so each mistake gets its own message.
func checkHostName(h string) error {
	switch {
	case h == "":
		return fmt.Errorf("want a host name, got nothing")
	case strings.Contains(h, "://"):
		return fmt.Errorf("want a host name like %s, without a scheme", strings.SplitN(strings.SplitN(h, "://", 2)[1], "/", 2)[0])
	case strings.Contains(h, "*"):
		return fmt.Errorf("want a host name; wildcards are not accepted, list each name")
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return nil // an IP literal is always accepted; listing one does no harm
	}
	if strings.ContainsAny(h, ":/") {
		return fmt.Errorf("want a host name without a port (any port is accepted)")
	}
	if !hostNamePattern.MatchString(h) {
		return fmt.Errorf("want a host name of letters, digits, '-' and '.'")
	}
	return nil
}

// NormalHost is how a host name compares: lower case, without the root's trailing dot
// (picket.internal. and Picket.Internal are the same name).
func NormalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }
