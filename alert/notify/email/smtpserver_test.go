package email

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	smtpUser = "picket@example.test"
	smtpPass = "pw-SECRET-9f8e7d6c5b4a"
)

// fakeSMTP is a submission server on loopback (github.com/emersion/go-smtp) that
// behaves as real ones do: STARTTLS offered and AUTH only after it (or implicit TLS),
// PLAIN and LOGIN, MAIL refused before AUTH (530), lines over 998 characters
// refused, a message without From, To, Subject, Date or Message-ID refused (554
// 5.6.0), and replies queued by a test for a step (auth, mail, rcpt, data).
type fakeSMTP struct {
	srv  *smtp.Server
	host string
	port int
	ca   *x509.CertPool

	mu       sync.Mutex
	mechs    []string
	faults   map[string][]*smtp.SMTPError
	received []received
}

// received is one accepted message.
type received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthMech string
}

// startSMTP serves in mode starttls, implicit or none until the test ends.
func startSMTP(t *testing.T, mode string) *fakeSMTP {
	t.Helper()
	cert, ca := testCert(t)
	f := &fakeSMTP{host: "127.0.0.1", ca: ca, mechs: []string{sasl.Plain, sasl.Login}, faults: map[string][]*smtp.SMTPError{}}
	f.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{f: f, conn: c}, nil }))
	f.srv.Domain = "mx.example.test"
	f.srv.MaxLineLength = 1000 // 998 and CRLF
	f.srv.MaxMessageBytes = 1 << 20
	f.srv.MaxRecipients = 50
	f.srv.ReadTimeout, f.srv.WriteTimeout = 5*time.Second, 5*time.Second
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "starttls":
		f.srv.TLSConfig = tlsConfig
	case "implicit":
		ln = tls.NewListener(ln, tlsConfig)
	case "none":
		f.srv.AllowInsecureAuth = false
	}
	f.port = ln.Addr().(*net.TCPAddr).Port
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = f.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = f.srv.Close()
		<-served
	})
	return f
}

// fail queues a reply for the next time a session reaches step.
func (f *fakeSMTP) fail(step string, code int, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	class := code / 100
	f.faults[step] = append(f.faults[step], &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, 0, 0}, Message: msg})
}

func (f *fakeSMTP) fault(step string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.faults[step]; len(q) > 0 {
		f.faults[step] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeSMTP) offer(mechs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mechs = mechs
}

func (f *fakeSMTP) messages() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.received...)
}

type session struct {
	f        *fakeSMTP
	conn     *smtp.Conn
	authMech string
	from     string
	to       []string
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (s *session) AuthMechanisms() []string {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return append([]string(nil), s.f.mechs...)
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if err := s.f.fault("auth"); err != nil {
			return err
		}
		if user != smtpUser || pass != smtpPass {
			return smtp.ErrAuthFailed
		}
		s.authMech = mech
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.authMech == "" {
		return errAuthRequired
	}
	if err := s.f.fault("mail"); err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.f.fault("rcpt"); err != nil {
		return err
	}
	if !strings.HasSuffix(to, "@example.test") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.f.fault("data"); err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message is not RFC 5322: " + err.Error()}
	}
	for _, h := range []string{"From", "To", "Subject", "Date", "Message-ID"} {
		if m.Header.Get(h) == "" {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Missing header " + h}
		}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.f.mu.Lock()
	s.f.received = append(s.f.received, received{From: s.from, To: s.to, Data: data, TLS: isTLS, AuthMech: s.authMech})
	s.f.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// loginServer is the server side of LOGIN, which go-sasl does not have: it prompts
// "Username:" then "Password:", or takes the user name as an initial response.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	haveUser bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case !l.haveUser && response == nil:
		return []byte("Username:"), false, nil
	case !l.haveUser:
		l.user, l.haveUser = string(response), true
		return []byte("Password:"), false, nil
	case response == nil:
		return nil, false, errors.New("LOGIN: expected the password")
	}
	return nil, true, l.check(l.user, string(response))
}

// testCert is a fresh self-signed certificate for 127.0.0.1, and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// mute is a TCP server that accepts and never speaks (a hung relay).
func mute(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// unfold reads a message's header the way a mail client shows it.
func header(t *testing.T, data []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header
}
