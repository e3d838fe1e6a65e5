package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

var httpMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// placeholder stands for values only known at run time when templates are test-rendered
// at load: extracted vars and run facts.
const placeholder = "x"

func (b *builder) buildSteps(p *Product, j *JourneySpec, s settings, regions []string) []*Step {
	if len(j.Steps) == 0 {
		b.d.errorf(b.d.at(j, "steps"), "journey %q has no steps", j.Name)
		return nil
	}
	vars := map[string]string{}
	for k := range j.Vars {
		vars[k] = j.Vars[k]
	}
	names := map[string]bool{}
	var steps []*Step
	for i, spec := range j.Steps {
		if spec == nil {
			continue
		}
		name := spec.Name
		if name == "" {
			name = fmt.Sprintf("step%d", i+1)
		}
		if names[name] {
			b.d.errorf(b.d.at(spec, "name"), "step %q is defined twice in journey %q", name, j.Name)
		}
		names[name] = true
		b.stepTemplates = b.stepTemplates[:0]
		st := b.buildStep(spec, name, s)
		b.checkTemplates(spec, st.Checks, regions, vars)
		for _, e := range st.Extract {
			vars[e.Name] = placeholder
		}
		steps = append(steps, st)
	}
	return steps
}

func (b *builder) buildStep(spec *StepSpec, name string, s settings) *Step {
	st := &Step{Name: name, Poll: spec.Poll}
	if spec.Timeout != nil {
		st.Timeout = *spec.Timeout
		b.positiveDuration(spec, "timeout", spec.Timeout)
	}
	kinds := 0
	if spec.HTTP != nil {
		kinds++
		st.HTTP = b.buildHTTP(spec.HTTP, s)
	}
	if spec.TCP != nil {
		kinds++
		st.TCP = b.buildTCP(spec.TCP)
	}
	if spec.DNS != nil {
		kinds++
		st.DNS = b.buildDNS(spec.DNS)
	}
	if spec.TLS != nil {
		kinds++
		st.TLS = b.buildTLSCheck(spec.TLS)
	}
	if spec.GRPC != nil {
		kinds++
		st.GRPC = b.buildGRPC(spec.GRPC)
	}
	if spec.ICMP != nil {
		kinds++
		st.ICMP = b.buildICMP(spec.ICMP)
	}
	if spec.Browser != nil {
		kinds++
		st.Browser = b.buildBrowser(spec.Browser)
	}
	if kinds != 1 {
		b.d.errorf(b.d.at(spec, ""), "step %q needs exactly one of: http, tcp, dns, tls, grpc, icmp, browser (got %d)", name, kinds)
	}
	checks, ferrs := expect.Compile(spec.Expect)
	for _, fe := range ferrs {
		n := b.d.at(&spec.Expect, fe.Field)
		if fe.Key != "" {
			n = keyAt(n, fe.Key)
		}
		b.d.errorf(n, "expect.%s: %v", fe.Field, fe.Err)
	}
	st.Checks = checks
	if checks.HasBrowserChecks() && spec.Browser == nil {
		b.d.errorf(b.d.at(&spec.Expect, ""), "expect: max_lcp, max_cls, max_load, max_bytes, no_console_errors and no_failed_requests are for browser steps")
	}
	st.ExpectsStatus = len(spec.Expect.Status) > 0
	st.Extract = b.buildExtract(spec)
	if p := spec.Poll; p != nil {
		if spec.Browser != nil {
			b.d.errorf(b.d.at(p, ""), "poll is not for browser steps: their expect actions wait (timeout: per action)")
		}
		if p.Every <= 0 {
			b.d.errorf(b.d.at(p, "every"), "poll.every must be more than 0")
		}
		if p.Within <= p.Every {
			b.d.errorf(b.d.at(p, "within"), "poll.within (%v) must be longer than poll.every (%v)", p.Within, p.Every)
		}
		if p.Within >= s.timeout {
			b.d.errorf(b.d.at(p, "within"), "poll.within (%v) must be shorter than the journey's timeout (%v)", p.Within, s.timeout)
		}
	}
	return st
}

func (b *builder) buildHTTP(h *HTTPSpec, s settings) *HTTPRequest {
	req := &HTTPRequest{
		Method:          strings.ToUpper(orDefault(h.Method, http.MethodGet)),
		MaxBodyBytes:    s.maxBody,
		MaxRedirects:    s.maxRedirects,
		FollowRedirects: true,
		KeepAlive:       s.keepAlive,
	}
	if !httpMethods[req.Method] {
		b.d.errorf(b.d.at(h, "method"), "unknown HTTP method %q", h.Method)
	}
	if h.URL == "" {
		b.d.errorf(b.d.at(h, ""), "http.url is required")
	}
	req.URL = b.template(h, "url", h.URL)
	if req.URL != nil && req.URL.IsLiteral() {
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			b.d.errorf(b.d.at(h, "url"), "url %q: want an absolute http:// or https:// URL", h.URL)
		}
	}
	req.Body = b.template(h, "body", h.Body)
	headersNode := b.d.value(h, "headers")
	for _, name := range keysInOrder(headersNode) {
		t := b.templateAt(keyAt(headersNode, name), "header "+name, h.Headers[name])
		if t == nil {
			continue
		}
		req.Headers = append(req.Headers, Header{Name: http.CanonicalHeaderKey(name), Value: t})
	}
	if h.MaxBodyBytes != nil {
		req.MaxBodyBytes = *h.MaxBodyBytes
		if *h.MaxBodyBytes < 1 {
			b.d.errorf(b.d.at(h, "max_body_bytes"), "max_body_bytes must be at least 1")
		}
	}
	if h.MaxRedirects != nil {
		req.MaxRedirects = *h.MaxRedirects
		b.atLeast(h, "max_redirects", h.MaxRedirects, 0)
	}
	if h.FollowRedirects != nil {
		req.FollowRedirects = *h.FollowRedirects
	}
	if h.KeepAlive != nil {
		req.KeepAlive = *h.KeepAlive
	}
	if h.TLS != nil {
		req.TLS = b.buildTLS(h.TLS)
		req.ServerName = b.serverName(h.TLS, "server_name", h.TLS.ServerName)
	}
	return req
}

// serverName returns the template of a server_name that varies per run (a region's host,
// say); a fixed one is already in the tls.Config.
func (b *builder) serverName(owner any, key, raw string) *tmpl.Template {
	if !strings.Contains(raw, "{{") {
		return nil
	}
	return b.template(owner, key, raw)
}

// template parses one templated field of a step and remembers where it was written,
// so that checkTemplates can test-render it for every region.
func (b *builder) template(owner any, key, raw string) *tmpl.Template {
	return b.templateAt(b.d.at(owner, key), key, raw)
}

func (b *builder) templateAt(node *yaml.Node, key, raw string) *tmpl.Template {
	t, err := tmpl.Parse(key, raw)
	if err != nil {
		b.d.errorf(node, "%s: %v", key, err)
		return nil
	}
	if !t.IsLiteral() {
		b.stepTemplates = append(b.stepTemplates, placedTemplate{node, t})
	}
	return t
}

func (b *builder) buildTLS(t *TLSSpec) *tls.Config {
	c := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // a per-step choice, off by default
	if !strings.Contains(t.ServerName, "{{") {
		c.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(b.path(t.CAFile))
		switch {
		case err != nil:
			b.d.errorf(b.d.at(t, "ca_file"), "ca_file: %v", unwrapPathErr(err))
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				b.d.errorf(b.d.at(t, "ca_file"), "ca_file %s holds no PEM certificate", t.CAFile)
			}
			c.RootCAs = pool
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		b.d.errorf(b.d.at(t, ""), "give both cert_file and key_file, or neither")
	} else if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(b.path(t.CertFile), b.path(t.KeyFile))
		if err != nil {
			b.d.errorf(b.d.at(t, "cert_file"), "client certificate: %v", err)
		} else {
			c.Certificates = []tls.Certificate{cert}
		}
	}
	return c
}

func (b *builder) buildExtract(spec *StepSpec) []Extractor {
	node := b.d.value(spec, "extract")
	var out []Extractor
	for _, name := range keysInOrder(node) {
		e := spec.Extract[name]
		at := keyAt(node, name)
		if e == nil {
			b.d.errorf(at, "extract %s: want one of json, header, regex, selector", name)
			continue
		}
		sources := 0
		for _, s := range []string{e.JSON, e.Header, e.Regex, e.Selector} {
			if s != "" {
				sources++
			}
		}
		if sources != 1 {
			b.d.errorf(at, "extract %s: want exactly one of json, header, regex, selector", name)
			continue
		}
		if e.Selector != "" && spec.Browser == nil {
			b.d.errorf(b.d.at(e, "selector"), "extract %s: selector is for browser steps (the text of an element of the page)", name)
			continue
		}
		x := Extractor{Name: name, JSON: strings.TrimPrefix(e.JSON, "$."), Header: e.Header, Selector: e.Selector}
		if e.Regex != "" {
			re, err := regexp.Compile(e.Regex)
			if err != nil {
				b.d.errorf(b.d.at(e, "regex"), "extract %s: bad regex: %v", name, err)
				continue
			}
			x.Regex = re
		}
		out = append(out, x)
	}
	return out
}

// checkTemplates renders every template of a step with each region's data, so that a
// missing key ({{.region.apii}}, an undefined secret, a var no earlier step extracts) is
// a load error at its line, not a failed probe at 3 a.m.
// placedTemplate is a parsed template and the node it was written at.
type placedTemplate struct {
	node *yaml.Node
	t    *tmpl.Template
}

func (b *builder) checkTemplates(spec *StepSpec, checks *expect.Checks, regions []string, vars map[string]string) {
	items := b.stepTemplates
	if checks != nil { // compiled once, in buildStep
		for _, t := range checks.Templates() {
			items = append(items, placedTemplate{b.d.at(&spec.Expect, ""), t})
		}
	}
	run := map[string]string{"id": placeholder, "started": placeholder, "unix": "0", "target": placeholder}
	failed := map[int]bool{} // one error per template, not one per region
	for _, region := range regions {
		r := b.regions[region]
		data := tmpl.Data{
			"region": r.Vars, "secret": b.cfg.Secrets.templateData(), "vars": vars, "run": run,
			"product": placeholder, "journey": placeholder, "vantage": placeholder,
		}
		for i, it := range items {
			if it.t.IsLiteral() || failed[i] {
				continue
			}
			if _, err := it.t.Render(data); err != nil {
				failed[i] = true
				b.d.errorf(it.node, "%s", b.cfg.Secrets.Redact(explainMissingKey(err, data, region)))
			}
		}
	}
}

var missingKey = regexp.MustCompile(`at <\.(\w+)\.[^>]*>: map has no entry for key "([^"]*)"`)

// explainMissingKey turns text/template's "map has no entry" into what a person needs:
// which name is unknown and which ones exist.
func explainMissingKey(err error, data tmpl.Data, region string) string {
	m := missingKey.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Sprintf("%v (region %s)", err, region)
	}
	var known []string
	switch v := data[m[1]].(type) {
	case map[string]string:
		for k := range v {
			known = append(known, k)
		}
	}
	sort.Strings(known)
	hint := ""
	switch m[1] {
	case "vars":
		hint = "; a var must be in the journey's vars: or extracted by an earlier step"
	case "secret":
		hint = "; define it under secrets:"
	case "region":
		hint = fmt.Sprintf("; define it in region %s's vars:", region)
	}
	return fmt.Sprintf(".%s.%s is not defined (known: %s)%s", m[1], m[2], joinNames(known), hint)
}
