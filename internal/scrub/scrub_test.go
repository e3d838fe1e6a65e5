package scrub

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/url"
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
		{name: "control characters", body: "a\nb\tc\x00d\x7f\u0085e", n: 20, want: "a b c d e"},
		{name: "line separator and bidi", body: "a\u2028b\u202ec", n: 20, want: "a b c"},
		{name: "spaces collapsed and trimmed", body: "  line one\r\n\tline two  \n", n: 40, want: "line one line two"},
		{name: "cut at a space", body: "hello world", n: 9, want: "hello…"},
		{name: "invalid utf8", body: "a\xffb", n: 10, want: "a\uFFFDb"},
		{name: "invalid utf8 cut", body: "\xff\xff\xff", n: 6, want: "\uFFFD…"},
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
	if strings.Contains(got, "  ") || strings.TrimSpace(got) != got {
		t.Errorf("Excerpt = %q: runs of spaces, or spaces at an end", got)
	}
}

func FuzzExcerpt(f *testing.F) {
	for _, s := range []string{"", "hello world", "a\nb\tc", "\xff\xfe", "ééé  €", "\u202e x \u2028"} {
		f.Add([]byte(s), 8)
	}
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		n = n % 512
		checkExcerpt(t, Excerpt(body, n), n)
	})
}

// TestExcerptReadsOnlyWhatItShows: a 64 MiB body costs what a short one does.
func TestExcerptReadsOnlyWhatItShows(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 64<<20)
	allocs := testing.AllocsPerRun(5, func() { _ = Excerpt(body, 100) })
	if allocs > 3 {
		t.Errorf("%.0f allocations for an excerpt of a 64 MiB body; want a few (it must not copy the body)", allocs)
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("key abc, key abcdef, word ab", "abc", "abcdef", "ab", ""); got != "key [redacted], key [redacted], word ab" {
		t.Errorf("got %q: want each secret whole, the longest first, and two-letter values left alone", got)
	}
	var none *Redactor
	if got := string(none.Bytes([]byte("x"))) + none.String("y"); got != "xy" {
		t.Errorf("a nil redactor changed text to %q", got)
	}
	if New("ab", "") != nil {
		t.Errorf("New of values too short to be secrets: want nil (nothing to redact)")
	}
}

func TestRedactorForms(t *testing.T) {
	token := `tok+<&>"'= 42/?#%`
	x := NewWithForms(token)
	var text, attr strings.Builder
	_ = template.Must(template.New("").Parse(`<p>{{.}}</p>`)).Execute(&text, token)
	_ = template.Must(template.New("").Parse(`<p title="{{.}}">`)).Execute(&attr, token)
	forms := []string{token, template.HTMLEscapeString(token), jsonForm(token), url.PathEscape(token), url.QueryEscape(token), text.String(), attr.String()}
	for _, f := range forms {
		if got := x.String("a " + f + " b"); strings.Contains(got, "42") || !strings.Contains(got, Marker) {
			t.Errorf("form %q scrubbed to %q: want it replaced whole", f, got)
		}
	}
}

func TestLoggerRedactsMessagesAndAttributes(t *testing.T) {
	var buf bytes.Buffer
	l := Logger(slog.New(slog.NewTextHandler(&buf, nil)), New("s3cr3t"))
	l.With("pre", "s3cr3t").WithGroup("g").Info("msg s3cr3t", "err", errString("bad s3cr3t"), "n", 3,
		slog.Group("in", "k", "s3cr3t"))
	if out := buf.String(); strings.Contains(out, "s3cr3t") || strings.Count(out, Marker) != 4 || !strings.Contains(out, "g.n=3") {
		t.Errorf("log line %q: want the secret replaced four times and the number kept", out)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
