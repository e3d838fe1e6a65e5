// Package expect judges what one probe step observed. A Spec (the YAML form) is compiled
// once at config load, so a bad pattern, status or expression is a load error; the
// compiled Checks are then evaluated on the hot path without compiling or parsing
// anything but the body, which is parsed at most once and only when a check needs it.
package expect

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/picket-dev/picket/probe/tmpl"
)

// Spec is the YAML form of a step's expectations. A status list may hold ints like 202
// or classes like "2xx"; config decodes both as strings.
type Spec struct {
	Status       []string          `yaml:"status"`
	Latency      time.Duration     `yaml:"latency"`       // over it: fail (step down)
	JSON         map[string]string `yaml:"json"`          // gjson path ("$." stripped) -> expected value, may be a template
	BodyContains string            `yaml:"body_contains"` // may be a template; "" = no check
	BodyMatches  string            `yaml:"body_matches"`  // regexp
	Headers      map[string]string `yaml:"headers"`       // header name -> regexp the first value must match
	CertMinDays  int               `yaml:"cert_min_days"` // leaf cert valid < N more days: a warning (CertWarning); expired or none: fail
	Expr         string            `yaml:"expr"`          // boolean expression over status, json, headers, latency, body, vars

	// Protocol expectations for dns, tls, grpc and icmp steps (protocols.go).
	Rcode         string        `yaml:"rcode"`         // dns: NOERROR, NXDOMAIN, SERVFAIL, ...
	Answers       []string      `yaml:"answers"`       // dns: each regexp must match one answer
	AnswersExact  []string      `yaml:"answers_exact"` // dns: the set of answers, exactly
	MinTTL        time.Duration `yaml:"min_ttl"`       // dns: every answer's TTL at least this
	Authoritative *bool         `yaml:"authoritative"` // dns: the AA flag
	TLSVersion    []string      `yaml:"tls_version"`   // tls: allowed versions, "1.2", "1.3"
	OCSPStapled   *bool         `yaml:"ocsp_stapled"`  // tls: a stapled OCSP response
	GRPCStatus    string        `yaml:"grpc_status"`   // grpc: SERVING, NOT_SERVING, ...
	MaxLoss       *float64      `yaml:"max_loss"`      // icmp: lost fraction, 0 to 1
	MaxRTT        time.Duration `yaml:"max_rtt"`       // icmp: average round trip

	// Browser expectations (browser.go): what only a real browser sees.
	MaxLCP           time.Duration `yaml:"max_lcp"`            // largest contentful paint
	MaxCLS           *float64      `yaml:"max_cls"`            // cumulative layout shift
	MaxLoad          time.Duration `yaml:"max_load"`           // navigation start to load event end
	MaxBytes         int64         `yaml:"max_bytes"`          // bytes over the network, all requests
	NoConsoleErrors  bool          `yaml:"no_console_errors"`  // console.error calls and uncaught exceptions
	NoFailedRequests bool          `yaml:"no_failed_requests"` // status >= 400, blocked or failed requests
}

// FieldError is a compile problem of one field, so config can point at FILE:LINE:COL.
type FieldError struct {
	Field string // yaml key: "status", "json", "body_matches", ...
	Key   string // map key when the field is a map, else ""
	Err   error
}

func (e *FieldError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("%s %q: %v", e.Field, e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Observation is what a step saw.
type Observation struct {
	Status  int // protocol status (HTTP code); 0 when not HTTP
	Headers http.Header
	Body    []byte
	Latency time.Duration
	Certs   []*x509.Certificate // peer chain, leaf first; nil without TLS
	Vars    map[string]string   // extracted vars so far
	Now     time.Time           // for cert_min_days; zero = time.Now()

	DNS        *DNSInfo  // dns steps
	TLS        *TLSInfo  // steps that did a TLS handshake
	GRPCStatus string    // grpc steps: the health status name
	Ping       *PingInfo // icmp steps
	Browser    *BrowserInfo
}

// Checks is a compiled Spec. It is immutable, so one value may be evaluated by many
// goroutines at once.
type Checks struct {
	status       *statusSet // nil: no status check
	latency      time.Duration
	certMinDays  int
	headers      []headerCheck // sorted by name, so messages come in a stable order
	json         []jsonCheck   // sorted by path
	bodyContains *tmpl.Template
	bodyMatches  *bodyPattern
	expr         *exprCheck
	proto        protocolChecks
	browser      browserChecks
}

// Compile checks and compiles s, returning every problem rather than only the first.
func Compile(s Spec) (*Checks, []*FieldError) {
	var c Checks
	var errs []*FieldError
	add := func(field, key string, err error) {
		errs = append(errs, &FieldError{Field: field, Key: key, Err: err})
	}

	if len(s.Status) > 0 {
		set, err := compileStatus(s.Status)
		if err != nil {
			add("status", "", err)
		}
		c.status = set
	}
	if s.Latency < 0 {
		add("latency", "", fmt.Errorf("want a positive duration, got %v", s.Latency))
	}
	c.latency = s.Latency
	if s.CertMinDays < 0 {
		add("cert_min_days", "", fmt.Errorf("want 0 (no check) or more days, got %d", s.CertMinDays))
	}
	c.certMinDays = s.CertMinDays

	c.headers = compileHeaders(s.Headers, func(key string, err error) { add("headers", key, err) })
	c.json = compileJSON(s.JSON, func(key string, err error) { add("json", key, err) })

	if s.BodyContains != "" {
		t, err := tmpl.Parse("body_contains", s.BodyContains)
		if err != nil {
			add("body_contains", "", err)
		}
		c.bodyContains = t
	}
	if s.BodyMatches != "" {
		p, err := compileBodyPattern(s.BodyMatches)
		if err != nil {
			add("body_matches", "", err)
		}
		c.bodyMatches = p
	}
	if strings.TrimSpace(s.Expr) != "" {
		e, err := compileExpr(s.Expr)
		if err != nil {
			add("expr", "", err)
		}
		c.expr = e
	}

	c.proto = compileProtocol(s, add)
	c.browser = compileBrowser(s, add)

	if len(errs) > 0 {
		return nil, errs
	}
	return &c, nil
}

// Empty reports whether c checks nothing at all.
func (c *Checks) Empty() bool {
	return c == nil || (c.status == nil && c.latency == 0 && c.certMinDays == 0 &&
		len(c.headers) == 0 && len(c.json) == 0 && c.bodyContains == nil &&
		c.bodyMatches == nil && c.expr == nil && c.proto.empty() && c.browser.empty())
}

// NeedsBody reports whether any check looks at the body; when false the prober may skip
// reading it.
func (c *Checks) NeedsBody() bool {
	if c == nil {
		return false
	}
	return len(c.json) > 0 || c.bodyContains != nil || c.bodyMatches != nil ||
		(c.expr != nil && (c.expr.usesJSON || c.expr.usesBody))
}

// Templates returns the templated (non-literal) values, so config can test-render them
// at load.
func (c *Checks) Templates() []*tmpl.Template {
	if c == nil {
		return nil
	}
	var ts []*tmpl.Template
	for _, j := range c.json {
		if !j.want.IsLiteral() {
			ts = append(ts, j.want)
		}
	}
	if !c.bodyContains.IsLiteral() {
		ts = append(ts, c.bodyContains)
	}
	return ts
}

// failures is Evaluate's error: one message per failed check.
type failures []string

func (f failures) Error() string { return strings.Join(f, "; ") }

// Evaluate returns nil when every check holds, else an error listing each failed check
// ("; "-joined), each saying what came and what was wanted. data is the template data
// for templated values; a render error is a failure too. A certificate near expiry is
// no failure: CertWarning reports it.
func (c *Checks) Evaluate(o *Observation, data tmpl.Data) error {
	if c == nil {
		return nil
	}
	if o == nil {
		o = &Observation{}
	}
	var fails failures
	fail := func(msg string) { fails = append(fails, msg) }

	if c.status != nil && !c.status.matches(o.Status) {
		fail(fmt.Sprintf("status %d, want %s", o.Status, c.status.want))
	}
	if c.latency > 0 && o.Latency > c.latency {
		fail(latencyFailure(o.Latency, c.latency))
	}
	if c.certMinDays > 0 {
		if msg, _ := c.certLeft(o); msg != "" {
			fail(msg) // near expiry is a warning, not a failure: see CertWarning
		}
	}
	for i := range c.headers {
		if msg := c.headers[i].check(o.Headers); msg != "" {
			fail(msg)
		}
	}

	c.proto.check(o, fail)
	c.browser.check(o.Browser, fail)

	body := bodyView{raw: o.Body}
	c.checkJSON(&body, data, fail)
	if c.bodyContains != nil {
		if msg := checkContains(c.bodyContains, o.Body, data); msg != "" {
			fail(msg)
		}
	}
	if c.bodyMatches != nil && !c.bodyMatches.re.Match(o.Body) {
		fail(fmt.Sprintf("body does not match `%s`", c.bodyMatches.raw))
	}
	if c.expr != nil {
		if msg := c.expr.check(o, &body); msg != "" {
			fail(msg)
		}
	}

	if len(fails) == 0 {
		return nil
	}
	return fails
}

// latencyFailure says how slow the step was. It rounds to milliseconds for reading,
// unless rounding would make the latency look within the limit.
func latencyFailure(got, limit time.Duration) string {
	shown := got.Round(time.Millisecond)
	if shown <= limit {
		shown = got
	}
	return fmt.Sprintf("latency %v over %v", shown, limit)
}
