package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/tmpl"
)

// Bounds on what a tcp step reads, so that a server that never sends a newline, or
// sends forever, costs little memory and ends the step at once.
const (
	tcpMaxLineBytes = 8 << 10  // one line, with its line ending
	tcpMaxReadBytes = 64 << 10 // everything read in one probe
)

// How much of the received lines a failure reason shows.
const (
	tcpShownLines   = 3
	tcpShownLineLen = 80
)

var (
	errTCPLineTooLong = fmt.Errorf("line longer than %d bytes", tcpMaxLineBytes)
	errTCPReadLimit   = fmt.Errorf("read limit of %d bytes reached", tcpMaxReadBytes)
)

// TCPProber runs tcp steps like a customer's SMTP, Redis or intake client: connect,
// optional TLS, then send / expect-line exchanges. It holds no state; every probe opens
// its own connection, so connect and TLS are measured (and can fail) every time.
type TCPProber struct{}

// NewTCPProber returns a TCP prober.
func NewTCPProber() *TCPProber { return &TCPProber{} }

var _ Prober = (*TCPProber)(nil)

// Probe connects to step.TCP.Address and runs its exchanges in order.
func (p *TCPProber) Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange {
	req := step.TCP
	ex := &Exchange{Info: map[string]string{}}
	start := time.Now()
	defer tcpStamp(ex, start)

	raw, host, sni, err := tcpConnect(ctx, req.Address, req.ServerName, data, ex)
	if err != nil {
		ex.Err = err
		return ex
	}
	defer raw.Close()
	defer tcpBindContext(ctx, raw)()

	var conn net.Conn = raw
	if req.TLS != nil {
		tc, err := tlsHandshake(ctx, raw, tlsConfigFor(req.TLS, host, sni), ex)
		if err != nil {
			ex.Err = err
			return ex
		}
		conn = tc
	}

	began := time.Now()
	lines := newTCPLines(conn, tcpMaxLineBytes, tcpMaxReadBytes)
	ex.Err = runTCPExchanges(ctx, conn, lines, req.Exchange, data, ex.Info)
	ex.Phases.Processing = time.Since(began)
	ex.Obs.Body = []byte(strings.Join(lines.lines, "\n"))
	ex.Info["lines"] = strconv.Itoa(len(lines.lines))
	return ex
}

// tcpStamp sets the attempt's total latency and the time it ended (for cert_min_days).
func tcpStamp(e *Exchange, start time.Time) {
	e.Obs.Now = time.Now()
	e.Obs.Latency = e.Obs.Now.Sub(start)
}

// runTCPExchanges writes each exchange's Send and reads lines until one matches its
// Expect. Info gets the time each completed exchange took.
func runTCPExchanges(ctx context.Context, conn net.Conn, lines *tcpLines, exchanges []config.Exchange, data tmpl.Data, info map[string]string) error {
	times := make([]string, 0, len(exchanges))
	defer func() {
		if len(times) > 0 {
			info["exchange_times"] = strings.Join(times, " ")
		}
	}()
	for i, e := range exchanges {
		n := i + 1
		began := time.Now()
		if e.Send != nil {
			msg, err := e.Send.Render(data)
			if err != nil {
				return fmt.Errorf("exchange %d: send: %w", n, err)
			}
			if _, err := io.WriteString(conn, msg); err != nil {
				return tcpFail(ctx, fmt.Sprintf("exchange %d: sending", n), err)
			}
		}
		if e.Expect != nil {
			if err := lines.readUntil(ctx, n, e.Expect); err != nil {
				return err
			}
		}
		times = append(times, roundDur(time.Since(began)).String())
	}
	return nil
}

// tcpRenderAddress renders a host:port template and checks its shape.
func tcpRenderAddress(t *tmpl.Template, data tmpl.Data) (addr, host string, err error) {
	addr, err = t.Render(data)
	if err != nil {
		return "", "", fmt.Errorf("address: %w", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("address %q: want host:port", addr)
	}
	return addr, host, nil
}

// tcpConnect renders a step's address and server name and dials it: what every
// connection-based kind (tcp, tls) does before its own exchange.
func tcpConnect(ctx context.Context, address, serverName *tmpl.Template, data tmpl.Data, ex *Exchange) (conn net.Conn, host, sni string, err error) {
	addr, host, err := tcpRenderAddress(address, data)
	if err != nil {
		return nil, "", "", err
	}
	if sni, err = renderSNI(serverName, data); err != nil {
		return nil, "", "", err
	}
	conn, err = tcpDial(ctx, addr, ex)
	return conn, host, sni, err
}

// tcpDial resolves the address's host (timed as the DNS phase, unless it is an IP
// literal) and connects to its addresses in turn until one answers (the connect
// phase). Trying every address keeps one unreachable family (IPv6 on a vantage without
// it) from looking like an outage. Info gets the address that answered.
func tcpDial(ctx context.Context, addr string, ex *Exchange) (net.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	addrs, took, err := probeLookup(ctx, net.DefaultResolver, host)
	ex.Phases.DNS = took
	if err != nil {
		return nil, err
	}
	ips := make([]string, len(addrs))
	for i, a := range addrs {
		ips[i] = a.String()
	}
	d := net.Dialer{KeepAlive: -1} // keep-alive would start long after any step's deadline
	began := time.Now()
	defer func() { ex.Phases.Connect = time.Since(began) }()
	var lastErr error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, port))
		if err == nil {
			ex.Info["remote"] = conn.RemoteAddr().String()
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	what := "connect to " + addr
	if len(ips) > 1 {
		what += fmt.Sprintf(" (%d addresses)", len(ips))
	}
	return nil, tcpFail(ctx, what, lastErr)
}

// tcpBindContext makes ctx the connection's deadline, and its cancellation an
// immediate one, so that no read or write outlives the step. Call the result to unbind.
func tcpBindContext(ctx context.Context, conn net.Conn) func() {
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// tcpFail turns a network error during what (connect, TLS handshake, sending) into one
// line: "connect to 127.0.0.1:25: connection refused", "TLS handshake: timed out".
func tcpFail(ctx context.Context, what string, err error) error {
	switch cause := tcpCause(ctx, err); {
	case errors.Is(cause, context.Canceled):
		return fmt.Errorf("%s: cancelled (%w)", what, cause)
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("%s: timed out (%w)", what, cause)
	default:
		return fmt.Errorf("%s: %w", what, cause)
	}
}

// tcpCause reduces err to what happened: context.Canceled, context.DeadlineExceeded
// (also when the connection's deadline, which is ctx's, fired a moment before ctx
// noticed), io.EOF, or the system's error (connection refused, reset by peer).
func tcpCause(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return context.Canceled
	}
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// tcpLines reads lines within two bounds: tcpMaxLineBytes per line and tcpMaxReadBytes
// in all, so every loop over it ends after at most that many bytes.
type tcpLines struct {
	br      *bufio.Reader
	lines   []string // complete lines so far, without their line endings
	partial string   // an unfinished line the last read stopped in (timeout, a bound)
}

func newTCPLines(r io.Reader, maxLine int, maxTotal int64) *tcpLines {
	return &tcpLines{br: bufio.NewReaderSize(&tcpCappedReader{r: r, left: maxTotal}, maxLine)}
}

// next returns the next line. A last line the server ended by closing, without a
// newline, is a line too: a customer's client would see it.
func (l *tcpLines) next() (string, error) {
	raw, err := l.br.ReadSlice('\n')
	if err == nil || (errors.Is(err, io.EOF) && len(raw) > 0) {
		line := string(tcpTrimLineEnding(raw))
		l.lines = append(l.lines, line)
		return line, nil
	}
	l.partial = string(raw[:min(len(raw), tcpShownLineLen+1)])
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errTCPLineTooLong
	}
	return "", err
}

func tcpTrimLineEnding(b []byte) []byte {
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
}

// readUntil reads lines until one matches re. It ends: each line read uses at least one
// byte of the read limit.
func (l *tcpLines) readUntil(ctx context.Context, n int, re *regexp.Regexp) error {
	first := len(l.lines)
	for {
		line, err := l.next()
		if err == nil {
			if re.MatchString(line) {
				return nil
			}
			continue
		}
		cause := tcpCause(ctx, err)
		return &tcpExchangeError{
			msg:   fmt.Sprintf("exchange %d: no line matched `%s` %s; got %s", n, re, tcpWhy(cause), l.shown(first)),
			cause: cause,
		}
	}
}

// tcpWhy says why reading stopped, to follow "no line matched RE".
func tcpWhy(cause error) string {
	switch {
	case errors.Is(cause, io.EOF):
		return "before the server closed"
	case errors.Is(cause, context.DeadlineExceeded):
		return "before the deadline (timeout)"
	case errors.Is(cause, context.Canceled):
		return "before the probe was cancelled"
	case errors.Is(cause, errTCPLineTooLong):
		return fmt.Sprintf("before a line longer than %d bytes", tcpMaxLineBytes)
	case errors.Is(cause, errTCPReadLimit):
		return fmt.Sprintf("in the first %d bytes (the read limit)", tcpMaxReadBytes)
	}
	return fmt.Sprintf("before the connection failed (%v)", cause)
}

// shown lists the last lines received since line index first, and an unfinished one.
func (l *tcpLines) shown(first int) string {
	got := l.lines[first:]
	var parts []string
	for _, line := range got[max(0, len(got)-tcpShownLines):] {
		parts = append(parts, `"`+scrub.Excerpt([]byte(line), tcpShownLineLen)+`"`)
	}
	if l.partial != "" {
		parts = append(parts, `"`+scrub.Excerpt([]byte(l.partial), tcpShownLineLen)+`" (no line ending)`)
	}
	switch {
	case len(parts) == 0:
		return "nothing"
	case len(got) > tcpShownLines:
		return fmt.Sprintf("%d lines, the last %s", len(got), strings.Join(parts, ", "))
	}
	return strings.Join(parts, ", ")
}

// tcpExchangeError is a failed exchange; Unwrap gives why reading stopped (io.EOF,
// context.DeadlineExceeded, a bound), for errors.Is.
type tcpExchangeError struct {
	msg   string
	cause error
}

func (e *tcpExchangeError) Error() string { return e.msg }
func (e *tcpExchangeError) Unwrap() error { return e.cause }

// tcpCappedReader returns errTCPReadLimit once it has given left bytes.
type tcpCappedReader struct {
	r    io.Reader
	left int64
}

func (c *tcpCappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errTCPReadLimit
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
