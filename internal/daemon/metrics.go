package daemon

import (
	"bufio"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// Metrics are Picket's Prometheus series. Names follow blackbox_exporter where they mean
// the same, so its dashboards carry over. Nothing here is global: the daemon owns one
// registry, and the per-target series beside it. No label ever holds a secret: labels
// are product, journey, region, step, vantage, phase, notifier and fixed words.
type Metrics struct {
	Registry *prometheus.Registry

	targets     *targetMetrics // every target's series (targetmetrics.go)
	incidents   *prometheus.GaugeVec
	notifies    *prometheus.CounterVec
	outboxDepth prometheus.Gauge
	outboxMax   prometheus.Gauge
	dropped     *prometheus.CounterVec
	lag         prometheus.Histogram
	skipped     prometheus.Counter
	impaired    prometheus.Gauge
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge

	// The state store's trouble (state.go): pages go out regardless, these say so.
	outboxUnpersisted prometheus.Gauge
	storeWriteErrors  prometheus.Counter
	storeResets       prometheus.Counter
}

// NewMetrics registers every series on a fresh registry; the per-target series
// (probe_*, picket_target_state, picket_probe_runs_total) are kept beside it and
// written by Handler.
func NewMetrics(vantage, version, commit string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		targets:  newTargetMetrics(vantage),
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
	m.Registry.MustRegister(m.incidents, m.notifies, m.outboxDepth, m.outboxMax, m.dropped, m.lag, m.skipped, m.impaired, m.reloads, m.lastReload, up, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Registry.MustRegister(m.outboxUnpersisted, m.storeWriteErrors, m.storeResets)
	// Counters exist at 0 before their first event: increase() and rate() in alerting
	// rules see a series that appears at 1 as no increase, so the first failure would
	// not alert (examples/prometheus/picket-rules.yml).
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

// KnowNotifiers starts the notification counters of these notifiers at 0 (see above).
func (m *Metrics) KnowNotifiers(cfg *config.Config) {
	for name := range cfg.Notifiers {
		for _, action := range []string{notify.ActionTrigger, notify.ActionResolve} {
			for _, result := range []string{"ok", "retry", "permanent"} {
				m.notifies.WithLabelValues(name, action, result)
			}
		}
	}
}

// Handler serves /metrics in the text format: the registry's series, then every
// target's, written straight from their values (gzip when the scraper asks for it).
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs, err := m.Registry.Gather()
		if err != nil {
			log.Error("metrics: gather", "err", err)
			http.Error(w, "gathering metrics failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var out io.Writer = w
		if gzipAccepted(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // (the level is valid)
			defer zw.Close()
			out = zw
		}
		bw := bufio.NewWriterSize(out, 64<<10)
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(bw, mf); err != nil {
				return // the scraper went away
			}
		}
		if bw.Flush() != nil || m.targets.writeTo(out) != nil {
			return
		}
	})
}

func gzipAccepted(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(coding, "gzip") {
			return true
		}
	}
	return false
}

// ObserveResult records one run.
func (m *Metrics) ObserveResult(t *config.Target, r probe.Result) { m.targets.observe(t, r) }

// ObserveState records a target's alert state.
func (m *Metrics) ObserveState(t *config.Target, st alert.State) {
	v := 0.0
	switch st {
	case alert.StatePending:
		v = 1
	case alert.StateFiring:
		v = 2
	}
	m.targets.setState(t, v)
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
func (m *Metrics) Forget(keep map[string]bool) { m.targets.forget(keep) }

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
