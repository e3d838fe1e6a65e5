package network

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// echoServer answers each line with the same line, until Close.
func echoServer(t *testing.T) string {
	t.Helper()
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 64)
	go func() {
		defer close(done)
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() { _, _ = io.Copy(c, c) }() // ends when the proxy closes its side
		}
	}()
	t.Cleanup(func() {
		sink.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return sink.Addr().String()
}

func roundTrip(addr string) (time.Duration, error) {
	began := time.Now()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "ping\n" {
		return 0, errors.New("echo: got " + line)
	}
	return time.Since(began), nil
}

// TestFlakyProxyForwardsDropsDelaysAndCloses checks the proxy alone (fast, always run):
// rate 0 forwards every connection, rate 1 faults every one (each dropped or delayed,
// by the seed), the same seed gives the same decisions, and Close ends connections
// still open.
func TestFlakyProxyForwardsDropsDelaysAndCloses(t *testing.T) {
	upstream := echoServer(t)

	clean, err := StartFlakyProxy(ProxyOptions{Upstream: upstream, FaultRate: 0, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := roundTrip(clean.Addr()); err != nil {
			t.Fatalf("clean proxy, connection %d: %v", i, err)
		}
	}
	if st := clean.Stats(); st.Accepted != 5 || st.Dropped+st.Delayed != 0 {
		t.Errorf("clean proxy stats %+v, want 5 accepted and no fault", st)
	}
	clean.Close()

	const delay = 150 * time.Millisecond
	outcomes := func() []string {
		p, err := StartFlakyProxy(ProxyOptions{Upstream: upstream, FaultRate: 1, Seed: 7, Delay: delay})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var got []string
		for i := 0; i < 8; i++ {
			took, err := roundTrip(p.Addr())
			switch {
			case err != nil:
				got = append(got, "drop")
			case took >= delay:
				got = append(got, "delay")
			default:
				t.Fatalf("connection %d forwarded at once (%v) with fault rate 1", i, took)
			}
		}
		if st := p.Stats(); st.Dropped+st.Delayed != 8 {
			t.Errorf("stats %+v, want 8 faulty", st)
		}
		return got
	}
	first, second := outcomes(), outcomes()
	t.Logf("seed 7: %v", first)
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("same seed, different decisions: %v then %v", first, second)
		}
	}

	held, err := StartFlakyProxy(ProxyOptions{Upstream: upstream, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", held.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testkit.WaitFor(t, 2*time.Second, "the proxy to accept", func() bool { return held.Stats().Accepted == 1 })
	closed := make(chan struct{})
	go func() { held.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return with a connection open")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the client's connection is still open after Close")
	}
}
