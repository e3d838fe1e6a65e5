// Package loopback listens for the local stand-ins of outside services (the Events API
// receiver, the chat stand-in): they record routing keys and messages, so they refuse
// any address that is not on loopback.
package loopback

import (
	"context"
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

// WaitFor returns nil as soon as cond holds for what snapshot returns, checking at once
// and after every change: snapshot also returns the channel that closes at the next
// change. It returns ctx's error (wrapped, counting what it saw) if ctx ends first, and
// closedErr once closing closes. The local stand-ins' WaitFor methods are this loop.
func WaitFor[T any](ctx context.Context, who string, snapshot func() ([]T, <-chan struct{}), closing <-chan struct{},
	closedErr error, cond func([]T) bool) error {
	for {
		items, changed := snapshot()
		if cond(items) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%s: condition still false after %d accepted: %w", who, len(items), ctx.Err())
		case <-closing:
			return closedErr
		}
	}
}
