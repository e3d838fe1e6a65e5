// Package summary gathers the figures `make bench` leaves under bench/out — Go
// benchmarks (gobench.txt), scale runs (scale-*.json), time to page (timetopage.json)
// and the soak (soak.json) — into one markdown table and one JSON document. A file that
// is not there is listed as missing, not an error; a file that does not parse is.
package summary

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/picket-dev/picket/bench"
	"github.com/picket-dev/picket/bench/timetopage"
)

// The files Load looks for in its directory.
const (
	GoBenchFile    = "gobench.txt"
	ScaleGlob      = "scale-*.json"
	DaemonGlob     = "daemon-*.json"
	TimeToPageFile = "timetopage.json"
	SoakFile       = "soak.json"
)

// The Go benchmarks of probe cost, and the pair whose ratio is the overhead.
const (
	BenchProbe   = "BenchmarkHTTPProbe"
	BenchFloor   = "BenchmarkFloorNetHTTPGet"
	BenchJourney = "BenchmarkJourneyTwoSteps"
)

// Summary is every figure found, and the table made of them.
type Summary struct {
	Generated  string          `json:"generated"`
	Dir        string          `json:"dir"`
	Sources    []string        `json:"sources"`
	Missing    []string        `json:"missing,omitempty"`
	ProbeCost  *ProbeCost      `json:"probe_cost,omitempty"`
	Scale      []ScaleFigures  `json:"scale,omitempty"`
	Daemon     []DaemonFigures `json:"daemon,omitempty"`
	TimeToPage []PageFigures   `json:"time_to_page,omitempty"`
	Soak       *SoakFigures    `json:"soak,omitempty"`
	Rows       []Row           `json:"rows"`
}

// ProbeCost is the three probe benchmarks and the probe's overhead over the floor.
type ProbeCost struct {
	Probe   *GoBench `json:"probe,omitempty"`
	Floor   *GoBench `json:"floor,omitempty"`
	Journey *GoBench `json:"journey,omitempty"`
	// Ratios probe / floor; CPU when both report cpu-µs/op.
	NsRatio     float64 `json:"ns_ratio,omitempty"`
	CPURatio    float64 `json:"cpu_ratio,omitempty"`
	BytesRatio  float64 `json:"bytes_ratio,omitempty"`
	AllocsRatio float64 `json:"allocs_ratio,omitempty"`
}

// ScaleFigures are the headline figures of one scale report.
type ScaleFigures struct {
	File          string  `json:"file"`
	Targets       int     `json:"targets"`
	DurationS     float64 `json:"duration_s"`
	IntervalS     float64 `json:"interval_s"`
	Concurrency   int     `json:"concurrency"`
	ProbesPerS    float64 `json:"probes_per_s"`
	ExpectedPerS  float64 `json:"expected_per_s"`
	LagP50MS      float64 `json:"lag_p50_ms"`
	LagP99MS      float64 `json:"lag_p99_ms"`
	CPUCores      float64 `json:"cpu_cores"`
	PeakRSSMB     float64 `json:"rss_peak_mb"`
	MaxGoroutines int     `json:"goroutines_max"`
	Skipped       int64   `json:"skipped"`
	Failures      int64   `json:"failures"`
	LoadAvg       string  `json:"load_avg"` // start → end
}

// DaemonFigures are the headline figures of one daemon-level scale report.
type DaemonFigures struct {
	File               string  `json:"file"`
	Targets            int     `json:"targets"`
	DurationS          float64 `json:"duration_s"`
	IntervalS          float64 `json:"interval_s"`
	PeakRSSMB          float64 `json:"rss_peak_mb"`
	SteadyRSSMB        float64 `json:"rss_steady_max_mb"`
	Cores              float64 `json:"cores"`
	PlanDeviationP99MS float64 `json:"plan_deviation_p99_ms"`
	GapDeviationP99MS  float64 `json:"gap_deviation_p99_ms"`
	FirstIntervalPct   float64 `json:"first_interval_pct"`
	RunsPerS           float64 `json:"runs_per_s"`
	ExpectedPerS       float64 `json:"expected_per_s"`
	LoadAvg            string  `json:"load_avg"` // start → end
}

// PageFigures are one time-to-page series without its trials.
type PageFigures struct {
	Timing        timetopage.Timing    `json:"timing"`
	Outage        string               `json:"outage"`
	Trials        int                  `json:"trials"`
	Page          timetopage.Quantiles `json:"page"`
	Resolve       timetopage.Quantiles `json:"resolve"`
	Hold          timetopage.Quantiles `json:"hold"`
	OverBound     int                  `json:"over_bound"`
	OverAsBuilt   int                  `json:"over_as_built_bound"`
	WithOtherKeys int                  `json:"trials_with_other_keys"`
}

// SoakFigures are the soak's headline figures.
type SoakFigures struct {
	DurationS  float64               `json:"duration_s"`
	Targets    int                   `json:"targets"`
	RunsPerS   float64               `json:"runs_per_s"`
	Goroutines timetopage.SoakFigure `json:"goroutines"`
	HeapLive   timetopage.SoakFigure `json:"heap_live_mb"`
	RSS        timetopage.SoakFigure `json:"rss_mb"`
	Flat       bool                  `json:"flat"`
	Faults     int                   `json:"faults"`
	Triggers   int                   `json:"triggers"`
	Resolves   int                   `json:"resolves"`
	OpenAtEnd  int                   `json:"open_at_end"`
	ExitCode   int                   `json:"exit_code"`
}

// Row is one line of the table.
type Row struct {
	Area      string `json:"area"`
	What      string `json:"what"`
	Figure    string `json:"figure"`
	Reference string `json:"reference"` // the bound, the conditions, the source
}

// Load reads what exists of the known files in dir.
func Load(dir string) (*Summary, error) {
	s := &Summary{Generated: time.Now().UTC().Format(time.RFC3339), Dir: dir}
	var errs []error
	errs = append(errs, s.loadGoBench(filepath.Join(dir, GoBenchFile)))
	errs = append(errs, s.loadScale(dir))
	errs = append(errs, s.loadDaemon(dir))
	errs = append(errs, s.loadTimeToPage(filepath.Join(dir, TimeToPageFile)))
	errs = append(errs, s.loadSoak(filepath.Join(dir, SoakFile)))
	s.Rows = s.rows()
	return s, errors.Join(errs...)
}

// open reads path, noting it as a source, or as missing when it does not exist.
func (s *Summary) open(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s.Missing = append(s.Missing, path)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s.Sources = append(s.Sources, path)
	return b, true, nil
}

func (s *Summary) loadGoBench(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		s.Missing = append(s.Missing, path)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	benches, err := ParseGoBench(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	s.Sources = append(s.Sources, path)
	s.ProbeCost = probeCost(benches)
	return nil
}

func probeCost(benches []GoBench) *ProbeCost {
	find := func(name string) *GoBench {
		for i := range benches {
			if benches[i].Name == name {
				return &benches[i]
			}
		}
		return nil
	}
	pc := &ProbeCost{Probe: find(BenchProbe), Floor: find(BenchFloor), Journey: find(BenchJourney)}
	if pc.Probe == nil && pc.Floor == nil && pc.Journey == nil {
		return nil
	}
	if p, f := pc.Probe, pc.Floor; p != nil && f != nil {
		pc.NsRatio = ratio(p.NsPerOp, f.NsPerOp)
		pc.CPURatio = ratio(p.Metrics["cpu-µs/op"], f.Metrics["cpu-µs/op"])
		pc.BytesRatio = ratio(p.BytesPerOp, f.BytesPerOp)
		pc.AllocsRatio = ratio(p.AllocsPerOp, f.AllocsPerOp)
	}
	return pc
}

func ratio(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return float64(int64(a/b*100+0.5)) / 100
}

func (s *Summary) loadScale(dir string) error {
	err := loadReports(s, dir, ScaleGlob, func(path string, r *bench.Report) { s.Scale = append(s.Scale, scaleFigures(path, r)) })
	sort.SliceStable(s.Scale, func(i, j int) bool { return s.Scale[i].Targets < s.Scale[j].Targets })
	return err
}

func (s *Summary) loadDaemon(dir string) error {
	err := loadReports(s, dir, DaemonGlob, func(path string, r *bench.DaemonReport) {
		s.Daemon = append(s.Daemon, DaemonFigures{
			File: path, Targets: r.Targets, DurationS: r.DurationS, IntervalS: r.IntervalS, PeakRSSMB: r.PeakRSS,
			SteadyRSSMB: r.SteadyRSS, Cores: r.Cores, PlanDeviationP99MS: r.PlanDeviationP99MS, GapDeviationP99MS: r.Gaps.Deviation.P99,
			FirstIntervalPct: r.FirstIntervalPct, RunsPerS: r.PerSecond, ExpectedPerS: r.Expected,
			LoadAvg: oneMinute(r.LoadAvgStart) + " → " + oneMinute(r.LoadAvgEnd),
		})
	})
	sort.SliceStable(s.Daemon, func(i, j int) bool { return s.Daemon[i].Targets < s.Daemon[j].Targets })
	return err
}

// loadReports decodes every file of dir matching glob as a T and hands it to add; no
// file is noted as missing, a file that does not decode is an error.
func loadReports[T any](s *Summary, dir, glob string, add func(path string, r *T)) error {
	files, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		s.Missing = append(s.Missing, filepath.Join(dir, glob))
	}
	var errs []error
	for _, path := range files {
		b, _, err := s.open(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r := new(T)
		if err := json.Unmarshal(b, r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		add(path, r)
	}
	return errors.Join(errs...)
}

func scaleFigures(path string, r *bench.Report) ScaleFigures {
	return ScaleFigures{
		File: path, Targets: r.Targets, DurationS: r.DurationS, IntervalS: r.IntervalS, Concurrency: r.Concurrency,
		ProbesPerS: r.ProbesPerS, ExpectedPerS: r.ExpectedPerS, LagP50MS: r.Lag.P50, LagP99MS: r.Lag.P99,
		CPUCores: r.CPUCores, PeakRSSMB: r.PeakRSS, MaxGoroutines: r.MaxGoroutines, Skipped: r.Skipped,
		Failures: r.Failures, LoadAvg: oneMinute(r.LoadAvgStart) + " → " + oneMinute(r.LoadAvgEnd),
	}
}

// oneMinute is the first of the three load averages.
func oneMinute(loadAvg string) string {
	first, _, _ := strings.Cut(loadAvg, " ")
	return first
}

func (s *Summary) loadTimeToPage(path string) error {
	b, ok, err := s.open(path)
	if !ok {
		return err
	}
	var r timetopage.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, se := range r.Series {
		s.TimeToPage = append(s.TimeToPage, PageFigures{
			Timing: se.Timing, Outage: se.Outage, Trials: len(se.Trials), Page: se.Page, Resolve: se.Resolve,
			Hold: se.Hold, OverBound: se.OverBound, OverAsBuilt: se.OverAsBuilt, WithOtherKeys: se.WithOtherKeys,
		})
	}
	return nil
}

func (s *Summary) loadSoak(path string) error {
	b, ok, err := s.open(path)
	if !ok {
		return err
	}
	var r timetopage.SoakReport
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	faults := 0
	for _, f := range r.Faults {
		if f.What != "healed" && f.What != "healed (end)" {
			faults++
		}
	}
	s.Soak = &SoakFigures{
		DurationS: r.DurationS, Targets: r.Targets, RunsPerS: r.RunsPerS, Goroutines: r.Goroutines,
		HeapLive: r.HeapLive, RSS: r.RSS, Flat: r.Flat, Faults: faults, Triggers: r.Triggers,
		Resolves: r.Resolves, OpenAtEnd: r.OpenAtEnd, ExitCode: r.ExitCode,
	}
	return nil
}
