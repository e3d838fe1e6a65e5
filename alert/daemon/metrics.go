package daemon

import (
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// Metrics are Picket's Prometheus series. Names follow blackbox_exporter where they mean
// the same, so its dashboards carry over. Nothing here is global: the daemon owns one
// registry. No label ever holds a secret: labels are product, journey, region, step,
// vantage, phase, notifier and fixed words.
type Metrics struct {
	Registry *prometheus.Registry

	success      *prometheus.GaugeVec
	duration     *prometheus.GaugeVec
	httpDuration *prometheus.GaugeVec
	httpStatus   *prometheus.GaugeVec
	certExpiry   *prometheus.GaugeVec
	grpcHealth   *prometheus.GaugeVec
	icmpRTT      *prometheus.GaugeVec
	dnsLookup    *prometheus.GaugeVec
	runs         *prometheus.CounterVec
	state        *prometheus.GaugeVec
	incidents    *prometheus.GaugeVec
	notifies     *prometheus.CounterVec
	outboxDepth  prometheus.Gauge
	outboxMax    prometheus.Gauge
	dropped      *prometheus.CounterVec
	lag          prometheus.Histogram
	skipped      prometheus.Counter
	impaired     prometheus.Gauge
	reloads      *prometheus.CounterVec
	lastReload   prometheus.Gauge

	// The state store's trouble (state.go): pages go out regardless, these say so.
	outboxUnpersisted prometheus.Gauge
	storeWriteErrors  prometheus.Counter
	storeResets       prometheus.Counter

	vantage string
	mu      sync.Mutex
	cache   map[string]*targetSeries // by target id; children resolved once, not per probe
}

var targetLabels = []string{"product", "journey", "region", "vantage"}

// NewMetrics registers every series on a fresh registry.
func NewMetrics(vantage, version, commit string) *Metrics {
	stepLabels := append(append([]string{}, targetLabels...), "step")
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		vantage:  vantage,
		cache:    map[string]*targetSeries{},
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_success", Help: "Whether the last run of the journey succeeded (degraded counts as success)."}, targetLabels),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_duration_seconds", Help: "How long the last run of the journey took."}, targetLabels),
		httpDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_http_duration_seconds", Help: "Duration of the last HTTP request of a step by phase (resolve, connect, tls, processing, transfer)."},
			append(append([]string{}, stepLabels...), "phase")),
		httpStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_http_status_code", Help: "HTTP status code of the last answer of a step (0: no answer)."}, stepLabels),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_ssl_earliest_cert_expiry", Help: "Unix time of the earliest certificate expiry in the peer chain of a step."}, stepLabels),
		grpcHealth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_grpc_healthcheck_response", Help: "1 for the serving status the last gRPC health check of a step returned."},
			append(append([]string{}, stepLabels...), "serving_status")),
		icmpRTT: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_icmp_rtt_seconds", Help: "Average round trip of the last ping of a step."}, stepLabels),
		dnsLookup: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_dns_lookup_time_seconds", Help: "Time spent resolving names in the last run of the journey."}, targetLabels),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picket_probe_runs_total", Help: "Journey runs by outcome."}, append(append([]string{}, targetLabels...), "status")),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "picket_target_state", Help: "Alert state of a target: 0 ok, 1 pending, 2 firing."}, targetLabels),
		incidents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "picket_incidents_open", Help: "Open incidents by scope."}, []string{"scope"}),
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picket_notifications_total", Help: "Notification attempts by notifier, action and result (ok, retry, permanent)."},
			[]string{"notifier", "action", "result"}),
		outboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "picket_outbox_depth", Help: "Notifications written but not yet accepted by their receiver."}),
		outboxUnpersisted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "picket_outbox_unpersisted", Help: "Notifications the state store refused: delivered from memory, lost on a restart until written."}),
		storeWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "picket_store_write_errors_total", Help: "State store writes that failed (a full or failing disk)."}),
		storeResets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "picket_store_resets_total", Help: "Fresh state files started in place of one found damaged, deleted or replaced."}),
		outboxMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "picket_outbox_max_entries", Help: "The outbox's bound (alerting.outbox_max_entries): past it the least important entries are dropped."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picket_outbox_dropped_total", Help: "Notifications dropped unsent: coalesced (a later one of the same key and notifier made them moot) or shed (the outbox was full)."},
			[]string{"notifier", "action", "reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "picket_scheduler_lag_seconds", Help: "Deviation of journey runs from the plan: actual minus planned start (the plan is regular, a fixed offset per target).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "picket_scheduler_skipped_total", Help: "Runs skipped because the previous run of the target was still going."}),
		impaired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "picket_impaired", Help: "1 when this vantage's own network checks fail and platform pages are held."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picket_config_reloads_total", Help: "Config reloads by result."}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "picket_config_last_reload_success_timestamp_seconds", Help: "When the config was last loaded successfully."}),
	}
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "picket_up", Help: "1 while the daemon runs."})
	up.Set(1)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "picket_build_info", Help: "Build information."},
		[]string{"version", "commit", "goversion"})
	info.WithLabelValues(version, commit, runtime.Version()).Set(1)
	m.Registry.MustRegister(m.success, m.duration, m.httpDuration, m.httpStatus, m.certExpiry, m.grpcHealth, m.icmpRTT, m.dnsLookup, m.runs,
		m.state, m.incidents, m.notifies, m.outboxDepth, m.outboxMax, m.dropped, m.lag, m.skipped, m.impaired, m.reloads, m.lastReload, up, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Registry.MustRegister(m.outboxUnpersisted, m.storeWriteErrors, m.storeResets)
	return m
}

// targetSeries caches one target's children.
type targetSeries struct {
	success, duration, dns, state prometheus.Gauge
	runs                          map[probe.Status]prometheus.Counter
}

func (m *Metrics) series(t *config.Target) *targetSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.cache[t.ID]; ok {
		return s
	}
	l := []string{t.Product, t.Journey, t.Region, m.vantage}
	s := &targetSeries{
		success: m.success.WithLabelValues(l...), duration: m.duration.WithLabelValues(l...),
		dns: m.dnsLookup.WithLabelValues(l...), state: m.state.WithLabelValues(l...),
		runs: map[probe.Status]prometheus.Counter{},
	}
	for _, st := range []probe.Status{probe.StatusUp, probe.StatusDegraded, probe.StatusDown} {
		s.runs[st] = m.runs.WithLabelValues(append(l, string(st))...)
	}
	m.cache[t.ID] = s
	return s
}

// ObserveResult records one run.
func (m *Metrics) ObserveResult(t *config.Target, r probe.Result) {
	s := m.series(t)
	if r.Up() {
		s.success.Set(1)
	} else {
		s.success.Set(0)
	}
	s.duration.Set(r.Duration.Seconds())
	if c := s.runs[r.Status]; c != nil {
		c.Inc()
	}
	var dns time.Duration
	for _, st := range r.Steps {
		l := []string{t.Product, t.Journey, t.Region, m.vantage, st.Name}
		if !st.CertExpiry.IsZero() {
			m.certExpiry.WithLabelValues(l...).Set(float64(st.CertExpiry.Unix()))
		}
		switch st.Kind {
		case "http":
			dns += st.Phases.DNS
			m.observeHTTP(l, st)
		case "dns":
			dns += st.Duration // a dns step is a lookup, as blackbox's dns prober counts it
		case "grpc":
			dns += st.Phases.DNS
			for _, status := range []string{"SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", "UNKNOWN"} {
				v := 0.0
				if st.Info["grpc_status"] == status {
					v = 1
				}
				m.grpcHealth.WithLabelValues(append(l, status)...).Set(v)
			}
		case "icmp":
			if ms, err := strconv.ParseFloat(st.Info["rtt_avg_ms"], 64); err == nil {
				m.icmpRTT.WithLabelValues(l...).Set(ms / 1000)
			}
		default:
			dns += st.Phases.DNS
		}
	}
	s.dns.Set(dns.Seconds())
}

func (m *Metrics) observeHTTP(l []string, st probe.StepResult) {
	m.httpStatus.WithLabelValues(l...).Set(float64(st.HTTPStatus))
	for _, ph := range []struct {
		name string
		d    time.Duration
	}{{"resolve", st.Phases.DNS}, {"connect", st.Phases.Connect}, {"tls", st.Phases.TLS}, {"processing", st.Phases.Processing}, {"transfer", st.Phases.Transfer}} {
		m.httpDuration.WithLabelValues(append(l, ph.name)...).Set(ph.d.Seconds())
	}
}

// ObserveState records a target's alert state.
func (m *Metrics) ObserveState(t *config.Target, st alert.State) {
	v := 0.0
	switch st {
	case alert.StatePending:
		v = 1
	case alert.StateFiring:
		v = 2
	}
	m.series(t).state.Set(v)
}

// ObserveIncidents sets the open incidents by scope.
func (m *Metrics) ObserveIncidents(incs []alert.Incident) {
	counts := map[string]int{}
	for _, inc := range incs {
		counts[inc.Scope]++
	}
	for _, sc := range config.Scopes {
		m.incidents.WithLabelValues(sc).Set(float64(counts[sc]))
	}
}

// ObserveNotification counts one delivery attempt.
func (m *Metrics) ObserveNotification(r notify.AttemptResult) {
	result := "ok"
	switch {
	case r.Err != nil && notify.IsPermanent(r.Err):
		result = "permanent"
	case r.Err != nil:
		result = "retry"
	}
	m.notifies.WithLabelValues(r.Notifier, r.Action, result).Inc()
}

// ObserveDrop counts one notification dropped unsent.
func (m *Metrics) ObserveDrop(d notify.Dropped) {
	m.dropped.WithLabelValues(d.Notifier, d.Action, d.Reason).Inc()
}

// Forget drops the series of targets no longer configured (after a reload).
func (m *Metrics) Forget(keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.cache {
		if keep[id] {
			continue
		}
		delete(m.cache, id)
		product, journey, region := splitID(id)
		l := prometheus.Labels{"product": product, "journey": journey, "region": region, "vantage": m.vantage}
		for _, v := range []*prometheus.GaugeVec{m.success, m.duration, m.dnsLookup, m.state, m.httpDuration, m.httpStatus, m.certExpiry, m.grpcHealth, m.icmpRTT} {
			v.DeletePartialMatch(l)
		}
		m.runs.DeletePartialMatch(l)
	}
}

func splitID(id string) (product, journey, region string) {
	var rest string
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			product, rest = id[:i], id[i+1:]
			break
		}
	}
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i] == '@' {
			return product, rest[:i], rest[i+1:]
		}
	}
	return product, rest, ""
}

// schedulerCollector exposes the scheduler's lateness at each scrape, from one Stats:
// late runs, the runs waiting to start now and the longest wait, and the slots.
type schedulerCollector struct {
	sched                                         *probe.Scheduler
	late, waiting, overdue, wait, slots, inFlight *prometheus.Desc
}

func newSchedulerCollector(s *probe.Scheduler) *schedulerCollector {
	return &schedulerCollector{
		sched:    s,
		late:     prometheus.NewDesc("picket_scheduler_late_runs_total", "Runs that started more than their interval after their plan.", nil, nil),
		waiting:  prometheus.NewDesc("picket_scheduler_waiting_runs", "Runs planned by now that have not started (waiting for a slot).", nil, nil),
		overdue:  prometheus.NewDesc("picket_scheduler_overdue_runs", "Runs waiting to start for longer than their interval.", nil, nil),
		wait:     prometheus.NewDesc("picket_scheduler_longest_wait_seconds", "How long the longest-waiting run has waited past its plan (0: none waits).", nil, nil),
		slots:    prometheus.NewDesc("picket_scheduler_slots", "The bound on runs at once, sized from the targets.", nil, nil),
		inFlight: prometheus.NewDesc("picket_scheduler_runs_in_flight", "Runs holding a slot.", nil, nil),
	}
}

func (sc *schedulerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sc.late, sc.waiting, sc.overdue, sc.wait, sc.slots, sc.inFlight} {
		ch <- d
	}
}

func (sc *schedulerCollector) Collect(ch chan<- prometheus.Metric) {
	st := sc.sched.Stats()
	ch <- prometheus.MustNewConstMetric(sc.late, prometheus.CounterValue, float64(st.Late))
	ch <- prometheus.MustNewConstMetric(sc.waiting, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(sc.overdue, prometheus.GaugeValue, float64(st.Overdue))
	ch <- prometheus.MustNewConstMetric(sc.wait, prometheus.GaugeValue, st.LongestWait.Seconds())
	ch <- prometheus.MustNewConstMetric(sc.slots, prometheus.GaugeValue, float64(st.Slots))
	ch <- prometheus.MustNewConstMetric(sc.inFlight, prometheus.GaugeValue, float64(st.InFlight))
}
