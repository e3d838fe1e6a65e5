package timetopage

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/bench"
	"github.com/picket-dev/picket/internal/daemon"
	"github.com/picket-dev/picket/probe/probetest"
)

// soakChildEnv names the config a re-executed binary runs the daemon on, as the soak's
// child. The daemon runs alone in that process, so its goroutines and heap are not
// mixed with the platform's and the receiver's (which keep what they are sent).
const soakChildEnv = "PICKET_SOAK_CHILD_CONFIG"

// ServeSoakChildIfAsked turns this process into the soak's daemon when the soak
// started it, and exits when the daemon ends; otherwise it returns at once. Call it
// first thing in TestMain (or main) of a binary RunSoak re-executes.
func ServeSoakChildIfAsked() {
	path := os.Getenv(soakChildEnv)
	if path == "" {
		return
	}
	os.Exit(serveSoakChild(path, os.Stdin, os.Stdout, os.Stderr))
}

// childLine is one line the child writes on stdout: first where it listens, then one
// sample per "sample" line read on stdin.
type childLine struct {
	Listen string      `json:"listen,omitempty"`
	Sample *SoakSample `json:"sample,omitempty"`
}

// serveSoakChild runs the daemon until SIGTERM/SIGINT or until stdin closes (the
// parent is gone), answering sample requests meanwhile. It returns the exit code.
func serveSoakChild(path string, in io.Reader, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	addr, stopDaemon, err := startDaemon(ctx, daemon.Options{ConfigPath: path, Logger: logger, Version: "soak"})
	if err != nil {
		fmt.Fprintln(errOut, "soak child:", err)
		return 1
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(childLine{Listen: addr}); err != nil {
		fmt.Fprintln(errOut, "soak child:", errors.Join(err, stopDaemon()))
		return 1
	}
	go func() {
		defer cancel() // stdin closed: nobody is asking any more
		lines := bufio.NewScanner(in)
		for lines.Scan() {
			if lines.Text() == "sample" {
				s := sampleSelf()
				_ = enc.Encode(childLine{Sample: &s})
			}
		}
	}()
	<-ctx.Done()
	if err := stopDaemon(); err != nil {
		fmt.Fprintln(errOut, "soak child: daemon:", err)
		return 1
	}
	return 0
}

// goroutineReadings is how many times a sample counts goroutines, 100 ms apart: probes
// in flight come and go between readings, a leak stays in the fewest.
const goroutineReadings = 5

// sampleSelf reads this process's goroutines, heap and RSS.
func sampleSelf() SoakSample {
	now := runtime.NumGoroutine()
	fewest := now
	for range goroutineReadings - 1 {
		time.Sleep(100 * time.Millisecond)
		fewest = min(fewest, runtime.NumGoroutine())
	}
	m := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(m)
	return SoakSample{
		GoroutinesNow: now, Goroutines: fewest,
		HeapLiveMB: mib(m[0].Value.Uint64()), HeapObjectsMB: mib(m[1].Value.Uint64()),
		GCCycles: m[2].Value.Uint64(), RSSMB: rssMB(),
	}
}

func mib(b uint64) float64 { return round2(float64(b) / (1 << 20)) }

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// rssMB is this process's resident set (VmRSS), in MiB.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return round2(kb / 1024)
		}
	}
	return 0
}

// SoakOptions configure RunSoak.
type SoakOptions struct {
	Duration    time.Duration
	SampleEvery time.Duration // default 10s; faults come and go on the same beat
	Seed        int64
	Dir         string // config and state; the caller removes it
	// Exe is the binary to re-execute as the daemon's process; it must call
	// ServeSoakChildIfAsked first thing. Default: this one (os.Args[0]).
	Exe string
}

// SoakSample is the daemon process at one moment.
type SoakSample struct {
	AtS   float64 `json:"t_s"`
	Phase string  `json:"phase"` // start, quiet (10 s after a heal) or fault (10 s into one)
	// Goroutines is the fewest of 5 counts over 0.4 s; GoroutinesNow the first of them.
	Goroutines    int     `json:"goroutines"`
	GoroutinesNow int     `json:"goroutines_now"`
	HeapLiveMB    float64 `json:"heap_live_mb"`    // /gc/heap/live:bytes: marked live by the last GC
	HeapObjectsMB float64 `json:"heap_objects_mb"` // /memory/classes/heap/objects:bytes: live and not yet swept
	RSSMB         float64 `json:"rss_mb"`
	GCCycles      uint64  `json:"gc_cycles"`
	Ready         bool    `json:"ready"`  // /readyz answered 200
	Events        int     `json:"events"` // accepted by the receiver so far
}

// SoakFigure is one quantity over the soak: first sample, the first quiet sample after
// warm-up (the baseline), the last sample (quiet), the largest, and last vs baseline.
type SoakFigure struct {
	First     float64 `json:"first"`
	Baseline  float64 `json:"after_warm_up"`
	Last      float64 `json:"last"`
	Max       float64 `json:"max"`
	GrowthPct float64 `json:"growth_pct"` // (last − baseline) / baseline
}

// SoakFault is a fault the soak set or cleared.
type SoakFault struct {
	AtS  float64 `json:"t_s"`
	What string  `json:"what"`
}

// SoakReport is what bench/out/soak.json holds.
type SoakReport struct {
	Started      string   `json:"started"`
	DurationS    float64  `json:"duration_s"`
	WallS        float64  `json:"wall_s"`
	GoVersion    string   `json:"go_version"`
	NumCPU       int      `json:"num_cpu"`
	LoadAvgStart string   `json:"load_avg_start"`
	LoadAvgEnd   string   `json:"load_avg_end"`
	Seed         int64    `json:"seed"`
	Targets      int      `json:"targets"`
	Intervals    []string `json:"intervals"`
	TimeoutMS    float64  `json:"timeout_ms"`
	SampleEveryS float64  `json:"sample_every_s"`
	WarmUpS      float64  `json:"warm_up_s"`
	// Runs is picket_probe_runs_total at the end, from the daemon's /metrics.
	Runs       float64    `json:"runs"`
	RunsPerS   float64    `json:"runs_per_s"`
	MaxGrowth  float64    `json:"max_growth_pct"`  // the bound "flat" is held to
	Slack      int        `json:"goroutine_slack"` // or this many goroutines, if more
	Goroutines SoakFigure `json:"goroutines"`      // fewest of 5 counts per sample
	HeapLive   SoakFigure `json:"heap_live_mb"`
	HeapObj    SoakFigure `json:"heap_objects_mb"`
	RSS        SoakFigure `json:"rss_mb"`
	Flat       bool       `json:"flat"` // goroutines and live heap within MaxGrowth of the baseline
	NotReady   int        `json:"samples_not_ready"`
	// Pages the receiver accepted; OpenAtEnd is what was still open once healed and quiet.
	Triggers  int          `json:"triggers"`
	Resolves  int          `json:"resolves"`
	OpenAtEnd int          `json:"open_at_end"`
	ExitCode  int          `json:"exit_code"` // the daemon's, after SIGTERM
	Faults    []SoakFault  `json:"faults"`
	Samples   []SoakSample `json:"samples"`
	Notes     []string     `json:"notes"`
}

// soakMaxGrowth is how much the last quiet sample may exceed the baseline, in percent.
const soakMaxGrowth = 20

// soakGoroutineSlack is how many goroutines the last quiet sample may exceed the
// baseline by when that is more than soakMaxGrowth: the daemon at rest runs about a
// dozen, so 20 % is two, while runs in flight alone move the count by that much (at
// 133 runs a second, 80 of the 200 targets write then poll ~50 ms for the read-back:
// two to five such runs are sleeping in their poll at any moment, even in the fewest of
// five counts). A leak of one per fault, page or run is far beyond it.
const soakGoroutineSlack = 4

// soakShape is the soak's timing: every journey at 1 s or 3 s, 800 ms timeout, the
// default thresholds and group wait.
func soakShape() Shape {
	return Shape{Name: "soak", Interval: time.Second, Timeout: 800 * time.Millisecond}
}

func soakIntervals() []time.Duration {
	return []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second,
		3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}
}

// soakJourneys per product and region: 4 regions × 5 products × 10 = 200 targets.
const soakJourneys = 10

// soak is one soak run in progress.
type soak struct {
	o      SoakOptions
	plat   *probetest.Platform
	pd     *pdtest.Receiver
	child  *soakChild
	api    api
	rng    *rand.Rand
	began  time.Time
	report *SoakReport
}

// RunSoak runs the daemon in a child process against the platform for o.Duration, with
// a fault set and cleared on alternate beats, and samples the child on every beat. It
// returns the report even when the run ends early, with the error.
func RunSoak(ctx context.Context, o SoakOptions) (*SoakReport, error) {
	if o.SampleEvery == 0 {
		o.SampleEvery = 10 * time.Second
	}
	if o.Exe == "" {
		o.Exe = os.Args[0]
	}
	if o.Duration < 2*o.SampleEvery {
		return nil, fmt.Errorf("soak duration: want at least %s, got %s", 2*o.SampleEvery, o.Duration)
	}
	s := &soak{o: o, api: newAPI(), rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x736f_616b)), report: newSoakReport(o)}
	err := s.run(ctx)
	return s.report, errors.Join(err, s.close())
}

func newSoakReport(o SoakOptions) *SoakReport {
	return &SoakReport{
		Started: time.Now().UTC().Format(time.RFC3339), DurationS: o.Duration.Seconds(), GoVersion: runtime.Version(),
		NumCPU: runtime.NumCPU(), LoadAvgStart: bench.LoadAvg(), Seed: o.Seed, Intervals: []string{"1s (half the journeys)", "3s (the other half)"},
		TimeoutMS: ms(soakShape().Timeout), SampleEveryS: o.SampleEvery.Seconds(), WarmUpS: warmUp(o).Seconds(),
		MaxGrowth: soakMaxGrowth, Slack: soakGoroutineSlack, ExitCode: -1,
		Notes: []string{
			"the daemon runs alone in a child process (this test binary re-executed); the platform and the receiver run in the parent",
			"a fault is set on every other beat and cleared on the next: quiet samples are taken 10 s after a heal, fault samples 10 s into a fault",
			"goroutines: the fewest of 5 counts over 0.4 s (probes in flight come and go; a leak stays); heap: /gc/heap/live:bytes",
			"flat: the last quiet sample within +20 % of the first quiet sample after warm-up, for goroutines (or +4 goroutines if more: runs in flight move the count of about a dozen by that much) and live heap",
		},
	}
}

// warmUp is how long the soak runs before its baseline: a quarter of it, between two
// beats and two minutes.
func warmUp(o SoakOptions) time.Duration {
	return min(max(o.Duration/4, 2*o.SampleEvery), 2*time.Minute)
}

func (s *soak) run(ctx context.Context) error {
	var err error
	s.plat, err = probetest.Start(probetest.Options{Regions: Regions(), IngestDelay: ingestDelay, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("start platform: %w", err)
	}
	if s.pd, err = pdtest.New(pdtest.Options{}); err != nil {
		return fmt.Errorf("start receiver: %w", err)
	}
	path, err := writeConfig(s.o.Dir, configSpec{
		stateDir: filepath.Join(s.o.Dir, "state"), regionURL: regionURLs(s.plat), eventsURL: s.pd.BaseURL(),
		shape: soakShape(), journeys: soakJourneys, intervals: soakIntervals(),
	})
	if err != nil {
		return err
	}
	s.report.Targets = len(Regions()) * len(Products()) * soakJourneys
	if s.child, err = startSoakChild(s.o.Exe, path); err != nil {
		return err
	}
	s.api.Base = "http://" + s.child.addr
	s.began = time.Now()
	if err := s.beats(ctx); err != nil {
		return err
	}
	return s.finish(ctx)
}

// beats samples on every beat and, between samples, sets a fault (after an even beat)
// or clears it (after an odd one); the last beat only samples.
func (s *soak) beats(ctx context.Context) error {
	n := int(s.o.Duration / s.o.SampleEvery)
	tick := time.NewTicker(s.o.SampleEvery)
	defer tick.Stop()
	for k := 0; ; k++ {
		if err := s.sample(ctx, k); err != nil {
			return err
		}
		if k == n {
			return nil
		}
		if k%2 == 0 {
			s.breakSomething()
		} else {
			s.plat.ClearFaults()
			s.note("healed")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *soak) sample(ctx context.Context, k int) error {
	sm, err := s.child.sample()
	if err != nil {
		return err
	}
	sm.AtS = round1(time.Since(s.began).Seconds())
	sm.Phase = map[bool]string{true: "quiet", false: "fault"}[k%2 == 0]
	if k == 0 {
		sm.Phase = "start"
	}
	_, readyErr := s.api.get(ctx, "/readyz")
	sm.Ready = readyErr == nil
	sm.Events = len(s.pd.Events())
	s.report.Samples = append(s.report.Samples, sm)
	return nil
}

// breakSomething sets one fault, chosen by the seed, from one journey's data never
// readable up to the whole platform down.
func (s *soak) breakSomething() {
	regions, products := Regions(), probetest.Products()
	region, product := regions[s.rng.IntN(len(regions))], products[s.rng.IntN(len(products))]
	type fault struct {
		region, product string
		f               probetest.Fault
	}
	choices := []fault{
		{region, "", probetest.Fault{Kind: probetest.FaultDown}},
		{region, "", probetest.Fault{Kind: probetest.FaultHang}},
		{region, "", probetest.Fault{Kind: probetest.FaultError}},
		{region, "", probetest.Fault{Kind: probetest.FaultSlow, Delay: 2 * time.Second}},
		{"", product, probetest.Fault{Kind: probetest.FaultError}},
		{"", "", probetest.Fault{Kind: probetest.FaultDown}},
		{region, "logs", probetest.Fault{Kind: probetest.FaultStale}},
	}
	c := choices[s.rng.IntN(len(choices))]
	s.plat.SetFault(c.region, c.product, c.f)
	s.note(fmt.Sprintf("%s region=%q product=%q", c.f.Kind, c.region, c.product))
}

func (s *soak) note(what string) {
	s.report.Faults = append(s.report.Faults, SoakFault{AtS: round1(time.Since(s.began).Seconds()), What: what})
}

// finish heals, waits until every page is resolved, reads the run count, stops the
// daemon with SIGTERM and computes the figures.
func (s *soak) finish(ctx context.Context) error {
	s.plat.ClearFaults()
	s.note("healed (end)")
	quietCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	quietErr := s.api.waitStatus(quietCtx, "no open incident after the soak", func(st alert.Status) (bool, string) {
		open := s.pd.Open()
		return len(st.Incidents) == 0 && len(open) == 0, fmt.Sprintf("%d incident(s) open, %d at the receiver", len(st.Incidents), len(open))
	})
	runs, runsErr := s.runs(ctx)
	s.report.Runs = runs
	s.report.RunsPerS = round1(runs / time.Since(s.began).Seconds())
	s.report.ExitCode = s.child.stop()
	s.figures()
	return errors.Join(quietErr, runsErr)
}

// runs sums picket_probe_runs_total over its labels, from the daemon's /metrics.
func (s *soak) runs(ctx context.Context) (float64, error) {
	body, err := s.api.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	total := 0.0
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, "picket_probe_runs_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %q: %w", line, err)
		}
		total += v
	}
	return total, nil
}

// figures fills the report's summaries from the samples.
func (s *soak) figures() {
	r := s.report
	r.WallS = round1(time.Since(s.began).Seconds())
	r.LoadAvgEnd = bench.LoadAvg()
	for _, ev := range s.pd.Events() {
		switch ev.Action {
		case pdtest.ActionTrigger:
			r.Triggers++
		case pdtest.ActionResolve:
			r.Resolves++
		}
	}
	r.OpenAtEnd = len(s.pd.Open())
	for _, sm := range r.Samples {
		if !sm.Ready {
			r.NotReady++
		}
	}
	base, last, ok := baselineAndLast(r.Samples, r.WarmUpS)
	if !ok {
		return
	}
	fig := func(get func(SoakSample) float64) SoakFigure {
		f := SoakFigure{First: get(r.Samples[0]), Baseline: get(base), Last: get(last)}
		for _, sm := range r.Samples {
			f.Max = max(f.Max, get(sm))
		}
		if f.Baseline > 0 {
			f.GrowthPct = round1(100 * (f.Last - f.Baseline) / f.Baseline)
		}
		return f
	}
	r.Goroutines = fig(func(sm SoakSample) float64 { return float64(sm.Goroutines) })
	r.HeapLive = fig(func(sm SoakSample) float64 { return sm.HeapLiveMB })
	r.HeapObj = fig(func(sm SoakSample) float64 { return sm.HeapObjectsMB })
	r.RSS = fig(func(sm SoakSample) float64 { return sm.RSSMB })
	r.Flat = flatGoroutines(r.Goroutines) && r.HeapLive.GrowthPct <= soakMaxGrowth
}

func flatGoroutines(f SoakFigure) bool {
	return f.GrowthPct <= soakMaxGrowth || f.Last <= f.Baseline+soakGoroutineSlack
}

// baselineAndLast are the first quiet sample at or after the warm-up and the last
// quiet sample.
func baselineAndLast(samples []SoakSample, warmUpS float64) (base, last SoakSample, ok bool) {
	found := false
	for _, sm := range samples {
		if sm.Phase != "quiet" {
			continue
		}
		if !found && sm.AtS >= warmUpS {
			base, found = sm, true
		}
		last = sm
	}
	return base, last, found && last.AtS > base.AtS
}

func (s *soak) close() error {
	var errs []error
	if s.child != nil && s.report.ExitCode == -1 {
		s.report.ExitCode = s.child.stop()
	}
	s.api.client.CloseIdleConnections()
	if s.pd != nil {
		errs = append(errs, s.pd.Close())
	}
	if s.plat != nil {
		errs = append(errs, s.plat.Close())
	}
	return errors.Join(errs...)
}

// soakChild is the daemon's process.
type soakChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *capped
	addr   string
}

func startSoakChild(exe, configPath string) (*soakChild, error) {
	c := &soakChild{lines: make(chan []byte, 16), stderr: &capped{max: 64 << 10}}
	c.cmd = exec.Command(exe)
	c.cmd.Env = append(os.Environ(), soakChildEnv+"="+configPath)
	c.cmd.Stdout = &lineSink{lines: c.lines}
	c.cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the soak's daemon: %w", err)
	}
	var first childLine
	if err := c.read(10*time.Second, &first); err != nil || first.Listen == "" {
		c.stop()
		return nil, fmt.Errorf("soak daemon: want its address, got %v (stderr: %s)", err, c.stderr)
	}
	c.addr = first.Listen
	return c, nil
}

func (c *soakChild) sample() (SoakSample, error) {
	if _, err := io.WriteString(c.stdin, "sample\n"); err != nil {
		return SoakSample{}, fmt.Errorf("ask the soak daemon for a sample: %w (stderr: %s)", err, c.stderr)
	}
	var l childLine
	if err := c.read(10*time.Second, &l); err != nil || l.Sample == nil {
		return SoakSample{}, fmt.Errorf("soak daemon: want a sample, got %v (stderr: %s)", err, c.stderr)
	}
	return *l.Sample, nil
}

func (c *soakChild) read(limit time.Duration, into *childLine) error {
	select {
	case line := <-c.lines:
		return json.Unmarshal(line, into)
	case <-time.After(limit):
		return fmt.Errorf("no answer within %s", limit)
	}
}

// stop sends SIGTERM, waits up to 15 s (then kills), and returns the exit code.
func (c *soakChild) stop() int {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	_ = c.stdin.Close()
	return c.cmd.ProcessState.ExitCode()
}

// lineSink passes complete lines written to it on to a channel; exec copies the child's
// stdout into it.
type lineSink struct {
	buf   []byte
	lines chan []byte
}

func (l *lineSink) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append([]byte(nil), l.buf[:i]...)
		l.buf = l.buf[i+1:]
		select {
		case l.lines <- line:
		default: // nobody asked for it; never expected, as lines come only on request
		}
	}
}

// capped keeps the first max bytes written to it: enough of the child's log to say
// what went wrong, never a flood.
type capped struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(string(c.b))
}
