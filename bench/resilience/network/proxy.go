package network

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ProxyOptions configure a FlakyProxy.
type ProxyOptions struct {
	Upstream string // host:port every connection is forwarded to
	// FaultRate is the share of connections that misbehave, drawn per accepted connection
	// from a generator seeded with Seed, in accept order: the same seed gives the same
	// sequence of decisions. A faulty connection is dropped or delayed with equal odds.
	FaultRate float64
	Seed      uint64
	Delay     time.Duration // how long a delayed connection waits before it is forwarded
	// MaxConns bounds the connections handled at once (two goroutines each); beyond
	// it, new connections wait in the listen backlog. Default 256.
	MaxConns int
}

// ProxyStats count what the proxy did to the connections it accepted.
type ProxyStats struct {
	Accepted, Dropped, Delayed int64
}

// FlakyProxy is a loopback TCP proxy that drops (closes at once, before reading a byte)
// or delays a seeded share of its connections, and forwards the rest untouched.
type FlakyProxy struct {
	o      ProxyOptions
	ln     net.Listener
	rng    *rand.Rand // drawn by the accept loop only
	slots  chan struct{}
	closed chan struct{}
	ctx    context.Context // cancelled by Close: ends delays and dials
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // every open client and upstream connection

	accepted, dropped, delayed atomic.Int64
}

// defaultMaxConns is plenty for a few dozen targets at sub-second intervals.
const defaultMaxConns = 256

// StartFlakyProxy listens on 127.0.0.1 and forwards to o.Upstream until Close.
func StartFlakyProxy(o ProxyOptions) (*FlakyProxy, error) {
	if o.FaultRate < 0 || o.FaultRate > 1 {
		return nil, fmt.Errorf("proxy fault rate: want 0 to 1, got %v", o.FaultRate)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = defaultMaxConns
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &FlakyProxy{
		ctx: ctx, cancel: cancel,
		o: o, ln: ln,
		rng:    rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		slots:  make(chan struct{}, o.MaxConns),
		closed: make(chan struct{}),
		conns:  map[net.Conn]struct{}{},
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's listen address.
func (p *FlakyProxy) Addr() string { return p.ln.Addr().String() }

// Stats returns the counters so far.
func (p *FlakyProxy) Stats() ProxyStats {
	return ProxyStats{Accepted: p.accepted.Load(), Dropped: p.dropped.Load(), Delayed: p.delayed.Load()}
}

// Close stops accepting, closes every connection and waits for every goroutine.
func (p *FlakyProxy) Close() error {
	var err error
	p.once.Do(func() {
		close(p.closed)
		p.cancel()
		err = p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return err
}

// verdict is what happens to one connection.
type verdict int

const (
	forward verdict = iota
	drop
	delay
)

func (p *FlakyProxy) draw() verdict {
	if p.rng.Float64() >= p.o.FaultRate {
		return forward
	}
	if p.rng.IntN(2) == 0 {
		return drop
	}
	return delay
}

func (p *FlakyProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		select { // a slot first: at most MaxConns connections are handled at once
		case p.slots <- struct{}{}:
		case <-p.closed:
			return
		}
		c, err := p.ln.Accept()
		if err != nil {
			<-p.slots
			return // closed; a loopback listener has no other error worth retrying
		}
		p.accepted.Add(1)
		v := p.draw() // in accept order, so the seed fixes the sequence
		if !p.track(c) {
			<-p.slots
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.slots }()
			p.handle(c, v)
		}()
	}
}

// track registers c so that Close can close it; false when the proxy is closing.
func (p *FlakyProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		c.Close()
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *FlakyProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *FlakyProxy) handle(client net.Conn, v verdict) {
	defer p.untrack(client)
	switch v {
	case drop:
		p.dropped.Add(1)
		return
	case delay:
		p.delayed.Add(1)
		t := time.NewTimer(p.o.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.ctx.Done():
			return
		}
	}
	upstream, err := (&net.Dialer{}).DialContext(p.ctx, "tcp", p.o.Upstream) // Close cancels it
	if err != nil {
		return // the client sees its connection closed, as a dead upstream would cause
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	p.pipe(client, upstream)
}

// pipe copies both ways until either side ends, then closes both (the deferred
// untracks), which ends the other copy.
func (p *FlakyProxy) pipe(client, upstream net.Conn) {
	done := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		_, _ = io.Copy(upstream, client) // ends at EOF, a reset or a closed connection
		upstream.Close()
		client.Close()
	}()
	_, _ = io.Copy(client, upstream)
	client.Close()
	upstream.Close()
	<-done
}
