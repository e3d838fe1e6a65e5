package expect

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestExcerpt(t *testing.T) {
	tests := []struct {
		name string
		body string
		n    int
		want string
	}{
		{name: "short", body: "hello", n: 10, want: "hello"},
		{name: "exactly n", body: "hello", n: 5, want: "hello"},
		{name: "cut", body: "hello world", n: 8, want: "hello…"},
		{name: "cut to ellipsis only", body: "abcd", n: 3, want: "…"},
		{name: "no room for ellipsis", body: "abcd", n: 2, want: "ab"},
		{name: "zero", body: "abc", n: 0, want: ""},
		{name: "negative", body: "abc", n: -1, want: ""},
		{name: "empty body", body: "", n: 5, want: ""},
		{name: "utf8 not split", body: "ééé", n: 5, want: "é…"},
		{name: "utf8 fits exactly", body: "ééé", n: 6, want: "ééé"},
		{name: "utf8 cut before multibyte", body: "aé€x", n: 6, want: "aé…"},
		{name: "control characters", body: "a\nb\tc\x00d\x7f\u0085e", n: 20, want: "a b c d  e"},
		{name: "line separator and bidi", body: "a\u2028b\u202ec", n: 20, want: "a b c"},
		{name: "invalid utf8", body: "a\xffb", n: 10, want: "a\uFFFDb"},
		{name: "invalid utf8 cut", body: "\xff\xff\xff", n: 6, want: "\uFFFD\uFFFD\uFFFD"[:3] + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Excerpt([]byte(tt.body), tt.n)
			if got != tt.want {
				t.Errorf("Excerpt(%q, %d) = %q, want %q", tt.body, tt.n, got, tt.want)
			}
			checkExcerpt(t, got, tt.n)
		})
	}
}

// checkExcerpt asserts what Excerpt promises for any input.
func checkExcerpt(t *testing.T, got string, n int) {
	t.Helper()
	if len(got) > max(n, 0) {
		t.Errorf("Excerpt = %q: %d bytes, over %d", got, len(got), n)
	}
	if !utf8.ValidString(got) {
		t.Errorf("Excerpt = %q: not valid UTF-8", got)
	}
	if i := strings.IndexFunc(got, unicode.IsControl); i >= 0 {
		t.Errorf("Excerpt = %q: control character at %d", got, i)
	}
}
