package notify

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRetryAfter: whatever a receiver puts in Retry-After, the wait is between 0 and
// MaxRetryAfter; only delay-seconds (digits) or an HTTP date asks for one (anything else
// is ignored, not guessed at); and a wait written back either way reads the same.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, seed := range []string{
		"120", " 5 ", "0", "-3", "later", "999999999", "99999999999999999999999", "-99999999999999999999999",
		now.Add(90 * time.Second).Format(http.TimeFormat),        // IMF-fixdate, as PagerDuty and Slack send it
		"Monday, 02-Mar-26 10:01:30 GMT",                         // RFC 850, obsolete but allowed
		"Mon Mar  2 10:01:30 2026",                               // ANSI C asctime, likewise
		now.Add(-time.Hour).Format(http.TimeFormat), "+5", "1.5", // past; signs and fractions are no delay-seconds
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := retryAfter(http.Header{"Retry-After": {v}}, now)
		if got < 0 || got > MaxRetryAfter {
			t.Fatalf("Retry-After %q: wait %s, want 0 to %s", v, got, MaxRetryAfter)
		}
		trimmed := strings.TrimSpace(v)
		if digits(trimmed) {
			if want := digitsWait(trimmed); got != want {
				t.Fatalf("Retry-After %q: wait %s, want %s", v, got, want)
			}
		} else if _, err := http.ParseTime(trimmed); err != nil && got != 0 {
			t.Fatalf("Retry-After %q is neither delay-seconds nor an HTTP date, yet asked for %s", v, got)
		}
		if got == 0 || got%time.Second != 0 {
			return
		}
		secs := strconv.FormatInt(int64(got/time.Second), 10)
		date := now.Add(got).Format(http.TimeFormat)
		for _, back := range []string{secs, date} {
			if again := retryAfter(http.Header{"Retry-After": {back}}, now); again != got {
				t.Fatalf("Retry-After %q gave %s; written back as %q it gave %s", v, got, back, again)
			}
		}
	})
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// digitsWait is what delay-seconds ask for: that many seconds, at most MaxRetryAfter.
func digitsWait(s string) time.Duration {
	s = strings.TrimLeft(s, "0")
	capSecs := strconv.Itoa(int(MaxRetryAfter / time.Second))
	if len(s) > len(capSecs) || (len(s) == len(capSecs) && s >= capSecs) {
		return MaxRetryAfter
	}
	n, _ := strconv.Atoi(s) // "" (all zeros) is 0
	return time.Duration(n) * time.Second
}
