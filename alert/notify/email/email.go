// Package email sends notifications as plain-text mail through one SMTP server
// (submission with STARTTLS on 587 by default, implicit TLS on 465, or none), with
// PLAIN or LOGIN authentication. Every mail of one incident carries the same
// References, so mail clients thread its updates and resolve under its first mail.
//
// The SMTP client is the standard library's net/smtp: it is frozen but complete for
// one submission, and it keeps the client independent of the server the tests talk
// to (github.com/emersion/go-smtp), so a misreading of the protocol cannot hide on
// both sides. The password is the credential: no error and no log line carries it.
// A 4xx reply is retried (by the outbox), a 5xx reply is refused for good.
package email

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
)

// Kind is what Kind returns.
const Kind = "email"

// Options are what the caller injects.
type Options struct {
	Logger *slog.Logger // nil: discard
	// TLSConfig verifies the server; nil: the system roots and the configured host
	// name. Tests pass their own CA.
	TLSConfig *tls.Config
	// LocalName is what EHLO says; "" means "localhost", as net/smtp does.
	LocalName string
}

// Notifier mails one list of recipients through one server. Safe for concurrent use:
// each Notify is a connection of its own.
type Notifier struct {
	notify.Channel // name, kind, limits, logger, misconfig
	cfg            config.Email
	password       string
	from           *mail.Address
	to             []*mail.Address
	tlsConfig      *tls.Config
	localName      string
}

// New builds a notifier from its config. A config that is not an email one yields a
// notifier whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, cfg.Email != nil, notify.ChannelOptions{Logger: opts.Logger})}
	if n.Misconfig != nil {
		return n
	}
	n.cfg, n.password, n.localName = *cfg.Email, cfg.Email.Password.Reveal(), opts.LocalName
	var err error
	if n.from, err = mail.ParseAddress(n.cfg.From); err != nil {
		n.Misconfig = notify.Permanent(fmt.Errorf("email %s: from: %w", cfg.Name, err))
	}
	for _, raw := range n.cfg.To {
		addr, err := mail.ParseAddress(raw)
		if err != nil {
			n.Misconfig = notify.Permanent(fmt.Errorf("email %s: to: %w", cfg.Name, err))
			break
		}
		n.to = append(n.to, addr)
	}
	n.tlsConfig = opts.TLSConfig
	if n.tlsConfig == nil {
		n.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	n.tlsConfig = n.tlsConfig.Clone()
	if n.tlsConfig.ServerName == "" {
		n.tlsConfig.ServerName = n.cfg.Host
	}
	return n
}

// Identity names where the mail goes (server, account, sender, recipients), hashed:
// "" for a misconfigured notifier, which reaches nothing.
func (n *Notifier) Identity() string {
	return n.IdentityOf(n.addr(), n.cfg.Username, n.cfg.From, strings.Join(n.cfg.To, ","))
}

func (n *Notifier) addr() string { return net.JoinHostPort(n.cfg.Host, strconv.Itoa(n.cfg.Port)) }

// Notify mails one notification: one SMTP session, bounded by ctx.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send, n.password)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	if msg.Action != notify.ActionTrigger && msg.Action != notify.ActionResolve {
		return notify.Permanent(fmt.Errorf("email %s: expected action %s or %s, got %q", n.Name(), notify.ActionTrigger, notify.ActionResolve, msg.Action))
	}
	data := Compose(msg, n.from, n.to, n.cfg.SubjectPrefix, time.Now())
	if err := n.deliver(ctx, data); err != nil {
		return fmt.Errorf("email %s: %s %s via %s: %w", n.Name(), msg.Action, msg.DedupKey, n.addr(), err)
	}
	return nil
}

// deliver runs one session: connect (TLS at once for implicit), EHLO, STARTTLS,
// AUTH, MAIL, RCPT for each recipient, DATA, QUIT. ctx's deadline is the
// connection's, and its end closes the connection.
func (n *Notifier) deliver(ctx context.Context, data []byte) error {
	conn, err := n.dial(ctx)
	if err != nil {
		return notify.TransportError(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, n.cfg.Host)
	if err != nil {
		return n.classify(ctx, "greeting", err)
	}
	defer c.Close()
	if err := n.open(c); err != nil {
		return n.classify(ctx, "session", err)
	}
	if err := n.transfer(c, data); err != nil {
		return n.classify(ctx, "sending", err)
	}
	return nil
}

func (n *Notifier) dial(ctx context.Context) (net.Conn, error) {
	if n.cfg.TLS == config.EmailImplicit {
		d := &tls.Dialer{Config: n.tlsConfig}
		return d.DialContext(ctx, "tcp", n.addr())
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", n.addr())
}

// open says hello, upgrades to TLS and authenticates. A server that does not offer
// STARTTLS is refused for good: the password and the incident must not travel in
// the clear because a server (or someone on the path) left STARTTLS out.
func (n *Notifier) open(c *smtp.Client) error {
	if err := c.Hello(cmp.Or(n.localName, "localhost")); err != nil {
		return err
	}
	if n.cfg.TLS == config.EmailStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return notify.Permanent(errors.New("expected the server to offer STARTTLS, it does not (tls: none, if it really must be in the clear)"))
		}
		if err := c.StartTLS(n.tlsConfig); err != nil {
			return err
		}
	}
	if n.cfg.Username == "" {
		return nil
	}
	auth, err := n.auth(c)
	if err != nil {
		return notify.Permanent(err)
	}
	return c.Auth(auth)
}

// auth picks the mechanism: the configured one, else PLAIN when offered, else LOGIN.
func (n *Notifier) auth(c *smtp.Client) (smtp.Auth, error) {
	ok, offered := c.Extension("AUTH")
	if !ok {
		return nil, errors.New("expected the server to offer AUTH, it does not")
	}
	mechs := strings.Fields(strings.ToUpper(offered))
	mech := strings.ToUpper(n.cfg.Auth)
	switch {
	case mech != "":
	case slices.Contains(mechs, "PLAIN"):
		mech = "PLAIN"
	case slices.Contains(mechs, "LOGIN"):
		mech = "LOGIN"
	default:
		return nil, fmt.Errorf("expected the server to offer AUTH PLAIN or LOGIN, it offers %s", scrub.Excerpt([]byte(offered), 80))
	}
	if mech == "LOGIN" {
		return &loginAuth{username: n.cfg.Username, password: n.password, host: n.cfg.Host}, nil
	}
	return smtp.PlainAuth("", n.cfg.Username, n.password, n.cfg.Host), nil
}

func (n *Notifier) transfer(c *smtp.Client, data []byte) error {
	if err := c.Mail(n.from.Address); err != nil {
		return err
	}
	for _, to := range n.to {
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("recipient %s: %w", to.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil { // the server's reply to the whole message
		return err
	}
	// Accepted once DATA's reply came; a QUIT that fails does not undo that.
	_ = c.Quit()
	return nil
}

// classify maps a failure to the retry contract: an SMTP reply by its class (4xx
// transient, 5xx permanent), an error already marked Permanent as it is, anything
// else (a reset, a timeout, a TLS failure) as a retryable transport error.
func (n *Notifier) classify(ctx context.Context, step string, err error) error {
	var reply *textproto.Error
	switch {
	case notify.IsPermanent(err):
		return err
	case errors.As(err, &reply):
		text := fmt.Sprintf("%s: the server replied %d %s", step, reply.Code, scrub.Excerpt([]byte(scrub.Redact(reply.Msg, n.password)), notify.MaxExcerptBytes))
		if reply.Code >= 500 {
			return notify.Permanent(errors.New(text))
		}
		return errors.New(text)
	case ctx.Err() != nil:
		return notify.TransportError(fmt.Errorf("%s: %w (%w)", step, ctx.Err(), err))
	case isClientRefusal(err):
		return notify.Permanent(fmt.Errorf("%s: %w", step, err))
	}
	return notify.TransportError(fmt.Errorf("%s: %w", step, err))
}

// isClientRefusal: net/smtp's own refusals (PLAIN over a connection without TLS, a
// server name that is not the host), which the same config would meet again.
func isClientRefusal(err error) bool {
	msg := err.Error()
	return msg == "unencrypted connection" || msg == "wrong host name"
}
