package expect

import (
	"github.com/picket-dev/picket/internal/scrub"

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
	return fmt.Sprintf("header %s = %q, want match `%s`", h.name, scrub.Excerpt([]byte(values[0]), excerptBytes), h.re)
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

// CertWarning is a leaf certificate that is valid but expires sooner than cert_min_days
// asks: a warning to renew it, not a failure of the step.
type CertWarning struct {
	NotAfter time.Time // the leaf's
	DaysLeft int       // whole days
	MinDays  int       // cert_min_days
	Subject  string    // the leaf's common name
	Issuer   string
}

// String says it the way failures are said: what came, what was wanted.
func (w *CertWarning) String() string {
	return fmt.Sprintf("certificate expires in %s (%s), want at least %d", Days(w.DaysLeft), w.NotAfter.UTC().Format(time.DateOnly), w.MinDays)
}

// Days writes a count of days: "1 day", "5 days", "less than a day" for 0.
func Days(n int) string {
	switch n {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// certLeft is the one rule of cert_min_days: no certificate, or an expired one, fails
// (expired says so in msg); a valid one with fewer days left than wanted is a warning;
// otherwise nothing.
func (c *Checks) certLeft(o *Observation) (msg string, warn *CertWarning) {
	if len(o.Certs) == 0 || o.Certs[0] == nil {
		return fmt.Sprintf("no certificate (not TLS), want at least %d days left", c.certMinDays), nil
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	leaf := o.Certs[0]
	left := leaf.NotAfter.Sub(now)
	if left < 0 {
		return fmt.Sprintf("certificate expired on %s, want at least %d days left", leaf.NotAfter.UTC().Format(time.DateOnly), c.certMinDays), nil
	}
	days := int(left / (24 * time.Hour))
	if days >= c.certMinDays {
		return "", nil
	}
	return "", &CertWarning{NotAfter: leaf.NotAfter, DaysLeft: days, MinDays: c.certMinDays,
		Subject: leaf.Subject.CommonName, Issuer: leaf.Issuer.CommonName}
}

// HasCertMinDays reports whether the step judges the certificate's days left.
func (c *Checks) HasCertMinDays() bool { return c != nil && c.certMinDays > 0 }

// CertWarning reports a certificate near expiry under cert_min_days (nil when the step
// has no such check, or the certificate is missing, expired or valid long enough: those
// are Evaluate's). The prober records it whatever else failed, so a step that is down
// for another reason still says its certificate needs renewing.
func (c *Checks) CertWarning(o *Observation) *CertWarning {
	if c == nil || c.certMinDays == 0 || o == nil {
		return nil
	}
	_, w := c.certLeft(o)
	return w
}
