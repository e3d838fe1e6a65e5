package notify

// The notifiers' packages test these helpers against real servers; this file pins
// down the edges. It has no TestMain: the package's goleak TestMain belongs with the
// outbox's tests, and nothing here starts a goroutine.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/picket-dev/picket/internal/scrub"
)

func TestClassifyStatuses(t *testing.T) {
	for status := 100; status <= 599; status++ {
		err := Classify(status, []byte("body"), nil)
		switch {
		case status >= 200 && status <= 299:
			if err != nil {
				t.Errorf("%d: %v, want nil", status, err)
			}
		case status == 408 || status == 429 || status >= 500:
			if err == nil || IsPermanent(err) {
				t.Errorf("%d: %v, want retryable", status, err)
			}
		default:
			if !IsPermanent(err) {
				t.Errorf("%d: %v, want permanent", status, err)
			}
		}
		var se *StatusError
		if err != nil && (!errors.As(err, &se) || se.Status != status || !strings.Contains(err.Error(), fmt.Sprint(status))) {
			t.Errorf("%d: %v does not say its status", status, err)
		}
	}
}

func TestClassifyRetryAfter(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name, header string
		status       int
		want         time.Duration
		slack        time.Duration // an HTTP date has whole seconds
	}{
		{"seconds", "120", 429, 2 * time.Minute, 0},
		{"seconds with 503", " 5 ", 503, 5 * time.Second, 0},
		{"zero", "0", 429, 0, 0},
		{"negative", "-3", 429, 0, 0},
		{"signed", "+5", 429, 0, 0}, // not delay-seconds (FuzzRetryAfter)
		{"garbage", "later", 429, 0, 0},
		{"capped", "999999999", 429, MaxRetryAfter, 0},
		{"overflowing", "99999999999999999999999", 429, MaxRetryAfter, 0},
		{"overflowing negative", "-99999999999999999999999", 429, 0, 0},
		{"date", now.Add(90 * time.Second).UTC().Format(http.TimeFormat), 503, 90 * time.Second, 2 * time.Second},
		{"date past", now.Add(-time.Hour).UTC().Format(http.TimeFormat), 503, 0, 0},
		{"date far", now.Add(48 * time.Hour).UTC().Format(http.TimeFormat), 503, MaxRetryAfter, 0},
		{"ignored on a permanent status", "10", 400, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Classify(tc.status, nil, http.Header{"Retry-After": {tc.header}})
			got := RetryAfter(err)
			if got < tc.want-tc.slack || got > tc.want {
				t.Errorf("RetryAfter(%q) = %s, want %s (-%s)", tc.header, got, tc.want, tc.slack)
			}
			if tc.status != 400 && IsPermanent(err) {
				t.Errorf("%v: want retryable", err)
			}
		})
	}
}

func TestClassifyQuotesAShortExcerpt(t *testing.T) {
	body := []byte("line one\r\n\tline\x00two \u202e" + strings.Repeat("é", 300) + "\xff")
	err := Classify(400, body, nil)
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("%v is not a StatusError", err)
	}
	if len(se.Excerpt) > MaxExcerptBytes || !utf8.ValidString(se.Excerpt) || !strings.HasPrefix(se.Excerpt, "line one line two é") ||
		!strings.HasSuffix(se.Excerpt, "…") || strings.ContainsAny(se.Excerpt, "\r\n\t\x00\u202e") {
		t.Errorf("excerpt %q (%d bytes): want one clean line of at most %d bytes", se.Excerpt, len(se.Excerpt), MaxExcerptBytes)
	}
}

func TestTransportErrorStripsTheURL(t *testing.T) {
	const secret = "T000/B000/SECRETTOKEN"
	cases := []struct {
		name  string
		inner error
		cause string
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "connection refused"},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, "connection reset"},
		{"deadline", context.DeadlineExceeded, "timed out"},
		{"canceled", context.Canceled, "canceled"},
		{"dns", &net.DNSError{Err: "no such host", Name: "hooks.example", IsNotFound: true}, "name lookup failed"},
	}
	for _, tc := range cases {
		err := TransportError(&url.Error{Op: "Post", URL: "https://hooks.example/services/" + secret, Err: tc.inner})
		if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), tc.cause) || IsPermanent(err) {
			t.Errorf("%s: %q, want a retryable error saying %q without the URL", tc.name, err, tc.cause)
		}
		if !errors.Is(err, tc.inner) {
			t.Errorf("%s: %v does not wrap its cause", tc.name, err)
		}
	}
	if TransportError(nil) != nil {
		t.Errorf("TransportError(nil) is not nil")
	}
}

func TestURLSecretsAreRedacted(t *testing.T) {
	secrets := URLSecrets("https://user:pa55word@hooks.example/services/T0/B0/0123456789abcdefXYZ?token=t0k3n-v4lue&x=1")
	text := scrub.Redact("pa55word user:pa55word /services/T0/B0/0123456789abcdefXYZ 0123456789abcdefXYZ t0k3n-v4lue services x=1", secrets...)
	if text != "[redacted] [redacted] [redacted] [redacted] [redacted] services x=1" {
		t.Errorf("URL parts not redacted, or too much: %q", text)
	}
}

func TestScrubKeepsTheClass(t *testing.T) {
	const secret = "s3cr3t-value"
	leaky := fmt.Errorf("sent %s", secret)
	cases := []struct {
		name      string
		err       error
		permanent bool
		wait      time.Duration
	}{
		{"retryable", fmt.Errorf("x: %w", leaky), false, 0},
		{"permanent", fmt.Errorf("x: %w", Permanent(leaky)), true, 0},
		{"retry after", fmt.Errorf("x: %w", &RetryAfterError{After: 3 * time.Second, Err: leaky}), false, 3 * time.Second},
	}
	for _, tc := range cases {
		got := Scrub(tc.err, secret)
		if strings.Contains(got.Error(), secret) || !strings.Contains(got.Error(), "x: sent [redacted]") ||
			IsPermanent(got) != tc.permanent || RetryAfter(got) != tc.wait {
			t.Errorf("%s: Scrub = %q (permanent %v, wait %s)", tc.name, got, IsPermanent(got), RetryAfter(got))
		}
		if strings.Count(got.Error(), "retry after") > 1 {
			t.Errorf("%s: wait said twice: %q", tc.name, got)
		}
	}
	clean := Permanent(errors.New("nothing secret"))
	if Scrub(clean, secret) != clean {
		t.Errorf("Scrub rebuilt an error that held no secret")
	}
}

func TestPostJSONRefusesBadURLsWithoutQuotingThem(t *testing.T) {
	for _, raw := range []string{"http://[::1/SECRET", "ftp://127.0.0.1/SECRET", "/relative/SECRET", "http:///SECRET"} {
		err := PostJSON(t.Context(), &http.Client{}, raw, nil, nil, nil)
		if !IsPermanent(err) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: %v, want a permanent error without the URL", raw, err)
		}
	}
}
