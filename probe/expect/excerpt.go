package expect

import (
	"unicode"
	"unicode/utf8"
)

const ellipsis = "…"

// Excerpt returns a short excerpt of body for failure messages: at most n bytes, valid
// UTF-8, control characters (and line separators, bidi controls) replaced by a space,
// invalid bytes by U+FFFD, and ending in "…" when cut. The prober redacts secrets
// afterwards.
func Excerpt(body []byte, n int) string {
	if n <= 0 {
		return ""
	}
	out := make([]byte, 0, min(n, len(body)+len(ellipsis)))
	// fitsWithEllipsis is how much of out may stay if the body turns out longer than n.
	fitsWithEllipsis := 0
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		piece := displayRune(r)
		if len(out)+utf8.RuneLen(piece) > n {
			if n < len(ellipsis) { // no room to say it was cut
				return string(out)
			}
			return string(out[:fitsWithEllipsis]) + ellipsis
		}
		out = utf8.AppendRune(out, piece)
		if len(out) <= n-len(ellipsis) {
			fitsWithEllipsis = len(out)
		}
		i += size
	}
	return string(out)
}

// displayRune maps what cannot be shown on one line of a page or a log to a space: C0/C1
// controls, line and paragraph separators, and bidi controls (which can make a log line
// read differently from what it holds). DecodeRune already turned invalid bytes into
// utf8.RuneError.
func displayRune(r rune) rune {
	if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
		return ' '
	}
	return r
}
