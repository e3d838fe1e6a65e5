package probetest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// The line intake is a region's raw TCP port, the kind of plain-text protocol
// (SMTP banner, Redis PING) a tcp probe talks to. One command a line:
//
//	server: 220 intake.<region>.sim.test ready
//	PING           -> +PONG
//	SUBMIT <text>  -> 250 ok <id>   (text is stored as a log record {"m":text},
//	                                 readable at GET /v1/logs/<id> like an HTTP write)
//	QUIT           -> 221 bye, then the server closes
//
// Region-wide faults apply, checked before every line the server writes:
// down closes the connection, error makes every line "554 unavailable", hang never writes,
// slow writes each line after the delay, wrong_body answers PING with "+PANG" and
// SUBMIT without an id. A stale logs product accepts SUBMIT and loses the record.
const (
	// maxLineBytes bounds one command line.
	maxLineBytes = 4 << 10
	// lineIdleTimeout ends a connection whose client went quiet.
	lineIdleTimeout  = 30 * time.Second
	lineWriteTimeout = 10 * time.Second
	// lingerTimeout bounds discarding input before a close.
	lingerTimeout = time.Second
)

// lineIntake is one region's line intake listener.
type lineIntake struct {
	rs   *regionServer
	ln   net.Listener
	addr string
}

// serveLines accepts until ln closes; each connection ends on its own, on the
// idle timeout or when the platform closes.
func (p *Platform) serveLines(li *lineIntake) {
	p.serving.Add(1)
	go func() {
		defer p.serving.Done()
		for {
			conn, err := li.ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					p.logger.Error("probetest: line intake stopped", "region", li.rs.name, "err", err)
				}
				return
			}
			// Added while this goroutine still counts, so Close's Wait covers it.
			p.serving.Add(1)
			go func() {
				defer p.serving.Done()
				li.serveConn(conn)
			}()
		}
	}()
}

// lineSession is one connection's exchange.
type lineSession struct {
	li   *lineIntake
	conn net.Conn
	ctx  context.Context
}

func (li *lineIntake) serveConn(conn net.Conn) {
	defer conn.Close()
	ctx := li.rs.p.ctx
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // Close ends blocked reads
	defer stop()
	s := lineSession{li: li, conn: conn, ctx: ctx}
	if !s.reply("220 " + intakeHost(li.rs.name) + " ready") {
		return
	}
	lines := bufio.NewScanner(conn)
	lines.Buffer(make([]byte, 0, 256), maxLineBytes)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(lineIdleTimeout))
		if !lines.Scan() {
			if errors.Is(lines.Err(), bufio.ErrTooLong) && s.reply(fmt.Sprintf("500 expected a line of at most %d bytes", maxLineBytes)) {
				s.closeGently()
			}
			return
		}
		if !s.command(strings.TrimRight(lines.Text(), "\r")) {
			return
		}
	}
}

// command answers one line and reports whether the connection stays open.
func (s lineSession) command(line string) bool {
	verb, arg, _ := strings.Cut(line, " ")
	switch strings.ToUpper(verb) {
	case "PING":
		if s.fault().Kind == FaultWrongBody {
			return s.reply("+PANG")
		}
		return s.reply("+PONG")
	case "SUBMIT":
		return s.submit(arg)
	case "QUIT":
		s.reply("221 bye")
		return false
	}
	return s.reply(fmt.Sprintf("502 expected PING, SUBMIT <text> or QUIT, got %q", verb))
}

func (s lineSession) submit(text string) bool {
	if text == "" {
		return s.reply("501 expected SUBMIT <text>")
	}
	if s.fault().Kind == FaultWrongBody {
		return s.reply("250 ok")
	}
	rs := s.li.rs
	id := newID()
	if rs.productFault("logs") != FaultStale {
		m, _ := json.Marshal(text) // a string always encodes
		rs.logs.put(id, record{fields: map[string]json.RawMessage{"m": m}, readableAt: time.Now().Add(rs.p.ingestDelay)})
	}
	return s.reply("250 ok " + id)
}

func (s lineSession) fault() Fault {
	f, _ := s.li.rs.p.faultTable().resolve(s.li.rs.name, "")
	return f
}

// reply writes line as the region's faults allow, and reports whether the
// connection stays open. A hang blocks until the client or the platform goes.
func (s lineSession) reply(line string) bool {
	f := s.fault()
	if f.Kind == FaultHang {
		s.hang()
		return false
	}
	delay := f.Delay
	if f.Kind == FaultSlow && delay == 0 {
		delay = defaultSlowDelay
	}
	if !pause(s.ctx, delay) {
		return false
	}
	switch f.Kind {
	case FaultDown:
		return false
	case FaultError:
		line = "554 unavailable"
	}
	return s.write(line)
}

func (s lineSession) write(line string) bool {
	_ = s.conn.SetWriteDeadline(time.Now().Add(lineWriteTimeout))
	_, err := s.conn.Write([]byte(line + "\r\n"))
	return err == nil
}

// closeGently sends FIN and discards what the client still sends for a moment:
// closing with unread input would send a reset, which can destroy the last
// answer before the client reads it.
func (s lineSession) closeGently() {
	if tcp, ok := s.conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, s.conn)
}

// hang reads and discards until the client closes, goes idle, or the platform
// closes (which closes conn), so the client sees an open connection that never answers.
func (s lineSession) hang() {
	buf := make([]byte, 512)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(lineIdleTimeout))
		if _, err := s.conn.Read(buf); err != nil {
			return
		}
	}
}
