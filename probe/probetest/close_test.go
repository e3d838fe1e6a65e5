package probetest

import (
	"net"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/miekg/dns"
)

// TestCloseEndsEverything starts every kind of server, leaves a request of each
// kind stuck in a minute-long slow fault, and checks Close returns at once,
// every stuck client gets its connection closed, and nothing listens afterwards.
// goleak (TestMain) checks that no goroutine outlives it.
func TestCloseEndsEverything(t *testing.T) {
	p, err := Start(Options{
		Regions: []string{"eu1", "us1"}, IngestDelay: -1,
		DNSAddr:   "127.0.0.1:0",
		TLSAddrs:  map[string]string{"eu1": "", "us1": ""},
		TCPAddrs:  map[string]string{"eu1": "", "us1": ""},
		GRPCAddrs: map[string]string{"eu1": "", "us1": ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			p.Close()
		}
	}()
	addrs := map[string]string{
		"http": p.URL("eu1")[len("http://"):], "tls": tlsAddr(p, "eu1"),
		"line": p.TCPAddr("eu1"), "dns": p.DNSAddr(), "control": p.ControlURL()[len("http://"):],
		"grpc": p.GRPCAddr("eu1"),
	}
	line := dialLine(t, p, "eu1")
	line.expect(`^220 `)
	tlsClient := newTLSClient(t, p.CAFile(), 5*time.Second)
	idleTLS := newTLSClient(t, p.CAFile(), 5*time.Second)
	if err := journey(idleTLS, p.TLSURL("us1"), "us1", "healthz"); err != nil {
		t.Fatal(err) // leaves an idle keep-alive TLS connection open
	}

	p.SetFault("eu1", "", Fault{Kind: FaultSlow, Delay: time.Minute})
	stuck := map[string]chan error{"dns over tcp": make(chan error, 1), "tls": make(chan error, 1), "grpc": make(chan error, 1)}
	go func() {
		_, err := query(p, "tcp", "intake.eu1.sim.test.", dns.TypeA, 5*time.Second)
		stuck["dns over tcp"] <- err
	}()
	go func() { stuck["tls"] <- journey(tlsClient, p.TLSURL("eu1"), "eu1", "healthz") }()
	health := dialHealth(t, p, "eu1")
	go func() {
		_, err := checkWithin(health, "", 5*time.Second)
		stuck["grpc"] <- err
	}()
	line.send("PING") // its answer waits a minute
	testkit.WaitFor(t, 2*time.Second, "the TLS request and the gRPC check to reach their handlers", func() bool { return p.active.Load() >= 2 })

	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if took := time.Since(start); took > time.Second {
		t.Errorf("expected Close to end stuck handlers at once, took %s", took)
	}
	for what, ch := range stuck {
		select {
		case err := <-ch:
			if err == nil || isTimeout(err) {
				t.Errorf("%s: expected the connection closed by Close, got %v", what, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: still waiting 2s after Close", what)
		}
	}
	line.expectClosed()

	for what, addr := range addrs {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s: expected nothing listening on %s after Close", what, addr)
		}
	}
	if _, err := query(p, "udp", "intake.us1.sim.test.", dns.TypeA, noAnswerTimeout); err == nil {
		t.Errorf("DNS over UDP: expected no answer after Close")
	}
}
