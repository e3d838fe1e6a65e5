package daemon

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// targetMetrics holds every target's series in one small struct per target (and per
// step, with only what that step has) and writes them in the text exposition format
// at each scrape.
//
// They were client_golang vectors: 13 children per target, each with its label pairs
// made up front, 10 KB a target (half of the daemon's live heap at 10,000 targets),
// and every scrape built a protobuf message per series before writing it (130,000 of
// them at 10,000 targets). Now a target costs a few hundred bytes, and a scrape
// writes straight from the values.
type targetMetrics struct {
	vantage string // `vantage="..."`, rendered once

	mu    sync.RWMutex
	byID  map[string]*targetSeries
	order []*targetSeries // in the order targets first reported: a stable scrape
}

// targetSeries is one target's values; labels are rendered once, sorted by name as
// client_golang writes them (journey, phase, product, region, status, step, vantage).
type targetSeries struct {
	id      string
	journey string // `journey="..."`
	rest    string // `product="...",region="..."`

	mu                            sync.Mutex
	success, duration, dns, state float64
	runs                          [3]uint64 // up, degraded, down
	steps                         []*stepSeries
}

// stepSeries is what one step has reported: a plain HTTP step has no TLS phase and a
// step to an address no resolve phase, so neither gets a series; a phase shows from
// the first run that had it.
type stepSeries struct {
	name  string
	label string // `step="..."`

	http       bool
	httpStatus float64
	phases     [len(httpPhases)]float64
	hasPhase   [len(httpPhases)]bool
	hasCert    bool
	certExpiry float64
	isGRPC     bool
	grpc       string // the last serving status
	hasICMP    bool
	icmpRTT    float64
	isDNS      bool
	wire       probe.Wire // the blackbox facts: HTTP version, TLS version, DNS records, gRPC code

	browser bool
	facts   [len(browserFacts)]float64
	hasFact [len(browserFacts)]bool
}

// browserFacts are the facts of a browser step's page, from its info: the key, the
// scale to the metric's unit, the metric and its help.
var browserFacts = [...]struct {
	info       string
	scale      float64
	name, help string
}{
	{"lcp_ms", 1e-3, "probe_browser_lcp_seconds", "Largest contentful paint of the page a browser step ended on (0: nothing painted)."},
	{"cls", 1, "probe_browser_cls", "Cumulative layout shift of the page a browser step ended on."},
	{"load_ms", 1e-3, "probe_browser_load_seconds", "Navigation start to the load event's end, of the page a browser step ended on."},
	{"console_errors", 1, "probe_browser_console_errors", "Console errors and uncaught exceptions in the last run of a browser step."},
	{"failed_requests", 1, "probe_browser_failed_requests", "Requests with status >= 400, blocked or failed in the last run of a browser step."},
	{"bytes", 1, "probe_browser_transfer_bytes", "Bytes the last run of a browser step received over the network."},
	{"browser_memory_mb", 1 << 20, "probe_browser_memory_bytes", "Memory of the browser (all its processes) after the last run of a browser step."},
}

var httpPhases = [...]string{"resolve", "connect", "tls", "processing", "transfer"}

var grpcStatuses = [...]string{"SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", "UNKNOWN"}

var runStatuses = [...]probe.Status{probe.StatusUp, probe.StatusDegraded, probe.StatusDown}

// The fixed labels, rendered once rather than at every sample of every scrape.
var (
	phaseLabels = renderLabels("phase", httpPhases[:])
	grpcLabels  = renderLabels("serving_status", grpcStatuses[:])
	runLabels   = renderLabels("status", runStatuses[:])
	tlsLabels   = map[string]string{"1.0": tlsLabel("1.0"), "1.1": tlsLabel("1.1"), "1.2": tlsLabel("1.2"), "1.3": tlsLabel("1.3")}
	// icmpRTTPhase is the one phase of probe_icmp_duration_seconds.
	icmpRTTPhase = label("phase", "rtt")
)

func renderLabels[T ~string](name string, values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = label(name, string(v))
	}
	return out
}

func tlsLabel(version string) string { return label("version", "TLS "+version) }

// tlsVersionLabel is the version label of probe_tls_version_info: one of the versions
// the prober names, else rendered (a version Go does not know, "0x0305").
func tlsVersionLabel(version string) string {
	if l, ok := tlsLabels[version]; ok {
		return l
	}
	return tlsLabel(version)
}

func newTargetMetrics(vantage string) *targetMetrics {
	return &targetMetrics{vantage: label("vantage", vantage), byID: map[string]*targetSeries{}}
}

// label renders name="value" with the exposition format's escapes.
func label(name, value string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(`="`)
	for _, r := range value {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (m *targetMetrics) series(t *config.Target) *targetSeries {
	m.mu.RLock()
	s := m.byID[t.ID]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.byID[t.ID]; s != nil {
		return s
	}
	s = &targetSeries{id: t.ID, journey: label("journey", t.Journey), rest: label("product", t.Product) + "," + label("region", t.Region)}
	m.byID[t.ID] = s
	m.order = append(m.order, s)
	return s
}

// observe records one run.
func (m *targetMetrics) observe(t *config.Target, r probe.Result) {
	s := m.series(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.success = 0
	if r.Up() {
		s.success = 1
	}
	s.duration = r.Duration.Seconds()
	if i := slices.Index(runStatuses[:], r.Status); i >= 0 {
		s.runs[i]++
	}
	var dns time.Duration
	for i := range r.Steps {
		dns += s.step(&r.Steps[i]).observe(&r.Steps[i])
	}
	s.dns = dns.Seconds()
}

func (m *targetMetrics) setState(t *config.Target, v float64) {
	s := m.series(t)
	s.mu.Lock()
	s.state = v
	s.mu.Unlock()
}

// step is the series of the step of that name (with s.mu held).
func (s *targetSeries) step(st *probe.StepResult) *stepSeries {
	for _, ss := range s.steps {
		if ss.name == st.Name {
			return ss
		}
	}
	ss := &stepSeries{name: st.Name, label: label("step", st.Name)}
	s.steps = append(s.steps, ss)
	return ss
}

// observe records one step's run and returns the time it spent resolving names, as
// probe_dns_lookup_time_seconds counts it.
func (ss *stepSeries) observe(st *probe.StepResult) time.Duration {
	if !st.CertExpiry.IsZero() {
		ss.hasCert, ss.certExpiry = true, float64(st.CertExpiry.Unix())
	}
	ss.wire = st.Wire
	switch st.Kind {
	case "http":
		ss.observeHTTP(st)
		return st.Phases.DNS
	case "browser":
		ss.observeHTTP(st) // the phases and status of the document it ended on
		ss.browser = true
		for i, f := range browserFacts {
			if v, err := strconv.ParseFloat(st.Info[f.info], 64); err == nil {
				ss.facts[i], ss.hasFact[i] = v*f.scale, true
			}
		}
		return st.Phases.DNS
	case "dns":
		ss.isDNS = true
		return st.Duration // a dns step is a lookup, as blackbox's dns prober counts it
	case "grpc":
		ss.isGRPC, ss.grpc = true, st.Info["grpc_status"]
	case "icmp":
		if ms, err := strconv.ParseFloat(st.Info["rtt_avg_ms"], 64); err == nil {
			ss.hasICMP, ss.icmpRTT = true, ms/1000
		}
		return 0
	}
	return st.Phases.DNS
}

func (ss *stepSeries) observeHTTP(st *probe.StepResult) {
	ss.http, ss.httpStatus = true, float64(st.HTTPStatus)
	p := st.Phases
	for i, d := range [len(httpPhases)]time.Duration{p.DNS, p.Connect, p.TLS, p.Processing, p.Transfer} {
		ss.phases[i] = d.Seconds()
		ss.hasPhase[i] = ss.hasPhase[i] || d > 0
	}
}

// forget drops the targets not in keep.
func (m *targetMetrics) forget(keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.order = slices.DeleteFunc(m.order, func(s *targetSeries) bool { return !keep[s.id] })
	for id := range m.byID {
		if !keep[id] {
			delete(m.byID, id)
		}
	}
}

// family is one metric of the per-target series: how to write its samples of a target.
type family struct {
	name, help, kind string
	write            func(e *expo, s *targetSeries)
}

var targetFamilies = append([]family{
	{"probe_success", "Whether the last run of the journey succeeded (degraded counts as success).", "gauge",
		func(e *expo, s *targetSeries) { e.sample(s, labels{}, s.success) }},
	{"probe_duration_seconds", "How long the last run of the journey took.", "gauge",
		func(e *expo, s *targetSeries) { e.sample(s, labels{}, s.duration) }},
	{"probe_dns_lookup_time_seconds", "Time spent resolving names in the last run of the journey.", "gauge",
		func(e *expo, s *targetSeries) { e.sample(s, labels{}, s.dns) }},
	{"picket_target_state", "Alert state of a target: 0 ok, 1 pending, 2 firing.", "gauge",
		func(e *expo, s *targetSeries) { e.sample(s, labels{}, s.state) }},
	{"picket_probe_runs_total", "Journey runs by outcome.", "counter", writeRuns},
	{"probe_http_status_code", "HTTP status code of the last answer of a step (0: no answer).", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return ss.httpStatus, ss.http })},
	{"probe_http_duration_seconds", "Duration of the last HTTP request of a step by phase (resolve, connect, tls, processing, transfer).", "gauge", writePhases},
	{"probe_ssl_earliest_cert_expiry", "Unix time of the earliest certificate expiry in the peer chain of a step.", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return ss.certExpiry, ss.hasCert })},
	{"probe_grpc_healthcheck_response", "1 for the serving status the last gRPC health check of a step returned.", "gauge", writeGRPC},
	{"probe_icmp_rtt_seconds", "Average round trip of the last ping of a step.", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return ss.icmpRTT, ss.hasICMP })},
	// blackbox_exporter's names and shapes, so that its dashboards (Grafana 7587, the
	// blackbox-exporter mixin) and alerts read Picket's too.
	{"probe_icmp_duration_seconds", "Duration of the last ping of a step by phase (rtt: the average round trip).", "gauge",
		func(e *expo, s *targetSeries) {
			for _, ss := range s.steps {
				if ss.hasICMP {
					e.sample(s, labels{phase: icmpRTTPhase, step: ss.label}, ss.icmpRTT)
				}
			}
		}},
	{"probe_http_version", "HTTP version of the last answer of a step (1.1, 2; 0: no answer).", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return ss.wire.HTTPVersion, ss.http })},
	{"probe_http_ssl", "1 when the final answer of an HTTP step came over TLS.", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return boolValue(ss.wire.HTTPSSL), ss.http })},
	{"probe_http_redirects", "Redirects an HTTP step followed to its final answer.", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return float64(ss.wire.Redirects), ss.http })},
	{"probe_tls_version_info", "The TLS version of the last handshake of a step (1 for the version seen).", "gauge",
		func(e *expo, s *targetSeries) {
			for _, ss := range s.steps {
				if ss.wire.TLSVersion != "" { // one series a step, of the version it saw last, as blackbox does
					e.sample(s, labels{step: ss.label, version: tlsVersionLabel(ss.wire.TLSVersion)}, 1)
				}
			}
		}},
	{"probe_dns_answer_rrs", "Records in the answer section of a dns step's last answer.", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return float64(ss.wire.DNSAnswers), ss.isDNS })},
	{"probe_dns_authority_rrs", "Records in the authority section of a dns step's last answer.", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return float64(ss.wire.DNSAuthority), ss.isDNS })},
	{"probe_dns_additional_rrs", "Records in the additional section of a dns step's last answer.", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return float64(ss.wire.DNSAdditional), ss.isDNS })},
	{"probe_grpc_status_code", "gRPC status code of a step's last health check call (0 OK).", "gauge",
		stepGauge(func(ss *stepSeries) (float64, bool) { return float64(ss.wire.GRPCCode), ss.isGRPC })},
}, browserFamilies()...)

// browserFamilies are the browser steps' facts, one family each.
func browserFamilies() []family {
	var out []family
	for i, f := range browserFacts {
		out = append(out, family{f.name, f.help, "gauge",
			stepGauge(func(ss *stepSeries) (float64, bool) { return ss.facts[i], ss.browser && ss.hasFact[i] })})
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// stepGauge writes one sample per step that has the value (ok).
func stepGauge(value func(*stepSeries) (v float64, ok bool)) func(e *expo, s *targetSeries) {
	return func(e *expo, s *targetSeries) {
		for _, ss := range s.steps {
			if v, ok := value(ss); ok {
				e.sample(s, labels{step: ss.label}, v)
			}
		}
	}
}

func writeRuns(e *expo, s *targetSeries) {
	for i := range runStatuses {
		e.sample(s, labels{status: runLabels[i]}, float64(s.runs[i]))
	}
}

func writePhases(e *expo, s *targetSeries) {
	for _, ss := range s.steps {
		for i := range httpPhases {
			if ss.hasPhase[i] {
				e.sample(s, labels{phase: phaseLabels[i], step: ss.label}, ss.phases[i])
			}
		}
	}
}

func writeGRPC(e *expo, s *targetSeries) {
	for _, ss := range s.steps {
		if !ss.isGRPC {
			continue
		}
		for i, status := range grpcStatuses {
			v := 0.0
			if ss.grpc == status {
				v = 1
			}
			e.sample(s, labels{status: grpcLabels[i], step: ss.label}, v)
		}
	}
}

// writeTo writes every target's series, family by family.
func (m *targetMetrics) writeTo(w io.Writer) error {
	m.mu.RLock()
	order := slices.Clone(m.order)
	m.mu.RUnlock()
	e := &expo{w: w, vantage: m.vantage, buf: make([]byte, 0, 64<<10)}
	for _, f := range targetFamilies {
		e.family = &f
		e.started = false
		for _, s := range order {
			s.mu.Lock()
			f.write(e, s)
			s.mu.Unlock()
			if e.err != nil {
				return e.err
			}
		}
	}
	return e.flush()
}

// expo writes samples in the text format, with a family's HELP and TYPE before its
// first sample (a family with none is left out, as client_golang does).
type expo struct {
	w       io.Writer
	vantage string
	buf     []byte
	family  *family
	started bool
	err     error
}

// labels are a sample's labels beside its target's, each `name="value"` or "" for
// none, named by where they sort among journey, product, region and vantage (the text
// format wants them sorted, as client_golang writes them).
type labels struct {
	phase   string // between journey and product
	status  string // after region: status, serving_status
	step    string // after status
	version string // after vantage
}

// sample writes name{journey,[phase,]product,region,[status,][step,]vantage[,version]} v.
func (e *expo) sample(s *targetSeries, l labels, v float64) {
	e.head()
	e.buf = append(e.buf, e.family.name...)
	e.buf = append(e.buf, '{')
	e.buf = append(e.buf, s.journey...)
	e.buf = appendLabel(e.buf, l.phase)
	e.buf = append(append(e.buf, ','), s.rest...)
	e.buf = appendLabel(e.buf, l.status)
	e.buf = appendLabel(e.buf, l.step)
	e.buf = append(append(e.buf, ','), e.vantage...)
	e.buf = appendLabel(e.buf, l.version)
	e.buf = append(e.buf, "} "...)
	e.buf = appendFloat(e.buf, v)
	e.buf = append(e.buf, '\n')
	if len(e.buf) > 60<<10 {
		e.err = e.flush()
	}
}

// appendLabel appends ",l", or nothing for no label.
func appendLabel(b []byte, l string) []byte {
	if l == "" {
		return b
	}
	return append(append(b, ','), l...)
}

func (e *expo) head() {
	if e.started {
		return
	}
	e.started = true
	e.buf = append(e.buf, "# HELP "+e.family.name+" "+e.family.help+"\n# TYPE "+e.family.name+" "+e.family.kind+"\n"...)
}

func (e *expo) flush() error {
	if e.err != nil || len(e.buf) == 0 {
		return e.err
	}
	_, err := e.w.Write(e.buf)
	e.buf = e.buf[:0]
	return err
}

// appendFloat writes v as client_golang's text format does.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case v == -1:
		return append(b, "-1"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
