// Package daemon wires the long-running Picket: config → scheduler → engine → outbox,
// with metrics, the status page and API, heartbeat, self-check, reload and shutdown.
// It holds no logic of its own beyond the wiring and the order of shutdown.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/cluster"
	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/alert/statussync"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	Logger     *slog.Logger
	Version    string
	Commit     string
	// Reload asks for a config reload (SIGHUP); POST /-/reload does the same.
	Reload <-chan struct{}
	// OnListen, if set, is told the address the HTTP server listens on.
	OnListen func(addr string)
	// StateDir, if set, overrides the config's state_dir (the demo uses a fresh one).
	StateDir string
	// Shard, if set, overrides the config's shard: probe only that share of the targets.
	Shard *config.Shard
	// WrapGossip, if set, wraps the cluster's gossip transport (tests cut a vantage off).
	WrapGossip WrapGossip
	// Clock is the time of every decision (scheduler, engine, outbox, heartbeat,
	// self-check, health, the fleet's alone timing); nil: the real clock.
	Clock clock.Clock
	// StateAlarmAfter is how long state writes must fail before the [STATE] notice (and
	// work before it resolves); 0 means DefaultStateAlarmAfter. Tests shorten it.
	StateAlarmAfter time.Duration

	// maxConcurrency, if above 0, caps the scheduler's slots (tests: a scheduler that
	// falls behind, as the fixed pool of concurrency slots did when targets hung).
	maxConcurrency int
}

// Run loads the config and runs the daemon until ctx ends. A config that does not load
// is an error before anything starts.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	d, err := newDaemon(cfg, o)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

func loadConfig(o Options) (*config.Config, error) {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	// At start and at every reload: a warning is a config that runs but drops something.
	for _, w := range cfg.Warnings {
		o.Logger.Warn("config warning", "warning", w.Warning())
	}
	if o.StateDir != "" {
		cfg.StateDir = o.StateDir
	}
	if o.Shard != nil {
		return cfg.WithShard(*o.Shard)
	}
	return cfg, nil
}

type daemon struct {
	o       Options
	log     *slog.Logger
	clock   clock.Clock
	cfgMu   sync.Mutex
	cfg     *config.Config
	store   *store.Store
	metrics *Metrics
	outbox  *notify.Outbox
	engine  *alert.Engine
	cluster *cluster.Cluster   // nil: a lone vantage
	fleet   *fleet.GossipFleet // the engine's view of the cluster
	runner  atomic.Pointer[probe.Runner]
	// screenshots is the folder of browser steps' failure screenshots, in the state folder.
	screenshots string
	sched       *probe.Scheduler
	confirm     *probe.Confirmer // confirmation runs (confirm:)
	history     *recorder
	started     time.Time
	reloads     chan chan error
	page        atomic.Pointer[http.Handler] // status page and API; swapped on reload
	// publicPage is the customers' page of public.listen; swapped on reload.
	publicPage atomic.Pointer[statuspage.PublicHandler]
	skipLog    rateLimit // skipped runs are counted always, logged rarely
	// pageMu orders a fleet notice's record after its queueing, before its confirmation.
	pageMu sync.Mutex
	// A reload wakes the heartbeat and the self-check: they read the new config at once.
	wakeHeartbeat, wakeSelfCheck chan struct{}
	impaired                     *impairment // nil: not impaired; the self-check's own
	state                        stateWatch  // the store's health, followed by the tick (state.go)
}

// rateLimit allows one event per key per minute, so an overloaded daemon does not flood
// its log with the same warning.
type rateLimit struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *rateLimit) allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	if now.Sub(r.last[key]) < time.Minute {
		return false
	}
	r.last[key] = now
	return true
}

func newDaemon(cfg *config.Config, o Options) (*daemon, error) {
	// A damaged file is moved aside and a fresh one started here; the first tick says so.
	st, err := store.Open(cfg.StateDir, store.Options{Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	clk := clock.Or(o.Clock)
	d := &daemon{
		o: o, log: o.Logger, clock: clk, cfg: cfg, store: st, started: clk.Now(),
		screenshots:   filepath.Join(cfg.StateDir, "screenshots"),
		metrics:       NewMetrics(cfg.Vantage, o.Version, o.Commit),
		history:       newRecorder(st, o.Logger),
		reloads:       make(chan chan error),
		wakeHeartbeat: make(chan struct{}, 1), wakeSelfCheck: make(chan struct{}, 1),
		state: stateWatch{after: cmp.Or(o.StateAlarmAfter, DefaultStateAlarmAfter)},
	}
	if cfg.Cluster != nil {
		if d.cluster, err = startCluster(cfg.Cluster, o, st); err != nil {
			_ = st.Close()
			return nil, err
		}
		d.fleet = newFleet(d.cluster, cfg.Vantage, clk)
		if cfg.Cluster.Secret.Reveal() == "" {
			o.Logger.Warn("cluster gossip is in plaintext (cluster.insecure: true): anyone who reaches the gossip port can join the fleet and vote",
				"bind", cfg.Cluster.Bind)
		}
	}
	fail := func(err error) (*daemon, error) {
		if d.cluster != nil {
			_ = d.cluster.Close()
		}
		_ = st.Close()
		return nil, err
	}
	d.restoreImpaired()
	engine, ob, err := alert.NewPaging(alert.PagingOptions{
		Engine: alert.EngineOptions{
			Config: engineConfig(cfg), Store: st, Logger: o.Logger, Clock: clk, Peers: enginePeers(cfg, d.fleet),
			Impaired: d.impaired != nil, // held from the start: restored incidents are not sent either
		},
		Outbox: d.outboxOptions(cfg, st),
	})
	if err != nil {
		return fail(err)
	}
	d.outbox = ob
	d.engine = engine
	if d.cluster != nil {
		d.metrics.Registry.MustRegister(newClusterCollector(d.cluster, engine))
	}
	d.runner.Store(d.newRunner())
	d.sched = probe.NewScheduler(probe.SchedulerOptions{
		Run:            func(ctx context.Context, t *config.Target) probe.Result { return d.runner.Load().Run(ctx, t) },
		Concurrency:    cfg.Concurrency,
		MaxConcurrency: o.maxConcurrency,
		OnResult:       d.onResult,
		OnStart:        func(_ *config.Target, lag time.Duration) { d.metrics.lag.Observe(lag.Seconds()) },
		OnSkip: func(t *config.Target) {
			d.metrics.skipped.Inc()
			if d.skipLog.allow(t.ID, clk.Now()) {
				d.log.Warn("run skipped: the previous run is still going (logged once a minute per target)", "target", t.ID)
			}
		},
		Logger: o.Logger,
		Clock:  clk,
	})
	d.sched.SetTargets(cfg.Targets)
	d.confirm = probe.NewConfirmer(probe.ConfirmOptions{RunNow: d.sched.RunNow, OnSettled: engine.ScopeKnown, Clock: clk})
	d.confirm.SetConfig(cfg.Confirm, cfg.Targets)
	d.metrics.Registry.MustRegister(newSchedulerCollector(d.sched))
	d.metrics.KnowNotifiers(cfg)
	d.metrics.lastReload.SetToCurrentTime()
	return d, nil
}

// newRunner keeps the screenshots of failed browser steps in the state folder (the one
// of the start: a reload does not move it), where the status page serves them from.
func (d *daemon) newRunner() *probe.Runner {
	return probe.NewRunner(probe.WithScreenshotDir(d.screenshots))
}

// outboxOptions wires the outbox to the metrics and the fleet (NewPaging wires it to
// the engine: the incidents' timelines, and Superseded).
func (d *daemon) outboxOptions(cfg *config.Config, st *store.Store) notify.OutboxOptions {
	opts := notify.OutboxOptions{
		Store: st, Notifiers: notifiers.BuildWith(cfg, notifiers.Options{Logger: d.o.Logger, Threads: st}), Logger: d.o.Logger, Clock: d.clock,
		MaxEntries: cfg.Alerting.OutboxMaxEntries,
		OnResult: func(r notify.AttemptResult) {
			d.metrics.ObserveNotification(r)
			// The engine has noted it first: it queues a page and records it in the fleet
			// under its lock, which NoteDelivery takes, so the record is there before it
			// is confirmed here. (A quick acceptance came first, and the record made after
			// it replaced the confirmation: the others took over and paged again.)
			if r.OK && d.cluster != nil && !alert.IsComms(r.NotificationID) { // a chat message confirms no page
				// Complete: every pager of the notification accepted (see Outbox.accept).
				d.pageMu.Lock() // the same for the fleet's notices (notice)
				fleet.ConfirmPage(d.fleet, r)
				d.pageMu.Unlock()
			}
		},
		OnDrop: d.metrics.ObserveDrop,
	}
	if d.cluster != nil {
		// Only a fleet shares its keys with other senders: then the outbox asks before
		// each attempt, and never coalesces a queued resolve away.
		opts.Obsolete = func(n notify.Notification) string { return fleet.ObsoletePage(d.fleet, n) }
	}
	return opts
}

func (d *daemon) onResult(t *config.Target, r probe.Result) {
	d.metrics.ObserveResult(t, r)
	if tr, changed := d.engine.Observe(r); changed {
		d.metrics.ObserveState(t, tr.To)
		switch {
		case tr.To == alert.StatePending && tr.From == alert.StateOK:
			d.confirm.FirstFailure(t) // its threshold is known in a moment, not an interval
		case tr.To == alert.StateFiring:
			d.confirm.Firing(t) // and the scope: its region's and its journey's targets run
		}
	}
	d.history.add(store.Result{Target: t.ID, At: r.Started, Status: string(r.Status)})
}

func (d *daemon) config() *config.Config {
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	return d.cfg
}

// run starts every part, serves until ctx ends, then stops them in order: probes first
// (nothing new to tell), then HTTP, then the outbox gets a last chance to deliver.
func (d *daemon) run(ctx context.Context) error {
	defer d.store.Close()
	cfg := d.config()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		if d.cluster != nil {
			_ = d.cluster.Close()
		}
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	pub, err := listenPublic(cfg.PublicListen)
	if err != nil {
		_ = ln.Close()
		if d.cluster != nil {
			_ = d.cluster.Close()
		}
		return err
	}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
	if d.o.OnListen != nil {
		d.o.OnListen(ln.Addr().String())
	}
	d.log.Info("picket running", "listen", ln.Addr().String(), "targets", len(cfg.Targets), "vantage", cfg.Vantage, "state_dir", cfg.StateDir)

	inner, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var outboxWG sync.WaitGroup
	outboxCtx, stopOutbox := context.WithCancel(context.Background())
	defer stopOutbox()
	outboxWG.Add(1)
	go func() { defer outboxWG.Done(); _ = d.outbox.Run(outboxCtx) }()
	goRun := func(name string, fn func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(inner)
			d.log.Debug("stopped", "part", name)
		}()
	}
	goRun("scheduler", func(ctx context.Context) { _ = d.sched.Run(ctx) })
	goRun("confirm", d.confirm.Run)
	goRun("store-watch", d.store.Watch) // a state file deleted, replaced or damaged under us
	goRun("ticker", d.tick)
	goRun("heartbeat", d.heartbeat)
	goRun("self-check", d.selfCheck)
	goRun("fleet", d.watchFleet)
	if pub != nil {
		goRun("public status page", func(ctx context.Context) { d.servePublic(ctx, pub) })
	}
	if cfg.Public != nil && cfg.Public.Sync != nil {
		syncer := statussync.New(statussync.Options{Sync: cfg.Public.Sync, Clock: d.clock, Logger: d.log,
			States: func() map[alert.Cell]alert.ComponentState { return d.engine.PublicStates() }})
		goRun("status sync", syncer.Run) // public.sync changes take effect at the next start
	}
	serveErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
		close(serveErr)
	}()

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("http server: %w", err)
			break loop
		case <-d.o.Reload:
			_ = d.reload()
		case reply := <-d.reloads:
			reply <- d.reload()
		}
	}
	d.log.Info("shutting down")
	stop()
	wg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	<-serveErr
	d.history.flush()
	// Give the outbox a short, bounded chance; what it cannot deliver stays in the store
	// and is sent on the next start.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 3*time.Second)
	_ = d.outbox.Flush(flushCtx)
	cancelFlush()
	stopOutbox()
	outboxWG.Wait()
	d.runner.Load().Close()
	if d.cluster != nil {
		// Last: a graceful leave tells the others this vantage departed, not went silent.
		if err := d.cluster.Close(); err != nil {
			d.log.Warn("cluster leave", "err", err)
		}
	}
	d.log.Info("stopped", "undelivered", d.outbox.Pending())
	return runErr
}

// reload loads the config again; a config that does not validate is refused with every
// problem logged, and the running one stays.
func (d *daemon) reload() error {
	cfg, err := loadConfig(d.o)
	if err != nil {
		d.metrics.reloads.WithLabelValues("failure").Inc()
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				d.log.Error("config reload refused", "problem", e.Error())
			}
		} else {
			d.log.Error("config reload refused", "err", err)
		}
		return err
	}
	old := d.config()
	if cfg.Listen != old.Listen || cfg.PublicListen != old.PublicListen || cfg.StateDir != old.StateDir || !sameCluster(cfg.Cluster, old.Cluster) {
		d.log.Warn("listen, public.listen, state_dir and cluster changes take effect at the next start", "listen", old.Listen, "state_dir", old.StateDir)
		cfg.Cluster = old.Cluster
	}
	d.cfgMu.Lock()
	d.cfg = cfg
	d.cfgMu.Unlock()
	d.outbox.SetNotifiers(notifiers.BuildWith(cfg, notifiers.Options{Logger: d.log, Threads: d.store}))
	d.metrics.KnowNotifiers(cfg)
	d.outbox.SetMaxEntries(cfg.Alerting.OutboxMaxEntries)
	d.engine.Reload(engineConfig(cfg))
	d.setStatusPage(cfg)
	// A new runner drops HTTP transports of the old config's TLS settings.
	d.runner.Swap(d.newRunner()).Close()
	d.sched.SetTargets(cfg.Targets)
	d.confirm.SetConfig(cfg.Confirm, cfg.Targets)
	wake(d.wakeHeartbeat)
	wake(d.wakeSelfCheck)
	keep := make(map[string]bool, len(cfg.Targets))
	for _, t := range cfg.Targets {
		keep[t.ID] = true
	}
	d.metrics.Forget(keep)
	d.metrics.reloads.WithLabelValues("success").Inc()
	d.metrics.lastReload.SetToCurrentTime()
	d.log.Info("config reloaded", "targets", len(cfg.Targets))
	return nil
}

// requestReload is POST /-/reload: the reload runs on the main loop, like SIGHUP.
func (d *daemon) requestReload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case d.reloads <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tick drives the engine's timers, refreshes gauges and flushes history.
func (d *daemon) tick(ctx context.Context) {
	// The engine's timers (group wait, silences) are checked often, so a page leaves at
	// most 100 ms after its group wait; gauges, history and pruning need less.
	t := clock.NewTicker(d.clock, 100*time.Millisecond)
	defer t.Stop()
	lastGauges, lastFlush, lastPrune := time.Time{}, d.clock.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C():
			d.engine.Tick()
			if now.Sub(lastGauges) >= time.Second {
				d.metrics.ObserveIncidents(d.engine.OpenIncidents())
				d.metrics.outboxDepth.Set(float64(d.outbox.Pending()))
				d.watchState(now)
				d.metrics.outboxMax.Set(float64(d.outbox.MaxEntries()))
				lastGauges = now
			}
			if now.Sub(lastFlush) >= 5*time.Second {
				d.history.flush()
				lastFlush = now
			}
			if now.Sub(lastPrune) >= time.Hour {
				if err := d.store.PruneHistory(now.Add(-91 * 24 * time.Hour)); err != nil {
					d.log.Warn("history prune failed", "err", err)
				}
				lastPrune = now
			}
		}
	}
}

// healthy reports whether the scheduler keeps its schedule: it is not stalled (some run
// started within three of the shortest intervals, after a start-up grace of the same
// length) and its runs are not late (none waits past its interval now, and none started
// that late within the same three intervals). Late runs are verdicts that come late:
// /readyz fails and the heartbeat is withheld, so that someone hears of it.
func (d *daemon) healthy() (bool, string) {
	cfg := d.config()
	if len(cfg.Targets) == 0 {
		return true, "no targets"
	}
	shortest := cfg.Targets[0].Interval
	for _, t := range cfg.Targets {
		shortest = min(shortest, t.Interval)
	}
	limit, now, st := 3*shortest, d.clock.Now(), d.sched.Stats()
	ok, why := d.running(st, now, limit)
	if !ok {
		return false, why
	}
	if onSchedule, lateWhy := onTime(st, now, limit); !onSchedule {
		return false, lateWhy
	}
	return true, why
}

// running: some run started within limit (or the daemon started less than limit ago).
func (d *daemon) running(st probe.SchedulerStats, now time.Time, limit time.Duration) (bool, string) {
	if st.LastStart.IsZero() {
		if now.Sub(d.started) < limit {
			return true, "starting"
		}
		return false, "no run has started since " + d.started.Format(time.RFC3339)
	}
	if since := now.Sub(st.LastStart); since > limit {
		return false, fmt.Sprintf("no run started for %s (limit %s)", since.Round(time.Second), limit)
	}
	return true, "ok"
}

// onTime: no run waits past its interval now, and none started that late within
// window (so a scheduler that keeps falling behind does not look ready between its
// late starts).
func onTime(st probe.SchedulerStats, now time.Time, window time.Duration) (bool, string) {
	if st.Overdue > 0 {
		return false, fmt.Sprintf("runs wait longer than their interval to start: %d of them, the longest %s (%d of %d slots in use)",
			st.Overdue, st.LongestWait.Round(time.Millisecond), st.InFlight, st.Slots)
	}
	if !st.LastLate.IsZero() && now.Sub(st.LastLate) < window {
		return false, fmt.Sprintf("runs start late: one started %s after its plan, more than its interval, %s ago (%d late runs in all)",
			st.LastLateLag.Round(time.Millisecond), now.Sub(st.LastLate).Round(time.Second), st.Late)
	}
	return true, "ok"
}

// sameCluster reports whether two cluster: settings are the same (a change needs a restart).
func sameCluster(a, b *config.Cluster) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Member == b.Member && a.Bind == b.Bind && a.Advertise == b.Advertise &&
		strings.Join(a.Peers, ",") == strings.Join(b.Peers, ",") && a.Secret.Reveal() == b.Secret.Reveal() &&
		a.Quorum == b.Quorum && a.AloneAfter == b.AloneAfter && a.TakeoverAfter == b.TakeoverAfter
}
