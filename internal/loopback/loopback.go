// Package loopback listens for the local stand-ins of outside services (the Events API
// receiver, the chat stand-in): they record routing keys and messages, so they refuse
// any address that is not on loopback.
package loopback

import (
	"fmt"
	"net"
)

// Listen listens on addr ("": 127.0.0.1:0), which must be a loopback address or
// localhost (no other name is resolved); who names the caller in errors.
func Listen(who, addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: address: expected host:port, got %q: %w", who, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s: address: expected a loopback address such as 127.0.0.1:0, got %q", who, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", who, addr, err)
	}
	return ln, nil
}
