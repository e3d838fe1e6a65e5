package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// DaemonOptions describe one daemon-level scale run: the whole `picket run` (scheduler,
// prober, engine, store and history, metrics, status page and API) in a process of its
// own, against loopback servers in another.
type DaemonOptions struct {
	Targets  int
	Duration time.Duration // how long the daemon runs once it is ready
	Interval time.Duration // default 10s
	Timeout  time.Duration // default 5s
	Hosts    []string      // default DefaultHosts
	// ScrapeEvery is how often /metrics is read, as Prometheus would (default 15s; < 0:
	// never, but once at the end); StatusEvery how often /api/v1/status is, as one open
	// status page does (default 10s; < 0: never).
	ScrapeEvery, StatusEvery time.Duration
	// HeapProfile, when set, receives a heap profile of the daemon taken at the end;
	// CPUProfile a CPU profile of it after its first interval.
	HeapProfile, CPUProfile string
	// Dir holds the config and the state; default a fresh temporary directory, removed.
	Dir string
}

// DaemonReport is what one daemon-level run measured. Memory is in MiB, CPU in cores.
type DaemonReport struct {
	Targets   int     `json:"targets"`
	DurationS float64 `json:"duration_s"`
	IntervalS float64 `json:"interval_s"`
	Hosts     int     `json:"server_hosts"`
	NumCPU    int     `json:"num_cpu"`
	GoVersion string  `json:"go_version"`
	Started   string  `json:"started"`
	// LoadAvg is the machine's 1, 5 and 15 minute load averages at the start and end:
	// CPU figures taken on a busy machine are inflated by it.
	LoadAvgStart string `json:"load_avg_start"`
	LoadAvgEnd   string `json:"load_avg_end"`

	ReadyS      float64 `json:"ready_s"`           // process start to /healthz answering (config load, state open)
	PeakRSS     float64 `json:"rss_peak_mb"`       // VmHWM: start-up included
	SteadyRSS   float64 `json:"rss_steady_max_mb"` // the highest VmRSS after the first interval
	EndRSS      float64 `json:"rss_end_mb"`
	EndAnon     float64 `json:"rss_anon_end_mb"`
	EndFile     float64 `json:"rss_file_end_mb"` // mapped files: the state file, the binary
	KBPerTarget float64 `json:"kb_per_target"`   // SteadyRSS per target
	// Cores is the daemon's CPU over the run after its first interval, per second.
	Cores   float64 `json:"cores"`
	Threads int     `json:"threads_max"`

	// PlanDeviation is the daemon's own picket_scheduler_lag_seconds: start minus plan.
	PlanDeviationP50MS float64 `json:"plan_deviation_p50_ms"`
	PlanDeviationP99MS float64 `json:"plan_deviation_p99_ms"`
	// Gaps is what the servers saw: gap deviation and first-interval coverage.
	Gaps             GapReport `json:"gaps"`
	FirstIntervalPct float64   `json:"first_interval_pct"`

	Runs      map[string]float64 `json:"runs"` // by status, from picket_probe_runs_total
	Skipped   float64            `json:"skipped"`
	Late      float64            `json:"late_runs"`
	PerSecond float64            `json:"runs_per_s"`
	Expected  float64            `json:"expected_per_s"`

	Scrapes     int     `json:"scrapes"`
	ScrapeMaxS  float64 `json:"scrape_max_s"`
	ScrapeMB    float64 `json:"scrape_mb"`
	StatusReads int     `json:"status_reads"`
	StatusMaxS  float64 `json:"status_max_s"`
	// ReadErrors counts the scrapes and status reads that failed (LastReadError says
	// how): a daemon too busy to answer within a minute.
	ReadErrors    int            `json:"read_errors"`
	LastReadError string         `json:"last_read_error,omitempty"`
	ServerCores   float64        `json:"servers_cpu_cores"`
	DaemonStderr  string         `json:"daemon_stderr,omitempty"` // its last warnings
	Samples       []DaemonSample `json:"samples"`
}

// DaemonSample is the daemon's memory and CPU at one second of the run.
type DaemonSample struct {
	AtS  float64 `json:"t_s"`
	RSS  float64 `json:"rss_mb"`
	CPUS float64 `json:"cpu_s"`
}

func (o DaemonOptions) withDefaults() (DaemonOptions, error) {
	o.Interval, o.Timeout = cmp.Or(o.Interval, 10*time.Second), cmp.Or(o.Timeout, 5*time.Second)
	o.ScrapeEvery, o.StatusEvery = cmp.Or(o.ScrapeEvery, 15*time.Second), cmp.Or(o.StatusEvery, 10*time.Second)
	if len(o.Hosts) == 0 {
		o.Hosts = DefaultHosts(float64(o.Targets) / o.Interval.Seconds())
	}
	if o.Duration <= o.Interval {
		return o, fmt.Errorf("duration: want more than the interval %s, got %s", o.Interval, o.Duration)
	}
	_, _, err := layout(o.Targets)
	return o, err
}

// RunDaemon starts the servers, then the daemon on a generated config, measures it for
// o.Duration after it is ready, and stops both. The binary must call ServeChildIfAsked
// first thing.
func RunDaemon(ctx context.Context, o DaemonOptions) (*DaemonReport, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "picket-daemon-scale-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(o.Dir)
	}
	rep := &DaemonReport{Targets: o.Targets, DurationS: o.Duration.Seconds(), IntervalS: o.Interval.Seconds(),
		Hosts: len(o.Hosts), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		Started: time.Now().UTC().Format(time.RFC3339), LoadAvgStart: LoadAvg()}
	servers, err := startServerChild(ctx, o.Hosts, fmt.Sprintf("%s=%d", gapsEnv, int64(o.Interval)))
	if err != nil {
		return nil, err
	}
	runErr := runDaemonMeasured(ctx, o, servers, rep)
	usage, stopErr := servers.stop()
	if usage.Gaps != nil {
		rep.Gaps = *usage.Gaps
		rep.FirstIntervalPct = 100 * float64(rep.Gaps.InFirstInterval) / float64(o.Targets)
	}
	rep.ServerCores = usage.CPUSeconds / (rep.ReadyS + rep.DurationS)
	rep.LoadAvgEnd = LoadAvg()
	return rep, errors.Join(runErr, stopErr)
}

// runDaemonMeasured writes the config, starts the daemon child and measures it.
func runDaemonMeasured(ctx context.Context, o DaemonOptions, servers *serverChild, rep *DaemonReport) error {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	path, err := writeDaemonConfig(o, servers.URLs, addr)
	if err != nil {
		return err
	}
	d, err := startDaemonChild(path, o.HeapProfile, o.CPUProfile)
	if err != nil {
		return err
	}
	defer d.stop()
	m := &daemonMeter{o: o, d: d, base: "http://" + addr, rep: rep, client: &http.Client{Timeout: time.Minute}}
	defer m.client.CloseIdleConnections()
	began := time.Now()
	if err := m.awaitReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	rep.ReadyS = time.Since(began).Seconds()
	fmt.Fprintf(servers.stdin, "ready %d\n", time.Now().UnixNano())
	if err := m.measure(ctx); err != nil {
		return err
	}
	return m.finish(ctx)
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func writeDaemonConfig(o DaemonOptions, urls []string, listen string) (string, error) {
	src, err := scaleConfig(o.Targets, urls, o.Interval, o.Timeout)
	if err != nil {
		return "", err
	}
	head := fmt.Sprintf("listen: %s\nstate_dir: %s\n", listen, filepath.Join(o.Dir, "state"))
	path := filepath.Join(o.Dir, "picket.yaml")
	return path, os.WriteFile(path, append([]byte(head), src...), 0o600)
}

// daemonChild is the parent's handle on the daemon process.
type daemonChild struct {
	cmd    *exec.Cmd
	lines  chan string // stdout
	stderr *tailBuffer
	done   chan error
}

func startDaemonChild(configPath, heapProfile, cpuProfile string) (*daemonChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary to start the daemon child: %w", err)
	}
	d := &daemonChild{cmd: exec.Command(exe), lines: make(chan string, 8), stderr: &tailBuffer{max: 8 << 10}, done: make(chan error, 1)}
	d.cmd.Env = append(os.Environ(), daemonEnv+"="+configPath, heapEnv+"="+heapProfile, cpuEnv+"="+cpuProfile)
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start daemon child: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case d.lines <- sc.Text():
			default: // nobody waits for it
			}
		}
		d.done <- d.cmd.Wait()
	}()
	return d, nil
}

// stop sends SIGTERM and waits up to 30 s for the daemon to exit, then kills it.
func (d *daemonChild) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// daemonMeter samples the daemon child and reads its HTTP API as a scraper and a
// status page viewer would.
type daemonMeter struct {
	o      DaemonOptions
	d      *daemonChild
	base   string
	rep    *DaemonReport
	client *http.Client
	ready  time.Time
	mu     sync.Mutex // rep, written by the sampler and the readers
}

func (m *daemonMeter) awaitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := m.get(ctx, "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				m.ready = time.Now()
				return nil
			}
		}
		select {
		case err := <-m.d.done:
			return fmt.Errorf("daemon exited before it was ready: %v: %s", err, m.d.stderr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("daemon not ready within %s: %s", within, m.d.stderr)
}

func (m *daemonMeter) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+path, nil)
	if err != nil {
		return nil, err
	}
	return m.client.Do(req)
}

// measure samples every second, with a scraper and a status page viewer reading the
// API beside it on their own cadence, until the run's duration has passed.
func (m *daemonMeter) measure(ctx context.Context) error {
	readCtx, stopReaders := context.WithCancel(ctx)
	readErrs := make(chan error, 2)
	var wg sync.WaitGroup
	for _, r := range []struct {
		every time.Duration
		read  func(context.Context) error
	}{{m.o.ScrapeEvery, func(ctx context.Context) error { _, err := m.scrape(ctx); return err }}, {m.o.StatusEvery, m.readStatus}} {
		if r.every <= 0 {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); readErrs <- m.readEvery(readCtx, r.every, r.read) }()
	}
	err := m.sample(ctx, readErrs)
	stopReaders()
	wg.Wait()
	return err
}

// readEvery calls read every `every` until ctx ends. A read that fails (a daemon too
// busy to answer within the client's timeout) is counted and noted, not fatal: that is
// a figure too.
func (m *daemonMeter) readEvery(ctx context.Context, every time.Duration, read func(context.Context) error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := read(ctx); err != nil && ctx.Err() == nil {
				m.mu.Lock()
				m.rep.ReadErrors++
				m.rep.LastReadError = err.Error()
				m.mu.Unlock()
			}
		}
	}
}

// sample reads the daemon's memory and CPU every second until the run's end.
func (m *daemonMeter) sample(ctx context.Context, readErrs <-chan error) error {
	pid := m.d.cmd.Process.Pid
	end, steadyFrom := m.ready.Add(m.o.Duration), m.ready.Add(m.o.Interval)
	var cpuAtSteady time.Duration
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for steady := false; ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErrs:
			if err != nil {
				return err
			}
		case err := <-m.d.done:
			return fmt.Errorf("daemon exited during the run: %v: %s", err, m.d.stderr)
		case now := <-tick.C:
			u, err := readProc(pid)
			if err != nil {
				return err
			}
			m.mu.Lock()
			m.rep.Samples = append(m.rep.Samples, DaemonSample{AtS: now.Sub(m.ready).Round(100 * time.Millisecond).Seconds(), RSS: u.RSS, CPUS: u.CPU.Seconds()})
			m.rep.Threads = max(m.rep.Threads, u.Threads)
			if !steady && !now.Before(steadyFrom) {
				steady, cpuAtSteady, steadyFrom = true, u.CPU, now
				m.toggleCPUProfile()
			}
			if steady {
				m.rep.SteadyRSS = max(m.rep.SteadyRSS, u.RSS)
			}
			if !now.Before(end) {
				m.rep.Cores = (u.CPU - cpuAtSteady).Seconds() / now.Sub(steadyFrom).Seconds()
				m.mu.Unlock()
				m.toggleCPUProfile()
				return nil
			}
			m.mu.Unlock()
		}
	}
}

var scrapeSums = []string{"picket_probe_runs_total", `picket_probe_runs_total{status="up"}`, `picket_probe_runs_total{status="degraded"}`,
	`picket_probe_runs_total{status="down"}`, "picket_scheduler_skipped_total", "picket_scheduler_late_runs_total"}

func (m *daemonMeter) scrape(ctx context.Context) (scrape, error) {
	began := time.Now()
	resp, err := m.get(ctx, "/metrics")
	if err != nil {
		return scrape{}, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("scrape: want 200, got %d", resp.StatusCode)
	}
	s, err := readScrape(resp.Body, "picket_scheduler_lag_seconds", scrapeSums)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rep.Scrapes++
	m.rep.ScrapeMaxS = max(m.rep.ScrapeMaxS, time.Since(began).Seconds())
	m.rep.ScrapeMB = float64(s.bytes) / (1 << 20)
	return s, err
}

func (m *daemonMeter) readStatus(ctx context.Context) error {
	began := time.Now()
	resp, err := m.get(ctx, "/api/v1/status")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: %d %v", resp.StatusCode, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rep.StatusReads++
	m.rep.StatusMaxS = max(m.rep.StatusMaxS, time.Since(began).Seconds())
	return nil
}

// finish takes the heap profile (if asked), the memory at the end and the last scrape.
func (m *daemonMeter) finish(ctx context.Context) error {
	if m.o.HeapProfile != "" {
		if err := m.heapProfile(); err != nil {
			return err
		}
	}
	u, err := readProc(m.d.cmd.Process.Pid)
	if err != nil {
		return err
	}
	m.rep.PeakRSS, m.rep.EndRSS, m.rep.EndAnon, m.rep.EndFile = u.HWM, u.RSS, u.Anon, u.File
	m.rep.KBPerTarget = m.rep.SteadyRSS * 1024 / float64(m.o.Targets)
	elapsed := time.Since(m.ready).Seconds()
	s, err := m.scrape(ctx)
	if err != nil {
		return err
	}
	m.rep.PlanDeviationP50MS = 1000 * s.quantile(0.5)
	m.rep.PlanDeviationP99MS = 1000 * s.quantile(0.99)
	m.rep.Runs = map[string]float64{}
	for _, st := range []string{"up", "degraded", "down"} {
		m.rep.Runs[st] = s.sums[`picket_probe_runs_total{status="`+st+`"}`]
	}
	m.rep.Skipped, m.rep.Late = s.sums["picket_scheduler_skipped_total"], s.sums["picket_scheduler_late_runs_total"]
	m.rep.PerSecond = s.sums["picket_probe_runs_total"] / elapsed
	m.rep.Expected = float64(m.o.Targets) / m.o.Interval.Seconds()
	m.rep.DaemonStderr = m.d.stderr.String()
	return nil
}

// toggleCPUProfile starts (or stops) the daemon's CPU profile, if one is asked for.
func (m *daemonMeter) toggleCPUProfile() {
	if m.o.CPUProfile != "" {
		_ = m.d.cmd.Process.Signal(syscall.SIGUSR2)
	}
}

func (m *daemonMeter) heapProfile() error {
	for len(m.d.lines) > 0 {
		<-m.d.lines
	}
	if err := m.d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	select {
	case line := <-m.d.lines:
		if line != "heap written" {
			return fmt.Errorf("heap profile: the daemon said %q", line)
		}
		return nil
	case <-time.After(time.Minute):
		return errors.New("heap profile: not written within a minute")
	}
}

// DaemonTable renders daemon-level reports as one markdown table, a row per report.
func DaemonTable(reports []*DaemonReport) string {
	var b []byte
	b = append(b, "| targets | RSS peak / steady | KB per target | cores | plan deviation p50 / p99 | gap deviation p99 (servers) | in first interval | runs/s (expected) | skipped | not up | ready | scrape | load avg start → end |\n"...)
	b = append(b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"...)
	for _, r := range reports {
		b = fmt.Appendf(b, "| %d | %.0f / %.0f MiB | %.1f | %.2f | %s / %s | %s | %.1f %% | %.0f (%.0f) | %.0f | %.0f | %.1fs | %.1f MiB, %.2fs | %s → %s |\n",
			r.Targets, r.PeakRSS, r.SteadyRSS, r.KBPerTarget, r.Cores, FormatMS(r.PlanDeviationP50MS), FormatMS(r.PlanDeviationP99MS),
			FormatMS(r.Gaps.Deviation.P99), r.FirstIntervalPct, r.PerSecond, r.Expected, r.Skipped, r.Runs["degraded"]+r.Runs["down"],
			r.ReadyS, r.ScrapeMB, r.ScrapeMaxS, r.LoadAvgStart, r.LoadAvgEnd)
	}
	return string(b)
}
