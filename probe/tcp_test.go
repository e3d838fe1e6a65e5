package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
)

// --- helpers (tcp and tls steps) -----------------------------------------------------

// tcpListen serves handle on 127.0.0.1 and returns host:port; see rawServer.
func tcpListen(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	return strings.TrimPrefix(rawServer(t, handle), "http://")
}

// tcpTLSListen serves TLS with cfg, then hands the connection to handle (nil: read until
// the client closes). A failed handshake just closes.
func tcpTLSListen(t testing.TB, cfg *tls.Config, handle func(net.Conn)) string {
	t.Helper()
	return tcpListen(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		if handle == nil {
			io.Copy(io.Discard, tc)
			return
		}
		handle(tc)
	})
}

// tcpClosedAddr returns a 127.0.0.1 address nothing listens on.
func tcpClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// tcpTestRunner is a Runner that knows tcp and tls steps.
func tcpTestRunner(t testing.TB) *Runner {
	r := newRunner(t)
	r.probers["tcp"] = NewTCPProber()
	r.probers["tls"] = NewTLSProber()
	return r
}

// tcpRun runs a one-journey config whose region var api is addr.
func tcpRun(t testing.TB, addr, journey string) Result {
	t.Helper()
	return tcpTestRunner(t).Run(context.Background(), targetFor(t, addr, journey))
}

// tcpProbeStep runs the first step of a one-journey config with prober p, directly, so
// a test can see the whole Exchange.
func tcpProbeStep(t testing.TB, p Prober, addr, journey string) (*Exchange, *config.Step) {
	t.Helper()
	tg := targetFor(t, addr, journey)
	ctx, cancel := context.WithTimeout(context.Background(), tg.Timeout)
	defer cancel()
	step := tg.Steps[0]
	return p.Probe(ctx, step, tg.TemplateData(map[string]string{"id": "run1"}, map[string]string{})), step
}

func tcpWantUp(t testing.TB, res Result) {
	t.Helper()
	if res.Status != StatusUp || res.Error != "" {
		t.Fatalf("want up, got %s: %s", res.Status, res.Error)
	}
}

func tcpWantError(t testing.TB, res Result, want string) {
	t.Helper()
	if res.Status != StatusDown || res.Error != want {
		t.Fatalf("want down with\n  %s\ngot %s with\n  %s", want, res.Status, res.Error)
	}
}

// tcpSMTPServer greets, answers EHLO (or refuses it and closes) and QUIT.
func tcpSMTPServer(refuse bool) func(net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		io.WriteString(c, "220 mail.test ESMTP picket-test\r\n")
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "EHLO ") {
			io.WriteString(c, "500 want EHLO\r\n")
			return
		}
		if refuse {
			io.WriteString(c, "554 denied\r\n")
			return
		}
		io.WriteString(c, "250-mail.test greets you\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n")
		if line, err := br.ReadString('\n'); err == nil && line == "QUIT\r\n" {
			io.WriteString(c, "221 bye\r\n")
		}
	}
}

// tcpRedisServer answers up to ten PINGs with +PONG.
func tcpRedisServer(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for range 10 {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "PING\r\n" {
			io.WriteString(c, "+PONG\r\n")
		} else {
			io.WriteString(c, "-ERR unknown command\r\n")
		}
	}
}

// tcpIntakeServer accepts one line, keeps it in got and answers "ok".
func tcpIntakeServer(got *atomic.Value) func(net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		got.Store(line)
		io.WriteString(c, "ok\n")
	}
}

func tcpSilentServer(c net.Conn) { io.Copy(io.Discard, c) }

// tcpWriteUntilClosed writes chunk again and again (a bounded number of times) until
// the client goes away, pausing pause between writes.
func tcpWriteUntilClosed(chunk string, pause time.Duration, times int) func(net.Conn) {
	return func(c net.Conn) {
		for range times {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
			time.Sleep(pause)
		}
	}
}

// --- success ------------------------------------------------------------------------

func TestTCPSMTPBannerEHLOAndQuit(t *testing.T) {
	addr := tcpListen(t, tcpSMTPServer(false))
	ex, _ := tcpProbeStep(t, NewTCPProber(), addr, `
		- name: mail
		  timeout: 2s
		  steps:
		    - name: smtp
		      tcp:
		        address: "{{.region.api}}"
		        exchange:
		          - {expect: '^220 '}
		          - {send: "EHLO picket.test\r\n", expect: '^250 '}
		          - {send: "QUIT\r\n", expect: '^221'}
	`)
	if ex.Err != nil {
		t.Fatalf("want no error, got %v", ex.Err)
	}
	want := "220 mail.test ESMTP picket-test\n250-mail.test greets you\n250-SIZE 10240000\n250 8BITMIME\n221 bye"
	if string(ex.Obs.Body) != want {
		t.Errorf("body\n%q, want\n%q", ex.Obs.Body, want)
	}
	if ex.Phases.Connect <= 0 || ex.Phases.Processing <= 0 || ex.Phases.DNS != 0 || ex.Phases.TLS != 0 {
		t.Errorf("phases %+v: want connect and processing > 0, no DNS or TLS for a plain IP", ex.Phases)
	}
	if ex.Obs.Latency < ex.Phases.Connect+ex.Phases.Processing {
		t.Errorf("latency %v < connect + processing %v", ex.Obs.Latency, ex.Phases.Connect+ex.Phases.Processing)
	}
	if ex.Info["remote"] != addr || ex.Info["lines"] != "5" || len(strings.Fields(ex.Info["exchange_times"])) != 3 {
		t.Errorf("info %v: want remote %s, 5 lines, 3 exchange times", ex.Info, addr)
	}
	if ex.Obs.TLS != nil || ex.Obs.Certs != nil || !ex.Cert.IsZero() {
		t.Errorf("TLS facts on a plain connection: %+v %v", ex.Obs.TLS, ex.Cert)
	}
}

// The lines are the step's body: expectations judge them and extraction reads them,
// here into the next step's send.
func TestTCPBodyFeedsExpectationsAndExtraction(t *testing.T) {
	smtp := tcpListen(t, tcpSMTPServer(false))
	var got atomic.Value
	intake := tcpListen(t, tcpIntakeServer(&got))
	tg := targetFor(t, smtp, fmt.Sprintf(`
		- name: mail
		  timeout: 2s
		  steps:
		    - name: smtp
		      tcp:
		        address: "{{.region.api}}"
		        exchange: [{expect: '^220 '}, {send: "EHLO picket.test\r\n", expect: '^250 '}]
		      expect: {body_contains: "8BITMIME", body_matches: 'SIZE \d+'}
		      extract: {size: {regex: 'SIZE (\d+)'}}
		    - name: intake
		      tcp:
		        address: %q
		        exchange: [{send: "{{.run.id}} size={{.vars.size}}\n", expect: '^ok$'}]
	`, intake))
	res := tcpTestRunner(t).Run(context.Background(), tg)
	tcpWantUp(t, res)
	if want := res.RunID + " size=10240000\n"; got.Load() != want {
		t.Errorf("intake got %q, want %q", got.Load(), want)
	}

	tg = targetFor(t, smtp, `
		- name: mail
		  timeout: 2s
		  steps:
		    - name: smtp
		      tcp: {address: "{{.region.api}}", exchange: [{expect: '^220 '}]}
		      expect: {body_contains: "Postfix"}
	`)
	res = tcpTestRunner(t).Run(context.Background(), tg)
	if res.Status != StatusDown || !strings.Contains(res.Error, "Postfix") || !strings.Contains(res.Error, "220 mail.test") {
		t.Errorf("want down naming the missing text and the body, got %s: %s", res.Status, res.Error)
	}
}

func TestTCPRedisPing(t *testing.T) {
	addr := tcpListen(t, tcpRedisServer)
	ex, _ := tcpProbeStep(t, NewTCPProber(), addr, `
		- name: cache
		  timeout: 2s
		  steps:
		    - {name: ping, tcp: {address: "{{.region.api}}", exchange: [{send: "PING\r\n", expect: '^\+PONG$'}]}}
	`)
	if ex.Err != nil || string(ex.Obs.Body) != "+PONG" {
		t.Fatalf("want +PONG and no error, got %q, %v", ex.Obs.Body, ex.Err)
	}
}

func TestTCPIntakeAcceptsALine(t *testing.T) {
	var got atomic.Value
	addr := tcpListen(t, tcpIntakeServer(&got))
	res := tcpRun(t, addr, `
		- name: intake
		  timeout: 2s
		  steps:
		    - {name: submit, tcp: {address: "{{.region.api}}", exchange: [{send: "{{.run.id}} hello\n", expect: '^ok$'}]}}
	`)
	tcpWantUp(t, res)
	if want := res.RunID + " hello\n"; got.Load() != want {
		t.Errorf("server got %q, want %q", got.Load(), want)
	}
}

// A send without expect reads nothing; a step without exchanges only connects.
func TestTCPSendOnlyAndConnectOnly(t *testing.T) {
	var got atomic.Value
	addr := tcpListen(t, tcpIntakeServer(&got))
	ex, _ := tcpProbeStep(t, NewTCPProber(), addr, `
		- name: intake
		  timeout: 2s
		  steps:
		    - {name: fire, tcp: {address: "{{.region.api}}", exchange: [{send: "fire and forget\n"}]}}
	`)
	if ex.Err != nil || len(ex.Obs.Body) != 0 {
		t.Fatalf("want no error and nothing read, got %q, %v", ex.Obs.Body, ex.Err)
	}

	res := tcpRun(t, addr, `
		- name: port
		  timeout: 2s
		  steps:
		    - {name: open, tcp: {address: "{{.region.api}}"}}
	`)
	tcpWantUp(t, res)
	if res.Steps[0].Phases.Connect <= 0 {
		t.Errorf("connect %v, want > 0", res.Steps[0].Phases.Connect)
	}
}

// A name is resolved (timed as the DNS phase) and every address tried: localhost may
// resolve to ::1 first, where nothing listens.
func TestTCPResolvesNamesAndTriesEveryAddress(t *testing.T) {
	if _, err := net.DefaultResolver.LookupIPAddr(context.Background(), "localhost"); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	addr := tcpListen(t, tcpRedisServer)
	_, port, _ := net.SplitHostPort(addr)
	ex, _ := tcpProbeStep(t, NewTCPProber(), "localhost:"+port, `
		- name: cache
		  timeout: 2s
		  steps:
		    - {name: ping, tcp: {address: "{{.region.api}}", exchange: [{send: "PING\r\n", expect: '^\+PONG$'}]}}
	`)
	if ex.Err != nil {
		t.Fatalf("want no error, got %v", ex.Err)
	}
	if ex.Phases.DNS <= 0 || ex.Info["remote"] != addr {
		t.Errorf("dns %v, remote %q: want > 0 and %s", ex.Phases.DNS, ex.Info["remote"], addr)
	}
}

// --- failures -----------------------------------------------------------------------

func TestTCPFailuresSayWhatHappened(t *testing.T) {
	noise := strings.Repeat("noise line\n", 100)
	cases := []struct {
		name    string
		server  func(net.Conn) // nil: nothing listens
		timeout string
		steps   string
		want    string // the journey's error; %s is the address
		prefix  bool   // want is a prefix
		cause   error  // errors.Is of the prober's error
	}{
		{
			name: "wrong answer", server: tcpSMTPServer(true), timeout: "2s",
			steps: `{expect: '^220 '}, {send: "EHLO picket.test\r\n", expect: '^250 '}`,
			want:  "step s: exchange 2: no line matched `^250 ` before the server closed; got \"554 denied\"",
			cause: io.EOF,
		},
		{
			name: "refused", timeout: "2s",
			steps: `{expect: '^220 '}`,
			want:  "step s: connect to %s: connection refused",
			cause: syscall.ECONNREFUSED,
		},
		{
			name: "accepts and never writes", server: tcpSilentServer, timeout: "300ms",
			steps: `{send: "PING\r\n", expect: '^\+PONG'}`,
			want:  "step s: exchange 1: no line matched `^\\+PONG` before the deadline (timeout); got nothing",
			cause: context.DeadlineExceeded,
		},
		{
			name: "drips forever without a newline", server: tcpWriteUntilClosed(strings.Repeat("x", 1024), 0, 4096), timeout: "5s",
			steps: `{expect: '^220'}`,
			want:  "step s: exchange 1: no line matched `^220` before a line longer than 8192 bytes; got \"" + strings.Repeat("x", 77) + "…\" (no line ending)",
			cause: errTCPLineTooLong,
		},
		{
			name: "drips slowly past the deadline", server: tcpWriteUntilClosed("x", 20*time.Millisecond, 500), timeout: "300ms",
			steps: `{expect: '^220'}`,
			want:  "step s: exchange 1: no line matched `^220` before the deadline (timeout); got \"xxx", prefix: true,
			cause: context.DeadlineExceeded,
		},
		{
			name: "endless lines that never match", server: tcpWriteUntilClosed(noise, 0, 4096), timeout: "5s",
			steps: `{expect: '^220'}`,
			want:  "step s: exchange 1: no line matched `^220` in the first 65536 bytes (the read limit); got 5957 lines, the last \"noise line\", \"noise line\", \"noise line\", \"noise lin\" (no line ending)",
			cause: errTCPReadLimit,
		},
		{
			name: "banner then close", server: func(c net.Conn) { io.WriteString(c, "220 a\r\n220 b\r\n220 c\r\n220 d\r\n421 going away") }, timeout: "2s",
			steps: `{expect: '^250'}`,
			want:  "step s: exchange 1: no line matched `^250` before the server closed; got 5 lines, the last \"220 c\", \"220 d\", \"421 going away\"",
			cause: io.EOF,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := tcpClosedAddr(t)
			if tc.server != nil {
				addr = tcpListen(t, tc.server)
			}
			journey := fmt.Sprintf(`
				- name: j
				  timeout: %s
				  steps:
				    - {name: s, tcp: {address: "{{.region.api}}", exchange: [%s]}}
			`, tc.timeout, tc.steps)
			started := time.Now()
			res := tcpRun(t, addr, journey)
			took := time.Since(started)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, addr)
			}
			switch {
			case res.Status != StatusDown:
				t.Fatalf("want down, got %s", res.Status)
			case tc.prefix && !strings.HasPrefix(res.Error, want):
				t.Errorf("error\n  %s\nwant it to start with\n  %s", res.Error, want)
			case !tc.prefix && res.Error != want:
				t.Errorf("error\n  %s\nwant\n  %s", res.Error, want)
			}
			if took > 2*time.Second {
				t.Errorf("took %v, want it to stop at once or at the deadline", took)
			}
			ex, _ := tcpProbeStep(t, NewTCPProber(), addr, journey)
			if !errors.Is(ex.Err, tc.cause) {
				t.Errorf("error %v: want errors.Is %v", ex.Err, tc.cause)
			}
		})
	}
}

func TestTCPCancelStopsAnExchange(t *testing.T) {
	addr := tcpListen(t, tcpSilentServer)
	tg := targetFor(t, addr, `
		- name: j
		  timeout: 5s
		  steps:
		    - {name: s, tcp: {address: "{{.region.api}}", exchange: [{expect: '^220'}]}}
	`)
	ctx, cancel := context.WithCancel(context.Background())
	stop := time.AfterFunc(100*time.Millisecond, cancel)
	defer stop.Stop()
	started := time.Now()
	ex := NewTCPProber().Probe(ctx, tg.Steps[0], tg.TemplateData(map[string]string{}, map[string]string{}))
	if !errors.Is(ex.Err, context.Canceled) || !strings.Contains(ex.Err.Error(), "cancelled") {
		t.Errorf("error %v: want cancelled", ex.Err)
	}
	if took := time.Since(started); took > 2*time.Second {
		t.Errorf("took %v after cancel", took)
	}
}

// --- TLS ----------------------------------------------------------------------------

func TestTCPOverTLS(t *testing.T) {
	ca, caFile, leaf := tlsTestPKI(t, time.Now().Add(90*24*time.Hour))
	addr := tcpTLSListen(t, &tls.Config{Certificates: []tls.Certificate{leaf}}, tcpRedisServer)

	t.Run("trusted through ca_file", func(t *testing.T) {
		ex, step := tcpProbeStep(t, NewTCPProber(), addr, fmt.Sprintf(`
			- name: cache
			  timeout: 2s
			  steps:
			    - {name: ping, tcp: {address: "{{.region.api}}", tls: {ca_file: %q}, exchange: [{send: "PING\r\n", expect: '^\+PONG$'}]}}
		`, caFile))
		if ex.Err != nil || string(ex.Obs.Body) != "+PONG" {
			t.Fatalf("want +PONG and no error, got %q, %v", ex.Obs.Body, ex.Err)
		}
		if ex.Phases.TLS <= 0 || ex.Obs.TLS == nil || ex.Obs.TLS.Version != "1.3" || ex.Info["tls_version"] != "1.3" {
			t.Errorf("tls phase %v, obs %+v, info %v: want a timed TLS 1.3 handshake", ex.Phases.TLS, ex.Obs.TLS, ex.Info)
		}
		if !ex.Cert.Equal(leaf.Leaf.NotAfter) || len(ex.Obs.Certs) != 2 || !ex.Obs.Certs[1].Equal(ca) {
			t.Errorf("cert expiry %v, chain of %d: want the leaf's %v and a chain of 2", ex.Cert, len(ex.Obs.Certs), leaf.Leaf.NotAfter)
		}
		if step.TCP.TLS.ServerName != "" {
			t.Errorf("the step's TLS config was changed: server name %q", step.TCP.TLS.ServerName)
		}
	})
	t.Run("bad certificate", func(t *testing.T) {
		res := tcpRun(t, addr, `
			- name: cache
			  timeout: 2s
			  steps:
			    - {name: ping, tcp: {address: "{{.region.api}}", tls: {}, exchange: [{send: "PING\r\n", expect: '^\+PONG$'}]}}
		`)
		tcpWantError(t, res, "step ping: TLS handshake: bad certificate: x509: certificate signed by unknown authority")
		if res.Steps[0].CertExpiry.IsZero() {
			t.Errorf("want the rejected certificate's expiry in the result")
		}
	})
}

// --- bad config ---------------------------------------------------------------------

func TestTCPBadConfig(t *testing.T) {
	for _, tc := range []struct{ name, step, want string }{
		{"no address", `tcp: {exchange: [{expect: x}]}`, "tcp.address is required"},
		{"no port", `tcp: {address: "127.0.0.1"}`, "want host:port"},
		{"bad regex", `tcp: {address: "127.0.0.1:1", exchange: [{expect: "("}]}`, "expect: bad regex"},
		{"empty exchange", `tcp: {address: "127.0.0.1:1", exchange: [{}]}`, "needs send, expect or both"},
		{"unknown key", `tcp: {address: "127.0.0.1:1", exchnage: []}`, "exchnage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "regions: {r1: {}}\nproducts:\n  - name: p\n    journeys:\n      - name: j\n        steps:\n          - {name: s, " + tc.step + "}\n"
			_, err := config.Parse("test.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v: want it to say %q", err, tc.want)
			}
		})
	}

	// A template that renders to something else than host:port fails the step.
	ex, _ := tcpProbeStep(t, NewTCPProber(), "no-port-here", `
		- name: j
		  timeout: 1s
		  steps:
		    - {name: s, tcp: {address: "{{.region.api}}"}}
	`)
	if ex.Err == nil || ex.Err.Error() != `address "no-port-here": want host:port` {
		t.Errorf("error %v: want the address named", ex.Err)
	}
}

// --- the line reader ----------------------------------------------------------------

func TestTCPLinesBounds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		lines     []string
		err       error
		maxLine   int
		maxTotals int64
	}{
		{"crlf and lf", "a\r\nb\nc", []string{"a", "b", "c"}, io.EOF, 16, 100},
		{"empty lines", "\n\r\n\n", []string{"", "", ""}, io.EOF, 16, 100},
		{"line fits exactly", strings.Repeat("y", 15) + "\n", []string{strings.Repeat("y", 15)}, io.EOF, 16, 100},
		{"line too long", "ok\n" + strings.Repeat("y", 16) + "\n", []string{"ok"}, errTCPLineTooLong, 16, 100},
		{"read limit", "aaaa\nbbbb\ncccc\n", []string{"aaaa", "bbbb"}, errTCPReadLimit, 16, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTCPLines(strings.NewReader(tc.in), tc.maxLine, tc.maxTotals)
			var err error
			for range len(tc.in) + 2 {
				if _, err = l.next(); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.err) || strings.Join(l.lines, "|") != strings.Join(tc.lines, "|") {
				t.Errorf("lines %q, %v; want %q, %v", l.lines, err, tc.lines, tc.err)
			}
		})
	}
}

// FuzzTCPExchangeLines checks the line reader against a plain split of its input: it
// always ends, never returns a line with a newline or over the bounds, and gives the
// same lines as strings.Split when the input is within them.
func FuzzTCPExchangeLines(f *testing.F) {
	const maxLine, maxTotal = 32, 256
	for _, seed := range []string{"", "a", "\n", "220 hi\r\n250 ok\r\n", "\r\r\n", strings.Repeat("x", 40), strings.Repeat("ab\n", 100)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		l := newTCPLines(bytes.NewReader(in), maxLine, maxTotal)
		var err error
		for range len(in) + 2 { // every line uses at least one byte
			if _, err = l.next(); err != nil {
				break
			}
		}
		if err == nil {
			t.Fatalf("no end after %d reads of %d bytes", len(in)+2, len(in))
		}
		used := 0
		for _, line := range l.lines {
			if strings.Contains(line, "\n") || len(line) >= maxLine {
				t.Fatalf("line %q: has a newline or is over %d bytes", line, maxLine)
			}
			used += len(line)
		}
		if used > maxTotal {
			t.Fatalf("%d bytes of lines, over the limit of %d", used, maxTotal)
		}
		want := tcpSplitLines(in)
		if len(l.lines) > len(want) || strings.Join(l.lines, "\n") != strings.Join(want[:len(l.lines)], "\n") {
			t.Fatalf("lines %q are no prefix of %q", l.lines, want)
		}
		switch {
		case errors.Is(err, io.EOF):
			if len(l.lines) != len(want) {
				t.Fatalf("lines %q at EOF, want %q", l.lines, want)
			}
		case errors.Is(err, errTCPReadLimit):
			if len(in) < maxTotal {
				t.Fatalf("read limit with %d bytes of input", len(in))
			}
		case errors.Is(err, errTCPLineTooLong):
			rest := bytes.SplitN(in, []byte("\n"), len(l.lines)+1)
			if next, _, _ := bytes.Cut(rest[len(rest)-1], []byte("\n")); len(next) < maxLine {
				t.Fatalf("line too long, but the next line is %q", next)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// tcpSplitLines is the plain reference: lines split on \n, one \r trimmed, and no empty
// last line after a final newline.
func tcpSplitLines(in []byte) []string {
	if len(in) == 0 {
		return nil
	}
	parts := strings.Split(string(in), "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		parts[i] = strings.TrimSuffix(p, "\r")
	}
	return parts
}

// BenchmarkTCPProbeRedisPing is one tcp step over loopback: connect, PING, +PONG.
func BenchmarkTCPProbeRedisPing(b *testing.B) {
	addr := tcpListen(b, tcpRedisServer)
	tg := targetFor(b, addr, `
		- name: cache
		  timeout: 2s
		  steps:
		    - {name: ping, tcp: {address: "{{.region.api}}", exchange: [{send: "PING\r\n", expect: '^\+PONG$'}]}}
	`)
	p, data := NewTCPProber(), tg.TemplateData(map[string]string{}, map[string]string{})
	b.ReportAllocs()
	for b.Loop() {
		if ex := p.Probe(context.Background(), tg.Steps[0], data); ex.Err != nil {
			b.Fatal(ex.Err)
		}
	}
}

// BenchmarkTLSCheckHandshake is one tls step over loopback: connect and a full
// TLS 1.3 handshake with an ECDSA chain of two.
func BenchmarkTLSCheckHandshake(b *testing.B) {
	_, caFile, leaf := tlsTestPKI(b, time.Now().Add(90*24*time.Hour))
	addr := tcpTLSListen(b, &tls.Config{Certificates: []tls.Certificate{leaf}}, nil)
	tg := targetFor(b, addr, tlsCheckJourney("2s", fmt.Sprintf("ca_file: %q", caFile), ""))
	p, data := NewTLSProber(), tg.TemplateData(map[string]string{}, map[string]string{})
	b.ReportAllocs()
	for b.Loop() {
		if ex := p.Probe(context.Background(), tg.Steps[0], data); ex.Err != nil {
			b.Fatal(ex.Err)
		}
	}
}
