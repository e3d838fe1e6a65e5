package expect

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/probe/tmpl"
)

// excerptBytes bounds the values quoted in failure messages, so one huge header or JSON
// string cannot swamp a page.
const excerptBytes = 120

type headerCheck struct {
	name string // canonical
	re   *regexp.Regexp
}

func compileHeaders(spec map[string]string, fail func(key string, err error)) []headerCheck {
	var checks []headerCheck
	for _, name := range slices.Sorted(maps.Keys(spec)) {
		if !validHeaderName(name) {
			fail(name, fmt.Errorf("invalid header name %q: want letters, digits and !#$%%&'*+-.^_`|~", name))
			continue
		}
		re, err := regexp.Compile(spec[name])
		if err != nil {
			fail(name, err)
			continue
		}
		checks = append(checks, headerCheck{name: http.CanonicalHeaderKey(name), re: re})
	}
	return checks
}

// validHeaderName accepts an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		isAlnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isAlnum && strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}

func (h *headerCheck) check(headers http.Header) string {
	values := headers[h.name]
	if len(values) == 0 {
		return fmt.Sprintf("header %s missing, want match `%s`", h.name, h.re)
	}
	if h.re.MatchString(values[0]) {
		return ""
	}
	return fmt.Sprintf("header %s = %q, want match `%s`", h.name, Excerpt([]byte(values[0]), excerptBytes), h.re)
}

type bodyPattern struct {
	raw string
	re  *regexp.Regexp
}

func compileBodyPattern(raw string) (*bodyPattern, error) {
	re, err := regexp.Compile(raw)
	if err != nil {
		return nil, err
	}
	return &bodyPattern{raw: raw, re: re}, nil
}

func checkContains(want *tmpl.Template, body []byte, data tmpl.Data) string {
	s, err := want.Render(data)
	if err != nil {
		return fmt.Sprintf("body_contains: %v", err)
	}
	if bytes.Contains(body, []byte(s)) {
		return ""
	}
	return fmt.Sprintf("body does not contain %q", s)
}

// checkCert judges the leaf certificate's remaining validity in whole days.
func (c *Checks) checkCert(o *Observation) string {
	if len(o.Certs) == 0 || o.Certs[0] == nil {
		return fmt.Sprintf("no certificate (not TLS), want at least %d days left", c.certMinDays)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	notAfter := o.Certs[0].NotAfter
	date := notAfter.UTC().Format(time.DateOnly)
	left := notAfter.Sub(now)
	if left < 0 {
		return fmt.Sprintf("certificate expired on %s, want at least %d days left", date, c.certMinDays)
	}
	days := int(left / (24 * time.Hour))
	if days >= c.certMinDays {
		return ""
	}
	return fmt.Sprintf("certificate expires in %d days (%s), want at least %d", days, date, c.certMinDays)
}
