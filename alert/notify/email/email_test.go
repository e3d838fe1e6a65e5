package email

import (
	"context"
	"crypto/tls"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/apitest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var opened = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

type setup struct {
	tls, auth, password string
	port                int
	trust               bool // the test CA; false: the system roots
}

func newMailer(t *testing.T, f *fakeSMTP, s setup, opts Options) *Notifier {
	t.Helper()
	port := s.port
	if port == 0 {
		port = f.port
	}
	if s.password == "" {
		s.password = smtpPass
	}
	cfg := &config.Notifier{Name: "mail", Timeout: 3 * time.Second, Email: &config.Email{
		Host: f.host, Port: port, TLS: s.tls, Username: smtpUser, Password: config.NewSecret(s.password), Auth: s.auth,
		From: "Picket <picket@example.test>", To: []string{"oncall@example.test", "Ops <ops@example.test>"},
	}}
	if s.trust {
		opts.TLSConfig = &tls.Config{RootCAs: f.ca, MinVersion: tls.VersionTLS12}
	}
	return New(cfg, opts)
}

func trigger() notify.Notification {
	return notify.Notification{
		ID: "n1", Action: notify.ActionTrigger, DedupKey: "picket/region/eu1", Scope: "region", Subject: "eu1",
		Summary: "[REGION eu1] 2 of 3 products down", Severity: notify.SeverityCritical, Source: "vantage-fra", Group: "eu1",
		Details: map[string]any{
			"targets":  []any{map[string]any{"target": "web/checkout@eu1", "status": "down", "since": "2026-01-02T03:04:05Z", "error": "connect: connection refused"}},
			"products": []any{"web", "logs"},
		},
		Links:   []notify.Link{{Href: "https://status.example/incidents/1", Text: "timeline"}},
		Created: opened.Add(time.Minute), Opened: opened,
	}
}

func body(t *testing.T, data []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

func TestSTARTTLSWithPlainAuthDelivers(t *testing.T) {
	f := startSMTP(t, "starttls")
	if err := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{}).Notify(t.Context(), trigger()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	got := f.messages()
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	m := got[0]
	if !m.TLS || m.AuthMech != "PLAIN" || m.From != "picket@example.test" || strings.Join(m.To, ",") != "oncall@example.test,ops@example.test" {
		t.Errorf("session: TLS %v mech %s from %s to %v", m.TLS, m.AuthMech, m.From, m.To)
	}
	h := header(t, m.Data)
	if h.Get("Subject") != "[Picket] [REGION eu1] 2 of 3 products down" || h.Get("Auto-Submitted") != "auto-generated" ||
		h.Get("X-Picket-Dedup-Key") != "picket/region/eu1" || h.Get("To") != `<oncall@example.test>, "Ops" <ops@example.test>` {
		t.Errorf("header %v", h)
	}
	if date, err := h.Date(); err != nil || !date.Equal(opened.Add(time.Minute)) {
		t.Errorf("Date %v (%v), want the notification's time", date, err)
	}
	text := body(t, m.Data)
	for _, want := range []string{"Status:   FIRING", "Scope:    region eu1", "web/checkout@eu1 down since 2026-01-02T03:04:05Z: connect: connection refused",
		"timeline: https://status.example/incidents/1", "products: [web logs]", "Dedup key: picket/region/eu1"} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
}

func TestLoginAuth(t *testing.T) {
	f := startSMTP(t, "starttls")
	f.offer("LOGIN") // Microsoft 365 style: LOGIN only
	if err := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{}).Notify(t.Context(), trigger()); err != nil {
		t.Fatalf("LOGIN offered alone: %v", err)
	}
	f.offer("PLAIN", "LOGIN")
	if err := newMailer(t, f, setup{tls: config.EmailStartTLS, auth: "login", trust: true}, Options{}).Notify(t.Context(), trigger()); err != nil {
		t.Fatalf("auth: login: %v", err)
	}
	for i, m := range f.messages() {
		if m.AuthMech != "LOGIN" {
			t.Errorf("message %d authenticated with %s, want LOGIN", i, m.AuthMech)
		}
	}
	f.offer("CRAM-MD5")
	err := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{}).Notify(t.Context(), trigger())
	if apitest.OutcomeOf(err) != apitest.Permanent || !strings.Contains(err.Error(), "CRAM-MD5") {
		t.Errorf("no usable mechanism: %v, want permanent naming what is offered", err)
	}
}

func TestImplicitTLS(t *testing.T) {
	f := startSMTP(t, "implicit")
	if err := newMailer(t, f, setup{tls: config.EmailImplicit, trust: true}, Options{}).Notify(t.Context(), trigger()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if m := f.messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("messages %+v, want one over TLS", m)
	}
}

// TestNoSTARTTLSIsRefused: a server (or a man in the middle) that leaves STARTTLS out
// does not get the password in the clear.
func TestNoSTARTTLSIsRefused(t *testing.T) {
	f := startSMTP(t, "none")
	err := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{}).Notify(t.Context(), trigger())
	if apitest.OutcomeOf(err) != apitest.Permanent || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("no STARTTLS: %v, want permanent", err)
	}
}

func TestAnUntrustedCertificateIsNotTrusted(t *testing.T) {
	f := startSMTP(t, "starttls")
	err := newMailer(t, f, setup{tls: config.EmailStartTLS}, Options{}).Notify(t.Context(), trigger())
	if err == nil || !strings.Contains(err.Error(), "certificate") || len(f.messages()) != 0 {
		t.Errorf("a self-signed certificate: %v, want a TLS failure and nothing sent", err)
	}
}

// TestThreadingAndSubjects: one incident's mails share References; the next incident
// of the key has its own; Message-IDs differ; a resolve says so.
func TestThreadingAndSubjects(t *testing.T) {
	f := startSMTP(t, "starttls")
	n := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{})
	update, resolve, next := trigger(), trigger(), trigger()
	update.ID, update.Summary = "n2", "[REGION eu1] 3 of 3 products down"
	resolve.ID, resolve.Action = "n3", notify.ActionResolve
	next.ID, next.Opened = "n4", opened.Add(time.Hour)
	for _, m := range []notify.Notification{trigger(), update, resolve, next} {
		if err := n.Notify(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	var refs, ids, subjects []string
	for _, m := range f.messages() {
		h := header(t, m.Data)
		refs, ids, subjects = append(refs, h.Get("References")), append(ids, h.Get("Message-ID")), append(subjects, h.Get("Subject"))
	}
	if refs[0] != refs[1] || refs[1] != refs[2] || refs[3] == refs[0] || !strings.HasSuffix(refs[0], "@example.test>") {
		t.Errorf("References %q: want the first three equal, the fourth its own", refs)
	}
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Errorf("Message-IDs repeat: %q", ids)
	}
	if subjects[2] != "[Picket] Resolved: [REGION eu1] 2 of 3 products down" {
		t.Errorf("resolve subject %q", subjects[2])
	}
	if !strings.Contains(body(t, f.messages()[2].Data), "Status:   RESOLVED") {
		t.Error("the resolve's body does not say RESOLVED")
	}
}

// TestHeadersCannotBeInjected: a summary (it quotes probe errors) with CRLF and a
// header does not add one; non-ASCII is encoded and folded within 998 characters.
func TestHeadersCannotBeInjected(t *testing.T) {
	f := startSMTP(t, "starttls")
	msg := trigger()
	msg.Summary = "[TARGET x] down\r\nBcc: evil@elsewhere.test\r\n\r\nforged body"
	msg.DedupKey = "picket/target/x\r\nX-Evil: 1"
	wide := trigger()
	wide.ID, wide.Summary = "n2", strings.Repeat("Ünïcödé ", 300)
	n := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{})
	for _, m := range []notify.Notification{msg, wide} {
		if err := n.Notify(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	got := f.messages()
	h := header(t, got[0].Data)
	if h.Get("Bcc") != "" || h.Get("X-Evil") != "" || h.Get("Subject") != "[Picket] [TARGET x] down Bcc: evil@elsewhere.test forged body" {
		t.Errorf("injected: Bcc %q X-Evil %q Subject %q", h.Get("Bcc"), h.Get("X-Evil"), h.Get("Subject"))
	}
	for _, line := range strings.Split(string(got[1].Data), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("a line of %d characters", len(line))
		}
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(header(t, got[1].Data).Get("Subject"))
	if err != nil || !strings.HasPrefix(subject, "[Picket] [REGION eu1] Ünïcödé Ünïcödé") || len([]rune(subject)) != maxSubjectRunes {
		t.Errorf("subject %q (%v), want the decoded summary cut to %d runes", subject, err, maxSubjectRunes)
	}
}

func TestRetryMatrix(t *testing.T) {
	cases := []struct {
		step string
		code int
		want apitest.Outcome
	}{
		{"auth", 454, apitest.Retryable}, // temporary authentication failure
		{"auth", 535, apitest.Permanent}, // bad credentials
		{"mail", 421, apitest.Retryable}, // service not available, closing
		{"mail", 451, apitest.Retryable}, // local error
		{"mail", 550, apitest.Permanent}, // sender refused
		{"mail", 553, apitest.Permanent}, // sender not allowed for this account
		{"rcpt", 450, apitest.Retryable}, // mailbox busy
		{"rcpt", 452, apitest.Retryable}, // insufficient storage
		{"rcpt", 550, apitest.Permanent}, // no such user
		{"data", 451, apitest.Retryable}, // greylisted
		{"data", 554, apitest.Permanent}, // rejected
	}
	f := startSMTP(t, "starttls")
	n := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{})
	for _, c := range cases {
		f.fail(c.step, c.code, "test says "+strconv.Itoa(c.code))
		err := n.Notify(t.Context(), trigger())
		if got := apitest.OutcomeOf(err); got != c.want || !strings.Contains(apitest.ErrText(err), strconv.Itoa(c.code)) {
			t.Errorf("%s %d: %s (%v), want %s naming the code", c.step, c.code, got, err, c.want)
		}
	}
	if len(f.messages()) != 0 {
		t.Errorf("%d messages accepted despite the faults", len(f.messages()))
	}
	if err := n.Notify(t.Context(), trigger()); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	wrong := newMailer(t, f, setup{tls: config.EmailStartTLS, password: "wrong-password-1", trust: true}, Options{})
	if err := wrong.Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Permanent || !strings.Contains(err.Error(), "535") {
		t.Errorf("a wrong password: %v, want a permanent 535", err)
	}
	refused := newMailer(t, f, setup{tls: config.EmailStartTLS, port: 1, trust: true}, Options{})
	if err := refused.Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Retryable || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused: %v, want retryable", err)
	}
}

// TestAHungServerTimesOut: the attempt's deadline bounds a server that never greets.
func TestAHungServerTimesOut(t *testing.T) {
	f := startSMTP(t, "starttls")
	port, _ := strconv.Atoi(mute(t))
	n := newMailer(t, f, setup{tls: config.EmailStartTLS, port: port, trust: true}, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := n.Notify(ctx, trigger())
	if apitest.OutcomeOf(err) != apitest.Retryable || time.Since(began) > 2*time.Second {
		t.Errorf("a hung server: %v after %s, want retryable within the deadline", err, time.Since(began))
	}
}

// TestPasswordNeverLeaks: a server reply that quotes the password (a careless relay),
// a wrong password, a timeout and the logs.
func TestPasswordNeverLeaks(t *testing.T) {
	f := startSMTP(t, "starttls")
	log, logs := apitest.Logger()
	n := newMailer(t, f, setup{tls: config.EmailStartTLS, trust: true}, Options{Logger: log})
	f.fail("auth", 535, "credentials "+smtpUser+":"+smtpPass+" rejected")
	texts := map[string]string{"echo": apitest.ErrText(n.Notify(t.Context(), trigger()))}
	if !strings.Contains(texts["echo"], scrub.Marker) {
		t.Errorf("the echoed password was not redacted: %s", texts["echo"])
	}
	port, _ := strconv.Atoi(mute(t))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	texts["timeout"] = apitest.ErrText(newMailer(t, f, setup{tls: config.EmailStartTLS, port: port, trust: true}, Options{Logger: log}).Notify(ctx, trigger()))
	texts["logs"] = logs.String()
	apitest.NoLeak(t, smtpPass, texts)
	if n.Identity() == "" || strings.Contains(n.Identity(), smtpPass) {
		t.Errorf("identity %q", n.Identity())
	}
}

func TestOtherConfigsAreNotEmail(t *testing.T) {
	n := New(&config.Notifier{Name: "x", Teams: &config.Teams{}}, Options{})
	if err := n.Notify(t.Context(), trigger()); apitest.OutcomeOf(err) != apitest.Permanent || n.Identity() != "" {
		t.Errorf("a Teams config: %v, identity %q", err, n.Identity())
	}
}

// TestLoginQuotesAnOddPromptAsAnExcerpt: a LOGIN prompt that is neither Username: nor
// Password: is refused, quoting one short line of it (scrub.Excerpt), not its raw bytes.
func TestLoginQuotesAnOddPromptAsAnExcerpt(t *testing.T) {
	a := &loginAuth{username: smtpUser, password: smtpPass, host: "smtp.example.test"}
	_, err := a.Next([]byte("Tell me\r\nyour secret "+strings.Repeat("x", 200)), true)
	if err == nil {
		t.Fatal("an odd prompt was answered")
	}
	msg := err.Error()
	if !strings.Contains(msg, `"Tell me your secret x`) || strings.Contains(msg, `\r\n`) || len(msg) > 120 {
		t.Errorf("error %q: want one short line of the prompt", msg)
	}
}
