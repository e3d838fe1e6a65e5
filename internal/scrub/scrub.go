// Package scrub decides what of a text from the outside world, or one that may hold a
// secret, can be shown: excerpts (short, one line, printable) and redaction (every
// secret replaced by one marker). Config, the prober, the notifiers and the status
// page all use it, so a secret looks the same wherever it was kept out.
package scrub

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Marker replaces a secret wherever it would appear: plain ASCII with nothing to
// escape in HTML, JSON or a log line, so a scrubbed page or answer stays well formed.
const Marker = "[redacted]"

// MinSecretLen is the shortest value that can be a secret: a one- or two-letter one
// would blank out ordinary text, so config refuses them and redaction skips them.
const MinSecretLen = 3

const ellipsis = "…"

// Excerpt returns at most n bytes of body on one line, for failure messages and logs:
// valid UTF-8 (invalid bytes become U+FFFD), control characters, line separators and
// bidi controls as spaces, runs of spaces as one, trimmed, and ending in "…" when cut.
// It reads no more of body than it shows, so a huge body costs no more than a short
// one. Redact before or after; the marker survives either way.
func Excerpt(body []byte, n int) string {
	if n <= 0 {
		return ""
	}
	out := make([]byte, 0, min(n, len(body)+len(ellipsis)))
	fits := 0 // how much of out may stay, if the body turns out longer than n
	space := false
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		i += size
		r = displayRune(r)
		if unicode.IsSpace(r) {
			space = len(out) > 0
			continue
		}
		need := utf8.RuneLen(r)
		if space {
			need++
		}
		if len(out)+need > n {
			if n < len(ellipsis) { // no room to say it was cut
				return string(out)
			}
			return strings.TrimRight(string(out[:fits]), " ") + ellipsis
		}
		if space {
			out, space = append(out, ' '), false
		}
		out = utf8.AppendRune(out, r)
		if len(out) <= n-len(ellipsis) {
			fits = len(out)
		}
	}
	return string(out)
}

// displayRune maps what cannot be shown on one line of a page or a log to a space: C0
// and C1 controls, line and paragraph separators, and bidi controls (which can make a
// log line read differently from what it holds).
func displayRune(r rune) rune {
	if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
		return ' '
	}
	return r
}
