package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// Options describe one scale run.
type Options struct {
	Targets     int
	Duration    time.Duration // how long the scheduler runs
	Interval    time.Duration // every target's interval; default 10s
	Timeout     time.Duration // every journey's timeout; default 5s
	Concurrency int           // the scheduler's bound on runs at once; default 256
	// Hosts are the loopback addresses the servers listen on, one server each. Default:
	// as many of 127.0.0.2, 127.0.0.3, ... as keep TIME_WAIT sockets within half the
	// ephemeral port range per address (see DefaultHosts).
	Hosts []string
	// SampleEvery is how often RSS, heap and goroutines are sampled; default 100ms.
	SampleEvery time.Duration
	// CPUProfile, when set, receives a CPU profile of the scheduler's run (not of setup).
	CPUProfile io.Writer
}

// timeWaitSeconds is how long Linux keeps a closed connection in TIME_WAIT.
const timeWaitSeconds = 60

// portsPerHost is half of the default ephemeral range (32768-60999): the other half is
// head room for everything else on the machine.
const portsPerHost = 14000

// DefaultHosts returns the loopback addresses for connPerSec fresh connections a second:
// each leaves a TIME_WAIT for 60 s, and each (client address, server address:port)
// pair has one ephemeral port range, so the connections are spread over enough server
// addresses that no pair needs more than portsPerHost ports at once.
func DefaultHosts(connPerSec float64) []string {
	n := int(math.Ceil(connPerSec * timeWaitSeconds / portsPerHost))
	n = min(max(n, 1), 250)
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return hosts
}

func (o Options) withDefaults() (Options, error) {
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = 256
	}
	if o.SampleEvery == 0 {
		o.SampleEvery = 100 * time.Millisecond
	}
	if len(o.Hosts) == 0 {
		o.Hosts = DefaultHosts(float64(o.Targets) / o.Interval.Seconds())
	}
	if o.Duration <= 0 {
		return o, fmt.Errorf("duration: want more than 0, got %s", o.Duration)
	}
	if _, _, err := layout(o.Targets); err != nil {
		return o, err
	}
	return o, nil
}

// Report is what one scale run measured. Times are in milliseconds or seconds as named;
// memory in MiB. CPU and memory are the prober process's alone: the servers run in a
// child process whose own usage is under Servers.
type Report struct {
	Targets     int     `json:"targets"`
	DurationS   float64 `json:"duration_s"`
	IntervalS   float64 `json:"interval_s"`
	TimeoutS    float64 `json:"timeout_s"`
	Concurrency int     `json:"concurrency"`
	Hosts       int     `json:"server_hosts"`

	GoVersion    string `json:"go_version"`
	NumCPU       int    `json:"num_cpu"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	LoadAvgStart string `json:"load_avg_start"`
	LoadAvgEnd   string `json:"load_avg_end"`
	Started      string `json:"started"`

	ParseS         float64      `json:"config_parse_s"`
	RSSAfterParse  float64      `json:"rss_after_parse_mb"`
	HeapAfterParse float64      `json:"heap_live_after_parse_mb"` // after a forced GC: what the targets hold
	Runs           int64        `json:"runs"`                     // started
	Results        int64        `json:"results"`
	Failures       int64        `json:"failures"`
	Skipped        int64        `json:"skipped"`
	ExpectedRuns   int64        `json:"expected_runs"`
	ProbesPerS     float64      `json:"probes_per_s"`
	ExpectedPerS   float64      `json:"expected_per_s"`
	Lag            Quantiles    `json:"lag"`
	ProbeDuration  Quantiles    `json:"probe_duration"`
	WallS          float64      `json:"wall_s"`
	CPUS           float64      `json:"cpu_s"`
	CPUCores       float64      `json:"cpu_cores"`
	CPUPerProbeUS  float64      `json:"cpu_per_probe_us"`
	PeakRSS        float64      `json:"rss_peak_mb"` // VmHWM: the process's peak, setup included
	EndRSS         float64      `json:"rss_end_mb"`
	MaxHeap        float64      `json:"heap_max_mb"`
	MaxGoroutines  int          `json:"goroutines_max"`
	MaxInFlight    int64        `json:"in_flight_max"`
	MaxTimeWait    int          `json:"time_wait_max"`
	Servers        ServerUsage  `json:"servers"`
	ServerCPUCores float64      `json:"servers_cpu_cores"`
	Errors         []ErrorCount `json:"errors,omitempty"`
	// TCPCounters are the kernel's TCP counters that moved during the run (whole network
	// namespace: other traffic on the machine counts too).
	TCPCounters map[string]int64 `json:"tcp_counters"`
	Runtime     RuntimeStats     `json:"runtime"`
	Samples     []Sample         `json:"samples"` // one a second
}

// ErrorCount is one distinct failure reason and how often it came.
type ErrorCount struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

// Sample is the process's state at one moment of the run.
type Sample struct {
	AtS        float64 `json:"t_s"`
	RSS        float64 `json:"rss_mb"`
	Heap       float64 `json:"heap_mb"`
	Goroutines int     `json:"goroutines"`
	InFlight   int64   `json:"in_flight"`
	LagMax     float64 `json:"lag_max_ms"` // the worst lag of the runs started since the previous sample
	Results    int64   `json:"results"`
	CPUS       float64 `json:"cpu_s"`
	TimeWait   int     `json:"time_wait"`
}

// Run starts the servers in a child process, loads a generated config of o.Targets
// targets, runs the real scheduler with the real journey runner for o.Duration and
// reports what it measured. The binary must call ServeChildIfAsked first thing.
func Run(ctx context.Context, o Options) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Targets: o.Targets, DurationS: o.Duration.Seconds(), IntervalS: o.Interval.Seconds(),
		TimeoutS: o.Timeout.Seconds(), Concurrency: o.Concurrency, Hosts: len(o.Hosts),
		GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadAvgStart: LoadAvg(), Started: time.Now().UTC().Format(time.RFC3339),
	}
	child, err := startServerChild(ctx, o.Hosts)
	if err != nil {
		return nil, err
	}
	parseStart := time.Now()
	targets, err := scaleTargets(o.Targets, child.URLs, o.Interval, o.Timeout)
	if err != nil {
		child.kill()
		return nil, err
	}
	rep.ParseS = time.Since(parseStart).Seconds()
	rep.RSSAfterParse = statusMB("VmRSS")
	rep.HeapAfterParse = liveHeapMB()

	runErr := runScheduler(ctx, o, targets, rep)
	usage, stopErr := child.stop()
	rep.Servers = usage
	rep.ServerCPUCores = usage.CPUSeconds / rep.WallS
	rep.LoadAvgEnd = LoadAvg()
	rep.PeakRSS = statusMB("VmHWM")
	return rep, errors.Join(runErr, stopErr)
}

// runScheduler is the measured part: the scheduler and runner over targets for
// o.Duration, with the sampler alongside.
func runScheduler(ctx context.Context, o Options, targets []*config.Target, rep *Report) error {
	runner := probe.NewRunner()
	defer runner.Close()
	rec := newRecorder()
	sched := probe.NewScheduler(probe.SchedulerOptions{
		Run:         rec.wrap(runner.Run),
		Concurrency: o.Concurrency,
		OnResult:    rec.result,
		OnStart:     rec.start,
		OnSkip:      func(*config.Target) { rec.skipped.Add(1) },
	})
	sched.SetTargets(targets)

	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	before := takeSnapshot()
	samples := make(chan samplerResult, 1)
	go func() { samples <- rec.sample(runCtx, o.SampleEvery, before.at, before.cpu) }()
	_ = sched.Run(runCtx) // returns once in-flight runs have ended
	after := takeSnapshot()
	cancel()
	sr := <-samples

	rep.Runs = sched.Stats().Runs
	after.since(before, rep, rec.results.Load())
	rec.fill(rep, o)
	rep.EndRSS = statusMB("VmRSS")
	rep.MaxHeap, rep.MaxGoroutines, rep.MaxTimeWait, rep.Samples = sr.maxHeap, sr.maxGoroutines, sr.maxTimeWait, sr.samples
	return ctx.Err() // the caller's context ending early makes the figures partial
}

// snapshot is what the process and the machine had used at one moment; two of them
// bound the measured window.
type snapshot struct {
	at          time.Time
	cpu         time.Duration
	tcp         map[string]int64
	rt          runtimeSnapshot
	busy, total uint64 // machine CPU ticks
	pressure    uint64 // µs some task waited for a CPU
}

func takeSnapshot() snapshot {
	s := snapshot{tcp: tcpCounters(), rt: readRuntime(), pressure: cpuPressureMicros()}
	s.busy, s.total = cpuBusy()
	s.at, s.cpu = time.Now(), cpuTime()
	return s
}

// since fills the report's CPU, kernel and runtime figures for the window from b to s.
func (s snapshot) since(b snapshot, rep *Report, results int64) {
	wall, cpu := s.at.Sub(b.at), s.cpu-b.cpu
	rep.WallS = wall.Seconds()
	rep.CPUS = cpu.Seconds()
	rep.CPUCores = cpu.Seconds() / wall.Seconds()
	if results > 0 {
		rep.CPUPerProbeUS = float64(cpu.Microseconds()) / float64(results)
	}
	rep.TCPCounters = counterDeltas(b.tcp, s.tcp)
	rep.Runtime = runtimeDelta(b.rt, s.rt, results)
	if s.pressure > b.pressure {
		rep.Runtime.CPUPressure = float64(s.pressure-b.pressure) / float64(wall.Microseconds())
	}
	if s.total > b.total {
		rep.Runtime.MachineCoresBusy = float64(runtime.NumCPU()) * float64(s.busy-b.busy) / float64(s.total-b.total)
	}
}

// maxDistinctErrors bounds the failure reasons kept: enough to say why, never a leak.
const maxDistinctErrors = 20

// recorder collects what the scheduler's hooks report; every hook is cheap and
// lock-free except on failure.
type recorder struct {
	lag, duration              histogram
	results, failures, skipped atomic.Int64
	inFlight, maxInFlight      atomic.Int64
	windowLagMax               atomic.Int64 // ns, since the last Sample
	mu                         sync.Mutex
	errors                     map[string]int64
}

func newRecorder() *recorder { return &recorder{errors: map[string]int64{}} }

func (r *recorder) wrap(run probe.RunFunc) probe.RunFunc {
	return func(ctx context.Context, t *config.Target) probe.Result {
		storeMax(&r.maxInFlight, r.inFlight.Add(1))
		defer r.inFlight.Add(-1)
		return run(ctx, t)
	}
}

func (r *recorder) start(_ *config.Target, lag time.Duration) {
	r.lag.record(lag)
	storeMax(&r.windowLagMax, int64(lag))
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for cur := v.Load(); n > cur && !v.CompareAndSwap(cur, n); cur = v.Load() {
	}
}

func (r *recorder) result(_ *config.Target, res probe.Result) {
	r.results.Add(1)
	r.duration.record(res.Duration)
	if res.Status == probe.StatusUp {
		return
	}
	r.failures.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.errors[res.Error]; ok || len(r.errors) < maxDistinctErrors {
		r.errors[res.Error]++
	}
}

// fill puts what the hooks counted into the report.
func (r *recorder) fill(rep *Report, o Options) {
	rep.Skipped = r.skipped.Load()
	rep.Results = r.results.Load()
	rep.Failures = r.failures.Load()
	rep.ExpectedRuns = int64(float64(o.Targets) * o.Duration.Seconds() / o.Interval.Seconds())
	rep.ProbesPerS = float64(rep.Results) / o.Duration.Seconds()
	rep.ExpectedPerS = float64(o.Targets) / o.Interval.Seconds()
	rep.Lag = r.lag.summary()
	rep.ProbeDuration = r.duration.summary()
	rep.MaxInFlight = r.maxInFlight.Load()
	rep.Errors = r.errorCounts()
}

func (r *recorder) errorCounts() []ErrorCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ErrorCount, 0, len(r.errors))
	for e, n := range r.errors {
		out = append(out, ErrorCount{Error: e, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

type samplerResult struct {
	maxHeap       float64
	maxGoroutines int
	maxTimeWait   int
	samples       []Sample
}

// sample polls the process every `every` until ctx ends, keeping maxima over every poll
// and one Sample a second.
func (r *recorder) sample(ctx context.Context, every time.Duration, began time.Time, cpu0 time.Duration) samplerResult {
	var res samplerResult
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	tick := time.NewTicker(every)
	defer tick.Stop()
	nextKeep := time.Second
	for {
		select {
		case <-ctx.Done():
			return res
		case now := <-tick.C:
			metrics.Read(heap)
			heapMB := float64(heap[0].Value.Uint64()) / (1 << 20)
			g := runtime.NumGoroutine()
			res.maxHeap = max(res.maxHeap, heapMB)
			res.maxGoroutines = max(res.maxGoroutines, g)
			at := now.Sub(began)
			if at < nextKeep {
				continue
			}
			nextKeep += time.Second
			tw := timeWait()
			res.maxTimeWait = max(res.maxTimeWait, tw)
			res.samples = append(res.samples, Sample{
				AtS: math.Round(at.Seconds()*10) / 10, RSS: statusMB("VmRSS"), Heap: heapMB, Goroutines: g,
				InFlight: r.inFlight.Load(), LagMax: ms(time.Duration(r.windowLagMax.Swap(0))),
				Results: r.results.Load(), CPUS: (cpuTime() - cpu0).Seconds(), TimeWait: tw,
			})
		}
	}
}
