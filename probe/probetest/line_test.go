package probetest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// lineClient is a raw TCP client of a line intake.
type lineClient struct {
	t      *testing.T
	conn   net.Conn
	r      *bufio.Reader
	dialed time.Time // when the dial began: no server line can be older
}

func dialLine(t *testing.T, p *Platform, region string) *lineClient {
	t.Helper()
	dialed := time.Now()
	conn, err := net.DialTimeout("tcp", p.TCPAddr(region), 2*time.Second)
	if err != nil {
		t.Fatalf("dial the line intake of %s: %v", region, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &lineClient{t: t, conn: conn, r: bufio.NewReader(conn), dialed: dialed}
}

// readLine waits up to within for one line, without its CRLF.
func (c *lineClient) readLine(within time.Duration) (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(within))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return line, err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return line, errors.New("expected a line ending in CRLF, got " + line)
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}

// expect reads one line and checks it matches pattern.
func (c *lineClient) expect(pattern string) string {
	c.t.Helper()
	line, err := c.readLine(2 * time.Second)
	if err != nil {
		c.t.Fatalf("expected a line matching %s, got %q and %v", pattern, line, err)
	}
	if !regexp.MustCompile(pattern).MatchString(line) {
		c.t.Fatalf("expected a line matching %s, got %q", pattern, line)
	}
	return line
}

func (c *lineClient) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// expectClosed checks the server closed the connection without another byte.
func (c *lineClient) expectClosed() {
	c.t.Helper()
	line, err := c.readLine(2 * time.Second)
	if !errors.Is(err, io.EOF) || line != "" {
		c.t.Fatalf("expected the connection closed without a byte, got %q and %v", line, err)
	}
}

// expectSilence checks nothing arrives within within and the connection stays open.
func (c *lineClient) expectSilence(within time.Duration) {
	c.t.Helper()
	line, err := c.readLine(within)
	if !isTimeout(err) || line != "" {
		c.t.Fatalf("expected silence for %s, got %q and %v", within, line, err)
	}
}

func TestLineIntake(t *testing.T) {
	p := startPlatform(t, Options{TCPAddrs: map[string]string{"eu1": "", "us1": ""}})
	if a := p.TCPAddr("eu1"); !strings.HasPrefix(a, "127.0.0.1:") || a == p.TCPAddr("us1") {
		t.Errorf("TCPAddr(eu1): expected its own 127.0.0.1:PORT, got %s", a)
	}
	if a := p.TCPAddr("nope"); a != "" {
		t.Errorf("TCPAddr(nope): expected \"\", got %s", a)
	}
	c := dialLine(t, p, "eu1")
	c.expect(`^220 intake\.eu1\.sim\.test ready$`)
	c.send("PING")
	c.expect(`^\+PONG$`)
	c.send("ping")
	c.expect(`^\+PONG$`)
	c.send("SUBMIT hello from tcp")
	id := strings.TrimPrefix(c.expect(`^250 ok [0-9a-f]{16}$`), "250 ok ")
	c.send("SUBMIT")
	c.expect(`^501 expected SUBMIT <text>$`)
	c.send("HELO x")
	c.expect(`^502 expected PING, SUBMIT <text> or QUIT, got "HELO"$`)
	c.send("QUIT")
	c.expect(`^221 bye$`)
	c.expectClosed()

	t.Run("a submitted line reads back over HTTP", func(t *testing.T) {
		hc := newClient(t, 2*time.Second)
		var a answer
		testkit.WaitFor(t, testIngestDelay+readBackMargin, "the submitted record", func() bool {
			a = mustCall(t, hc, "GET", p.URL("eu1")+"/v1/logs/"+id, "")
			return a.status != 404
		})
		if m := decode(t, a.body); a.status != 200 || m["m"] != "hello from tcp" || m["region"] != "eu1" {
			t.Errorf("expected 200 with m and region eu1, got %d %s", a.status, a.body)
		}
	})
	t.Run("a line too long ends the connection", func(t *testing.T) {
		c := dialLine(t, p, "us1")
		c.expect(`^220 intake\.us1\.sim\.test ready$`)
		c.send("SUBMIT " + strings.Repeat("x", maxLineBytes))
		c.expect(`^500 expected a line of at most 4096 bytes$`)
		c.expectClosed()
	})
}

// TestLineFaults: region-wide faults shape every line the intake writes; us1 is
// never hit.
func TestLineFaults(t *testing.T) {
	cases := []struct {
		name    string
		product string
		fault   Fault
		check   func(c *lineClient, p *Platform)
	}{
		{"down closes at once", "", Fault{Kind: FaultDown}, func(c *lineClient, _ *Platform) {
			c.expectClosed()
		}},
		{"error answers 554 to every line", "", Fault{Kind: FaultError}, func(c *lineClient, _ *Platform) {
			c.expect(`^554 unavailable$`)
			c.send("PING")
			c.expect(`^554 unavailable$`)
			c.send("QUIT")
			c.expect(`^554 unavailable$`)
			c.expectClosed()
		}},
		{"hang never writes", "", Fault{Kind: FaultHang}, func(c *lineClient, _ *Platform) {
			c.expectSilence(noAnswerTimeout)
			c.send("PING")
			c.expectSilence(noAnswerTimeout)
		}},
		{"slow delays every line", "", Fault{Kind: FaultSlow, Delay: matrixSlowDelay}, func(c *lineClient, _ *Platform) {
			for _, step := range []struct{ send, want string }{{"", `^220 `}, {"PING", `^\+PONG$`}} {
				start := c.dialed
				if step.send != "" {
					start = time.Now()
					c.send(step.send)
				}
				c.expect(step.want)
				if took := time.Since(start); took < matrixSlowDelay {
					c.t.Errorf("expected %q no sooner than %s, got it after %s", step.want, matrixSlowDelay, took)
				}
			}
		}},
		{"wrong body answers wrongly", "", Fault{Kind: FaultWrongBody}, func(c *lineClient, _ *Platform) {
			c.expect(`^220 intake\.eu1\.sim\.test ready$`)
			c.send("PING")
			c.expect(`^\+PANG$`)
			c.send("SUBMIT x")
			c.expect(`^250 ok$`)
		}},
		{"stale logs lose what is submitted", "logs", Fault{Kind: FaultStale}, func(c *lineClient, p *Platform) {
			c.expect(`^220 `)
			c.send("SUBMIT lost")
			id := strings.TrimPrefix(c.expect(`^250 ok [0-9a-f]{16}$`), "250 ok ")
			time.Sleep(testIngestDelay + 50*time.Millisecond)
			if a := mustCall(c.t, newClient(c.t, time.Second), "GET", p.URL("eu1")+"/v1/logs/"+id, ""); a.status != 404 {
				c.t.Errorf("read-back: expected 404 from a stale product, got %d %s", a.status, a.body)
			}
		}},
		{"a product fault alone leaves the intake working", "logs", Fault{Kind: FaultDown}, func(c *lineClient, _ *Platform) {
			c.expect(`^220 `)
			c.send("PING")
			c.expect(`^\+PONG$`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startPlatform(t, Options{TCPAddrs: map[string]string{"eu1": "", "us1": ""}})
			p.SetFault("eu1", tc.product, tc.fault)
			tc.check(dialLine(t, p, "eu1"), p)
			other := dialLine(t, p, "us1")
			other.expect(`^220 intake\.us1\.sim\.test ready$`)
			other.send("PING")
			other.expect(`^\+PONG$`)
		})
	}
}

// TestLineFaultSetMidConnection: faults are read per line, so an open session
// sees a fault set after it connected.
func TestLineFaultSetMidConnection(t *testing.T) {
	p := startPlatform(t, Options{TCPAddrs: map[string]string{"eu1": ""}})
	c := dialLine(t, p, "eu1")
	c.expect(`^220 `)
	p.SetFault("eu1", "", Fault{Kind: FaultError})
	c.send("PING")
	c.expect(`^554 unavailable$`)
	p.SetFault("eu1", "", Fault{Kind: FaultDown})
	c.send("PING")
	c.expectClosed()
}
