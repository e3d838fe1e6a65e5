package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/tidwall/gjson"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

// excerptLen bounds the body shown in a failure reason.
const excerptLen = 160

// Runner runs journeys. It is safe for concurrent use.
type Runner struct {
	HTTP    *HTTPProber
	Browser *BrowserProber
	probers map[string]Prober // by step kind
	now     func() time.Time
}

// RunnerOption configures NewRunner.
type RunnerOption func(*runnerOptions)

type runnerOptions struct{ screenshotDir string }

// WithScreenshotDir keeps the screenshots of failed browser steps in dir (created when
// first needed); without it they keep none.
func WithScreenshotDir(dir string) RunnerOption {
	return func(o *runnerOptions) { o.screenshotDir = dir }
}

// NewRunner returns a Runner with its own HTTP prober and browser prober (which starts
// browsers only when a browser step runs).
func NewRunner(opts ...RunnerOption) *Runner {
	var o runnerOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := &Runner{HTTP: NewHTTPProber(), Browser: NewBrowserProber(o.screenshotDir), now: time.Now}
	r.probers = r.buildProbers()
	return r
}

// Close releases the probers' resources: idle connections, idle browsers (a browser
// still in a run is killed as the run ends).
func (r *Runner) Close() {
	r.HTTP.Close()
	r.Browser.Close()
}

// Run runs the target's journey, re-running it at once up to t.Retries times when it
// fails. ctx bounds the whole run; each try has the journey's timeout.
func (r *Runner) Run(ctx context.Context, t *config.Target) Result {
	var res Result
	for try := 1; try <= 1+t.Retries; try++ {
		res = r.runOnce(ctx, t)
		res.Tries = try
		if res.Up() || ctx.Err() != nil {
			break
		}
	}
	return res
}

func newRunID() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

func (r *Runner) runOnce(parent context.Context, t *config.Target) Result {
	started := r.now()
	ctx, cancel := context.WithTimeout(parent, t.Timeout)
	defer cancel()
	res := Result{
		Target: t.ID, Product: t.Product, Journey: t.Journey, Region: t.Region,
		RunID: newRunID(), Started: started, Status: StatusUp,
		Steps: make([]StepResult, 0, len(t.Steps)),
	}
	vars := make(map[string]string, len(t.JourneyVars)+2)
	for k, v := range t.JourneyVars {
		vars[k] = v
	}
	run := map[string]string{
		"id": res.RunID, "started": started.UTC().Format(time.RFC3339), "unix": strconv.FormatInt(started.Unix(), 10), "target": t.ID,
	}
	data := t.TemplateData(run, vars)
	for _, step := range t.Steps {
		sr := r.runStep(ctx, t, step, data, vars)
		res.Steps = append(res.Steps, sr)
		if sr.CertWarning != nil {
			res.CertWarnings = append(res.CertWarnings, *sr.CertWarning)
		}
		if sr.Status != StatusUp {
			res.Status = StatusDown
			res.FailedStep = sr.Name
			res.Error = fmt.Sprintf("step %s: %s", sr.Name, sr.Error)
			break
		}
	}
	res.Duration = r.now().Sub(started)
	if res.Status == StatusUp && t.DegradedAfter > 0 && res.Duration > t.DegradedAfter {
		res.Status = StatusDegraded
		res.Error = fmt.Sprintf("journey took %s, degraded after %s", roundDur(res.Duration), t.DegradedAfter)
	}
	return res
}

// runStep runs one step, polling it when asked to until its expectations hold.
func (r *Runner) runStep(ctx context.Context, t *config.Target, step *config.Step, data tmpl.Data, vars map[string]string) StepResult {
	sr := StepResult{Name: step.Name, Kind: step.Kind()}
	first := r.now()
	var deadline time.Time
	if step.Poll != nil {
		deadline = first.Add(step.Poll.Within)
	}
	for {
		sr.Attempts++
		attemptStart := r.now()
		err := r.attempt(ctx, t, step, data, vars, &sr)
		sr.Duration = r.now().Sub(attemptStart)
		if err == nil {
			sr.Status = StatusUp
			sr.Error = ""
			if step.Poll != nil {
				sr.PollWait = r.now().Sub(first)
			}
			return sr
		}
		sr.Status = StatusDown
		sr.Error = t.Redact(err.Error())
		if step.Poll == nil || ctx.Err() != nil {
			if step.Poll != nil {
				sr.Error = fmt.Sprintf("not ready within %s (%d attempts, stopped by the journey timeout); last: %s", roundDur(r.now().Sub(first)), sr.Attempts, sr.Error)
			}
			return sr
		}
		next := attemptStart.Add(step.Poll.Every)
		if !next.Before(deadline) {
			sr.Error = fmt.Sprintf("not ready within %s (%d attempts); last: %s", step.Poll.Within, sr.Attempts, sr.Error)
			return sr
		}
		if !sleepUntil(ctx, next) {
			sr.Error = fmt.Sprintf("not ready within %s (%d attempts, stopped by the journey timeout); last: %s", roundDur(r.now().Sub(first)), sr.Attempts, sr.Error)
			return sr
		}
	}
}

func sleepUntil(ctx context.Context, when time.Time) bool {
	timer := time.NewTimer(time.Until(when))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// attempt runs the request once, judges it and extracts values into vars.
func (r *Runner) attempt(ctx context.Context, t *config.Target, step *config.Step, data tmpl.Data, vars map[string]string, sr *StepResult) error {
	if step.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, step.Timeout)
		defer cancel()
	}
	p := r.probers[step.Kind()]
	if p == nil {
		return fmt.Errorf("no prober for %s steps", step.Kind())
	}
	ex := p.Probe(ctx, step, data)
	defer ex.Release()
	sr.Phases = ex.Phases
	sr.HTTPStatus = ex.Obs.Status
	sr.CertExpiry = ex.Cert
	sr.BodyBytes = int64(len(ex.Obs.Body))
	sr.Info = redactInfo(ex.Info, t.Redact)
	sr.Wire = ex.Wire
	if ex.Obs.TLS != nil { // the kinds that did their own handshake (tls, tcp, dns over TLS, grpc)
		sr.Wire.TLSVersion = ex.Obs.TLS.Version
	}
	sr.CertWarning = certWarning(step, &ex.Obs)
	err := verdict(step, ex, data, vars, t.Redact)
	if err != nil && ex.failed != nil {
		path, shotErr := ex.failed()
		switch {
		case path != "":
			sr.Screenshot, sr.Info["screenshot"] = filepath.Base(path), path
		case shotErr != nil:
			sr.Info["screenshot_error"] = t.Redact(shotErr.Error())
		}
	}
	return err
}

// verdict judges what an attempt saw and extracts values into vars.
func verdict(step *config.Step, ex *Exchange, data tmpl.Data, vars map[string]string, redact func(string) string) error {
	if ex.Err != nil {
		return ex.Err
	}
	ex.Obs.Vars = vars
	if err := judge(step, &ex.Obs, data, redact); err != nil {
		if step.Browser != nil {
			return err // the body is the rendered page: the reason says what failed without it
		}
		return withExcerpt(err, ex.Obs.Body, redact)
	}
	return extract(step.Extract, &ex.Obs, vars, redact)
}

// judge evaluates the step. The verdict comes from what was observed; the reason, on
// failure, from the same checks over a copy with secrets redacted, because expect cuts
// values to excerpts and a secret cut in half no longer matches the redactor.
func judge(step *config.Step, o *expect.Observation, data tmpl.Data, redact func(string) string) error {
	err := evaluate(step, o, data)
	if err == nil {
		return nil
	}
	if safe, changed := redacted(o, redact); changed {
		if safeErr := evaluate(step, safe, data); safeErr != nil {
			return safeErr
		}
	}
	return err
}

// redacted returns o with secrets redacted from body and header values, and whether
// anything changed. It runs on failures only, so its copies cost nothing when up.
func redacted(o *expect.Observation, redact func(string) string) (*expect.Observation, bool) {
	safe := *o
	changed := false
	body := string(o.Body)
	if r := redact(body); r != body {
		safe.Body = []byte(r)
		changed = true
	}
	if h, ok := redactHeaders(o.Headers, redact); ok {
		safe.Headers = h
		changed = true
	}
	return &safe, changed
}

func redactHeaders(h http.Header, redact func(string) string) (http.Header, bool) {
	var out http.Header
	for name, values := range h {
		for i, v := range values {
			if r := redact(v); r != v {
				if out == nil {
					out = h.Clone()
				}
				out[name][i] = r
			}
		}
	}
	return out, out != nil
}

// certWarning is the step's certificate near expiry, judged whatever else failed.
func certWarning(step *config.Step, o *expect.Observation) *CertWarning {
	w := step.Checks.CertWarning(o)
	if w == nil {
		return nil
	}
	return &CertWarning{Step: step.Name, NotAfter: w.NotAfter, DaysLeft: w.DaysLeft, MinDays: w.MinDays, Subject: w.Subject, Issuer: w.Issuer}
}

// evaluate applies the step's checks; a step that says nothing of the status still
// wants a successful answer (2xx or 3xx), as a customer would.
func evaluate(step *config.Step, o *expect.Observation, data tmpl.Data) error {
	if err := defaultExpectation(step, o); err != nil {
		return err
	}
	if step.Checks == nil {
		return nil
	}
	return step.Checks.Evaluate(o, data)
}

// defaultExpectation is what a step wants when its expect: says nothing on the point:
// an HTTP answer of 2xx or 3xx, a DNS answer of NOERROR, a SERVING gRPC server.
func defaultExpectation(step *config.Step, o *expect.Observation) error {
	switch step.Kind() {
	case "http":
		if !step.ExpectsStatus && (o.Status < 200 || o.Status >= 400) {
			return fmt.Errorf("status %d, want 2xx or 3xx", o.Status)
		}
	case "dns":
		if !step.Checks.HasRcode() && o.DNS != nil && o.DNS.Rcode != "NOERROR" {
			return fmt.Errorf("rcode %s, want NOERROR", o.DNS.Rcode)
		}
	case "grpc":
		if !step.Checks.HasGRPCStatus() && o.GRPCStatus != "SERVING" {
			return fmt.Errorf("grpc health %s, want SERVING", o.GRPCStatus)
		}
	}
	// A browser step's navigate actions already want 2xx or 3xx (browser.go).
	return nil
}

func withExcerpt(err error, body []byte, redact func(string) string) error {
	if len(body) == 0 {
		return err
	}
	return fmt.Errorf("%w (body: %s)", err, bodyExcerpt(body, redact))
}

// excerptWindow is how much of the body is redacted before the excerpt is cut from it:
// redacting after cutting would miss a secret that the cut splits. The excerpt never
// reads more than excerptLen bytes of its input; the rest is room for long secrets.
const excerptWindow = 4 << 10

// bodyExcerpt is the body shown in a reason, secrets redacted. Trailing spaces are
// trimmed: most error pages end in a newline, which would show as a lone space.
func bodyExcerpt(body []byte, redact func(string) string) string {
	head := string(body[:min(len(body), excerptWindow)])
	return strings.TrimRight(scrub.Excerpt([]byte(redact(head)), excerptLen), " ")
}

func extract(ex []config.Extractor, o *expect.Observation, vars map[string]string, redact func(string) string) error {
	for _, e := range ex {
		v, err := extractOne(e, o, redact)
		if err != nil {
			return fmt.Errorf("extract %s: %w", e.Name, err)
		}
		vars[e.Name] = v
	}
	return nil
}

func extractOne(e config.Extractor, o *expect.Observation, redact func(string) string) (string, error) {
	switch {
	case e.JSON != "":
		if !gjson.ValidBytes(o.Body) {
			return "", fmt.Errorf("body is not JSON (body: %s)", bodyExcerpt(o.Body, redact))
		}
		r := gjson.GetBytes(o.Body, e.JSON)
		if !r.Exists() {
			return "", fmt.Errorf("json path %s missing (body: %s)", e.JSON, bodyExcerpt(o.Body, redact))
		}
		return r.String(), nil
	case e.Header != "":
		v := http.Header(o.Headers).Get(e.Header)
		if v == "" {
			return "", fmt.Errorf("header %s missing", e.Header)
		}
		return v, nil
	case e.Regex != nil:
		return regexValue(e.Regex, o.Body)
	case e.Selector != "":
		v, ok := "", false
		if o.Browser != nil {
			v, ok = o.Browser.Texts[e.Selector]
		}
		if !ok {
			return "", fmt.Errorf("no element matches `%s`", e.Selector)
		}
		return v, nil
	}
	return "", errors.New("no source")
}

func regexValue(re *regexp.Regexp, body []byte) (string, error) {
	m := re.FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("regex `%s` does not match the body", re)
	}
	if len(m) > 1 {
		return string(m[1]), nil
	}
	return string(m[0]), nil
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}

// redactInfo removes secrets from a step's facts (a name or address may be a template
// over secrets).
func redactInfo(info map[string]string, redact func(string) string) map[string]string {
	for k, v := range info {
		info[k] = redact(v)
	}
	return info
}
