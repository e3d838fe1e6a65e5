package daemon

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/picket-dev/picket/probe"
)

// probeSeries are the probe_* series, named and shaped as blackbox_exporter's where they
// mean the same, so that its dashboards (Grafana 7587, the blackbox-exporter mixin) and
// alerts read Picket's too (examples/prometheus/scrape.yml sets their `instance`).
// Journey-wide series carry targetLabels; per-step ones add `step`.
type probeSeries struct {
	success, duration, dnsLookup *prometheus.GaugeVec // per journey

	httpDuration, httpStatus, httpVersion, httpSSL, httpRedirects *prometheus.GaugeVec
	certExpiry, tlsVersion                                        *prometheus.GaugeVec
	dnsAnswer, dnsAuthority, dnsAdditional                        *prometheus.GaugeVec
	grpcHealth, grpcStatusCode                                    *prometheus.GaugeVec
	icmpRTT, icmpDuration                                         *prometheus.GaugeVec
	browser                                                       []browserGauge
}

func gaugeVec(name, help string, labels []string, extra ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append(append([]string{}, labels...), extra...))
}

func newProbeSeries() *probeSeries {
	step := append(append([]string{}, targetLabels...), "step")
	return &probeSeries{
		success:   gaugeVec("probe_success", "Whether the last run of the journey succeeded (degraded counts as success).", targetLabels),
		duration:  gaugeVec("probe_duration_seconds", "How long the last run of the journey took.", targetLabels),
		dnsLookup: gaugeVec("probe_dns_lookup_time_seconds", "Time spent resolving names in the last run of the journey.", targetLabels),

		httpDuration:  gaugeVec("probe_http_duration_seconds", "Duration of the last HTTP request of a step by phase (resolve, connect, tls, processing, transfer).", step, "phase"),
		httpStatus:    gaugeVec("probe_http_status_code", "HTTP status code of the last answer of a step (0: no answer).", step),
		httpVersion:   gaugeVec("probe_http_version", "HTTP version of the last answer of a step (1.1, 2; 0: no answer).", step),
		httpSSL:       gaugeVec("probe_http_ssl", "1 when the final answer of an HTTP step came over TLS.", step),
		httpRedirects: gaugeVec("probe_http_redirects", "Redirects an HTTP step followed to its final answer.", step),
		certExpiry:    gaugeVec("probe_ssl_earliest_cert_expiry", "Unix time of the earliest certificate expiry in the peer chain of a step.", step),
		tlsVersion:    gaugeVec("probe_tls_version_info", "The TLS version of the last handshake of a step (1 for the version seen).", step, "version"),
		dnsAnswer:     gaugeVec("probe_dns_answer_rrs", "Records in the answer section of a dns step's last answer.", step),
		dnsAuthority:  gaugeVec("probe_dns_authority_rrs", "Records in the authority section of a dns step's last answer.", step),
		dnsAdditional: gaugeVec("probe_dns_additional_rrs", "Records in the additional section of a dns step's last answer.", step),
		grpcHealth: gaugeVec("probe_grpc_healthcheck_response", "1 for the serving status the last gRPC health check of a step returned.",
			step, "serving_status"),
		grpcStatusCode: gaugeVec("probe_grpc_status_code", "gRPC status code of a step's last health check call (0 OK).", step),
		icmpRTT:        gaugeVec("probe_icmp_rtt_seconds", "Average round trip of the last ping of a step.", step),
		icmpDuration:   gaugeVec("probe_icmp_duration_seconds", "Duration of the last ping of a step by phase (rtt: the average round trip).", step, "phase"),
		browser:        newBrowserGauges(step),
	}
}

// all lists every vector: for registering and for forgetting a target.
func (p *probeSeries) all() []*prometheus.GaugeVec {
	all := []*prometheus.GaugeVec{p.success, p.duration, p.dnsLookup, p.httpDuration, p.httpStatus, p.httpVersion, p.httpSSL,
		p.httpRedirects, p.certExpiry, p.tlsVersion, p.dnsAnswer, p.dnsAuthority, p.dnsAdditional, p.grpcHealth,
		p.grpcStatusCode, p.icmpRTT, p.icmpDuration}
	for _, g := range p.browser {
		all = append(all, g.vec)
	}
	return all
}

func (p *probeSeries) collectors() []prometheus.Collector {
	var cs []prometheus.Collector
	for _, v := range p.all() {
		cs = append(cs, v)
	}
	return cs
}

// observeStep sets a step's series (l: target labels and the step name) and returns the
// time it spent resolving names, which probe_dns_lookup_time_seconds sums per journey.
func (p *probeSeries) observeStep(l []string, st probe.StepResult, s *targetSeries) time.Duration {
	if !st.CertExpiry.IsZero() {
		p.certExpiry.WithLabelValues(l...).Set(float64(st.CertExpiry.Unix()))
	}
	s.setTLSVersion(p.tlsVersion, l, st.Wire.TLSVersion)
	switch st.Kind {
	case "http":
		p.observeHTTP(l, st)
		return st.Phases.DNS
	case "dns":
		p.dnsAnswer.WithLabelValues(l...).Set(float64(st.Wire.DNSAnswers))
		p.dnsAuthority.WithLabelValues(l...).Set(float64(st.Wire.DNSAuthority))
		p.dnsAdditional.WithLabelValues(l...).Set(float64(st.Wire.DNSAdditional))
		return st.Duration // a dns step is a lookup, as blackbox's dns prober counts it
	case "grpc":
		p.observeGRPC(l, st)
		return st.Phases.DNS
	case "browser":
		p.observeHTTP(l, st) // the phases and status of the document it ended on
		p.observeBrowser(l, st)
		return st.Phases.DNS
	case "icmp":
		if ms, err := strconv.ParseFloat(st.Info["rtt_avg_ms"], 64); err == nil {
			p.icmpRTT.WithLabelValues(l...).Set(ms / 1000)
			p.icmpDuration.WithLabelValues(append(l, "rtt")...).Set(ms / 1000)
		}
		return 0
	}
	return st.Phases.DNS
}

func (p *probeSeries) observeHTTP(l []string, st probe.StepResult) {
	p.httpStatus.WithLabelValues(l...).Set(float64(st.HTTPStatus))
	p.httpVersion.WithLabelValues(l...).Set(st.Wire.HTTPVersion)
	p.httpSSL.WithLabelValues(l...).Set(boolValue(st.Wire.HTTPSSL))
	p.httpRedirects.WithLabelValues(l...).Set(float64(st.Wire.Redirects))
	for _, ph := range []struct {
		name string
		d    time.Duration
	}{{"resolve", st.Phases.DNS}, {"connect", st.Phases.Connect}, {"tls", st.Phases.TLS}, {"processing", st.Phases.Processing}, {"transfer", st.Phases.Transfer}} {
		p.httpDuration.WithLabelValues(append(l, ph.name)...).Set(ph.d.Seconds())
	}
}

func (p *probeSeries) observeGRPC(l []string, st probe.StepResult) {
	p.grpcStatusCode.WithLabelValues(l...).Set(float64(st.Wire.GRPCCode))
	for _, status := range []string{"SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", "UNKNOWN"} {
		p.grpcHealth.WithLabelValues(append(l, status)...).Set(boolValue(st.Info["grpc_status"] == status))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// setTLSVersion keeps one probe_tls_version_info series per step, as blackbox does: a
// step whose version changes (or that stops using TLS) drops the old one.
func (s *targetSeries) setTLSVersion(vec *prometheus.GaugeVec, l []string, version string) {
	step := l[len(l)-1]
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.tlsVersion[step]
	if old == version {
		return // the series is there, at 1
	}
	if old != "" {
		vec.DeleteLabelValues(append(l, blackboxTLSVersion(old))...)
	}
	if version == "" {
		delete(s.tlsVersion, step)
		return
	}
	if s.tlsVersion == nil {
		s.tlsVersion = map[string]string{}
	}
	s.tlsVersion[step] = version
	vec.WithLabelValues(append(l, blackboxTLSVersion(version))...).Set(1)
}

// blackboxTLSVersion spells a version as blackbox_exporter's label does: "TLS 1.3".
func blackboxTLSVersion(v string) string { return "TLS " + v }

// browserGauge is one fact of a browser step's page, from its info.
type browserGauge struct {
	info  string  // key in the step's info
	scale float64 // to the metric's unit
	vec   *prometheus.GaugeVec
}

func newBrowserGauges(step []string) []browserGauge {
	gauge := func(info string, scale float64, name, help string) browserGauge {
		return browserGauge{info, scale, gaugeVec(name, help, step)}
	}
	return []browserGauge{
		gauge("lcp_ms", 1e-3, "probe_browser_lcp_seconds", "Largest contentful paint of the page a browser step ended on (0: nothing painted)."),
		gauge("cls", 1, "probe_browser_cls", "Cumulative layout shift of the page a browser step ended on."),
		gauge("load_ms", 1e-3, "probe_browser_load_seconds", "Navigation start to the load event's end, of the page a browser step ended on."),
		gauge("console_errors", 1, "probe_browser_console_errors", "Console errors and uncaught exceptions in the last run of a browser step."),
		gauge("failed_requests", 1, "probe_browser_failed_requests", "Requests with status >= 400, blocked or failed in the last run of a browser step."),
		gauge("bytes", 1, "probe_browser_transfer_bytes", "Bytes the last run of a browser step received over the network."),
		gauge("browser_memory_mb", 1<<20, "probe_browser_memory_bytes", "Memory of the browser (all its processes) after the last run of a browser step."),
	}
}

func (p *probeSeries) observeBrowser(l []string, st probe.StepResult) {
	for _, g := range p.browser {
		if v, err := strconv.ParseFloat(st.Info[g.info], 64); err == nil {
			g.vec.WithLabelValues(l...).Set(v * g.scale)
		}
	}
}
