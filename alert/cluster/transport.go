package cluster

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Stats counts what this member's gossip transport carried, as the transport sees it:
// after encryption, without IP, UDP and TCP headers. Bytes cover both datagrams (probes,
// gossip, broadcasts) and streams (push-pull, joins, fallback probes); packets count
// datagrams only, a stream being no fixed number of packets.
type Stats struct {
	SentBytes, ReceivedBytes     uint64
	SentPackets, ReceivedPackets uint64
}

// Stats returns the counts since Start; they keep their values after Close.
func (c *Cluster) Stats() Stats {
	return c.traffic.snapshot()
}

type counters struct {
	sentBytes, receivedBytes     atomic.Uint64
	sentPackets, receivedPackets atomic.Uint64
}

func (n *counters) snapshot() Stats {
	return Stats{
		SentBytes:       n.sentBytes.Load(),
		ReceivedBytes:   n.receivedBytes.Load(),
		SentPackets:     n.sentPackets.Load(),
		ReceivedPackets: n.receivedPackets.Load(),
	}
}

// newNetTransport binds memberlist's own UDP and TCP transport, retrying a port picked
// by the kernel that is free for TCP but taken for UDP (as memberlist does itself).
func newNetTransport(conf *memberlist.Config) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{
		BindAddrs:    []string{conf.BindAddr},
		BindPort:     conf.BindPort,
		Logger:       conf.Logger,
		MetricLabels: conf.MetricLabels,
	}
	tries := 1
	if conf.BindPort == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("bind %s:%d: %w", conf.BindAddr, conf.BindPort, err)
}

// countingTransport counts the bytes and datagrams its inner transport carries.
type countingTransport struct {
	memberlist.NodeAwareTransport
	n     *counters
	relay *relay
}

func newCountingTransport(inner memberlist.NodeAwareTransport, n *counters) *countingTransport {
	t := &countingTransport{NodeAwareTransport: inner, n: n}
	t.relay = newRelay(inner,
		func(p *memberlist.Packet) bool {
			n.receivedBytes.Add(uint64(len(p.Buf)))
			n.receivedPackets.Add(1)
			return true
		},
		func(conn net.Conn) (net.Conn, bool) { return &countingConn{Conn: conn, n: n}, true })
	return t
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	at, err := t.NodeAwareTransport.WriteTo(b, addr)
	t.sent(len(b), err)
	return at, err
}

func (t *countingTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	at, err := t.NodeAwareTransport.WriteToAddress(b, addr)
	t.sent(len(b), err)
	return at, err
}

func (t *countingTransport) sent(size int, err error) {
	if err == nil {
		t.n.sentBytes.Add(uint64(size))
		t.n.sentPackets.Add(1)
	}
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NodeAwareTransport.DialTimeout(addr, timeout)
	return t.counted(conn, err)
}

func (t *countingTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NodeAwareTransport.DialAddressTimeout(addr, timeout)
	return t.counted(conn, err)
}

func (t *countingTransport) counted(conn net.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: t.n}, nil
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.relay.packets }
func (t *countingTransport) StreamCh() <-chan net.Conn           { return t.relay.streams }

func (t *countingTransport) Shutdown() error {
	err := t.NodeAwareTransport.Shutdown()
	t.relay.close()
	return err
}

// countingConn counts a stream's bytes both ways.
type countingConn struct {
	net.Conn
	n *counters
}

func (c *countingConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	c.n.receivedBytes.Add(uint64(k))
	return k, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	k, err := c.Conn.Write(b)
	c.n.sentBytes.Add(uint64(k))
	return k, err
}

// relay passes what an inner transport receives on to channels of its own, through a
// function per packet and per stream that may look, wrap or drop (false). A wrapping
// transport returns the relay's channels from PacketCh and StreamCh, and closes the
// relay after shutting the inner transport down: until then, the relay keeps reading
// the inner channels, which the inner listeners may be blocked sending on.
type relay struct {
	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{}
	done    sync.WaitGroup
	once    sync.Once
}

func newRelay(inner memberlist.Transport, packet func(*memberlist.Packet) bool, stream func(net.Conn) (net.Conn, bool)) *relay {
	r := &relay{
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		stop:    make(chan struct{}),
	}
	r.done.Add(2)
	go relayEach(r, inner.PacketCh(), r.packets,
		func(p *memberlist.Packet) (*memberlist.Packet, bool) { return p, packet(p) },
		func(*memberlist.Packet) {})
	go relayEach(r, inner.StreamCh(), r.streams, stream, func(conn net.Conn) { _ = conn.Close() })
	return r
}

// relayEach moves values from in to out through pass; drop disposes of a value that
// does not go out.
func relayEach[T any](r *relay, in <-chan T, out chan<- T, pass func(T) (T, bool), drop func(T)) {
	defer r.done.Done()
	for {
		select {
		case <-r.stop:
			return
		case v := <-in:
			v, keep := pass(v)
			if !keep {
				drop(v)
				continue
			}
			select {
			case out <- v:
			case <-r.stop:
				drop(v)
				return
			}
		}
	}
}

// close stops the relay's goroutines; it is safe to call more than once.
func (r *relay) close() {
	r.once.Do(func() { close(r.stop) })
	r.done.Wait()
}
