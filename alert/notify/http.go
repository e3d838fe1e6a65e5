package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/picket-dev/picket/internal/scrub"
)

// Limits shared by the HTTP notifiers.
const (
	// MaxAnswerBytes bounds how much of a receiver's answer is read: answers worth
	// reading ("ok", a JSON status) are tiny, and a broken proxy must not make a
	// notifier buffer megabytes.
	MaxAnswerBytes = 64 << 10
	// MaxExcerptBytes bounds the part of an answer quoted in an error.
	MaxExcerptBytes = 200
	// MaxRetryAfter caps what a Retry-After header may ask for, so that a confused
	// receiver cannot park a page for a day.
	MaxRetryAfter = time.Hour
	// UserAgent is sent by every notifier.
	UserAgent = "picket"
)

// StatusError is a receiver's answer outside 2xx. Excerpt is a short, single-line,
// redacted part of its body (or the receiver's own error list), for the on-call to read.
type StatusError struct {
	Status  int
	Excerpt string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("expected a 2xx answer, got %d %s", e.Status, http.StatusText(e.Status))
	if e.Status >= 300 && e.Status <= 399 {
		msg += " (redirects are not followed: configure the final URL)"
	}
	if e.Excerpt != "" {
		msg += ": " + e.Excerpt
	}
	return msg
}

// Classify turns a receiver's answer into nil (2xx), a retryable error (408, 429, 5xx;
// a *RetryAfterError when Retry-After asks for a wait) or a Permanent one (anything
// else: the same request would fail the same way). body must already be redacted: it
// is quoted (at most MaxExcerptBytes of it).
func Classify(status int, body []byte, header http.Header) error {
	if status >= 200 && status <= 299 {
		return nil
	}
	return ClassifyExcerpt(status, scrub.Excerpt(body, MaxExcerptBytes), header)
}

// ClassifyExcerpt is Classify for a caller that has already made the excerpt (for
// instance from a JSON error list); status must not be 2xx.
func ClassifyExcerpt(status int, excerpt string, header http.Header) error {
	err := error(&StatusError{Status: status, Excerpt: excerpt})
	if !RetryableStatus(status) {
		return Permanent(err)
	}
	if wait := retryAfter(header, time.Now()); wait > 0 {
		return &RetryAfterError{After: wait, Err: err}
	}
	return err
}

// RetryableStatus reports whether a non-2xx status is worth another try: the
// receiver timed out (408), throttled (429) or failed on its side (5xx).
func RetryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests ||
		(status >= 500 && status <= 599)
}

// retryAfter reads Retry-After as delay-seconds or an HTTP date; 0 when absent, invalid
// or already past, capped at MaxRetryAfter.
func retryAfter(header http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if delaySeconds(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if errors.Is(err, strconv.ErrRange) || secs >= int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // (digits beyond int64 too: "very long")
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(at.Sub(now), 0), MaxRetryAfter)
}

// delaySeconds: only digits (RFC 9110's 1*DIGIT). ParseInt alone would also take a sign,
// and a receiver that sends "+5" or "-5" says something we do not understand.
func delaySeconds(v string) bool {
	return strings.Trim(v, "0123456789") == ""
}

// TransportError describes a request that got no answer (refused, reset, timed out,
// DNS, TLS). It is always retryable. A *url.Error is stripped to its Err, since its
// URL may be the credential (Slack, webhooks); what remains names at most host:port.
// ctx errors stay visible to errors.Is.
func TransportError(err error) error {
	if err == nil {
		return nil
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("expected an answer, got none (%s): %w", transportCause(err), err)
}

// transportCause names the failure in the words an on-call would search for.
func transportCause(err error) string {
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "name lookup failed"
	}
	return "transport failure"
}

// URLSecrets lists the parts of a URL that carry its credential, for Redact: the whole
// URL, its path, query and user info, since an answer may echo any of them ("Cannot
// POST /services/T000/B000/XXXX"), and the token-like pieces an answer may quote
// alone: path segments of 16 bytes or more and query values of 8 or more (shorter ones
// are words such as "hooks" that would blank out ordinary text).
func URLSecrets(raw string) []string {
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	out = append(out, u.Path, u.RawPath, u.RawQuery)
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= minTokenSegment {
			out = append(out, seg)
		}
	}
	for _, values := range u.Query() {
		for _, v := range values {
			if len(v) >= minTokenQueryValue {
				out = append(out, v)
			}
		}
	}
	if u.User != nil {
		out = append(out, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	return out
}

const (
	minTokenSegment    = 16
	minTokenQueryValue = 8
)

// Scrub is a notifier's last line of defence: if err's text quotes a secret anyway (an
// echo nobody foresaw), it returns an error with the same text redacted that keeps
// err's class (Permanent, Retry-After) but not its chain, which holds the secret.
// Otherwise it returns err as is.
func Scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	clean := scrub.Redact(text, secrets...)
	if clean == text {
		return err
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		// RetryAfterError prints its wait last; keep it once.
		clean = strings.TrimSuffix(clean, fmt.Sprintf(" (retry after %s)", ra.After))
		return &RetryAfterError{After: ra.After, Err: errors.New(clean)}
	}
	if IsPermanent(err) {
		return Permanent(errors.New(clean))
	}
	return errors.New(clean)
}

// NoRedirects is an http.Client CheckRedirect that stops at the first 3xx: a notifier
// must not re-send an alert (as a GET, after a 302) to wherever it is told, nor quote
// a Location that may carry the credential. The 3xx is then classified as permanent.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NewHTTPClient is the client a notifier uses when none is injected: its own transport
// (proxy from the environment), no redirects, and no timeout of its own, since the
// ctx deadline is the timeout.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.IdleConnTimeout = 30 * time.Second
	return &http.Client{Transport: tr, CheckRedirect: NoRedirects}
}

// PostJSON posts body as JSON to rawURL and classifies the answer (Classify, or
// TransportError when none came). header is added last, so it may override the
// defaults (Content-Type, User-Agent "picket"). Errors never quote rawURL, which may be
// the credential; secrets are redacted from the answer before it is quoted. The answer
// is read up to MaxAnswerBytes and the body always closed.
func PostJSON(ctx context.Context, client *http.Client, rawURL string, body []byte, header http.Header, secrets []string) error {
	_, err := PostJSONAnswer(ctx, client, rawURL, body, header, secrets)
	return err
}

// PostJSONAnswer is PostJSON that also returns the accepted (2xx) answer, for an API
// that says in it what it did (Slack's {"ok": false, "error": ...}). The answer is
// not redacted: the caller reads it and must not quote it whole.
func PostJSONAnswer(ctx context.Context, client *http.Client, rawURL string, body []byte, header http.Header, secrets []string) ([]byte, error) {
	if u, err := url.Parse(rawURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error quotes the URL: say what is wrong without it.
		return nil, Permanent(errors.New("expected an absolute http:// or https:// URL, got something else (not shown: it is the credential)"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(errors.New("expected to build a POST request, could not (the URL is not shown: it is the credential)"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	for name, values := range header {
		req.Header[http.CanonicalHeaderKey(name)] = values
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, Scrub(TransportError(err), secrets...)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes))
	if err != nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// 2xx, but the answer broke off: nothing says the receiver kept it. (A
		// failure status is a failure however much of its body came.)
		return nil, Scrub(TransportError(fmt.Errorf("read answer to status %d: %w", resp.StatusCode, err)), secrets...)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return answer, nil // accepted: the answer is not quoted, so nothing to redact
	}
	return nil, Scrub(Classify(resp.StatusCode, []byte(scrub.Redact(string(answer), secrets...)), resp.Header), secrets...)
}
