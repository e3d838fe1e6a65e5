package summary

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/bench"
	"github.com/picket-dev/picket/bench/timetopage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const goBenchText = `goos: linux
goarch: amd64
pkg: github.com/picket-dev/picket/probe
cpu: AMD EPYC
BenchmarkHTTPProbe-2         	   13034	    180000 ns/op	       175.0 cpu-µs/op	      5288 probes/s	   19107 B/op	     157 allocs/op
BenchmarkHTTPProbe-2         	   13034	    200000 ns/op	       185.0 cpu-µs/op	      5000 probes/s	   19107 B/op	     157 allocs/op
BenchmarkHTTPProbe-2         	   13034	    190000 ns/op	       180.0 cpu-µs/op	      5100 probes/s	   19107 B/op	     157 allocs/op
BenchmarkFloorNetHTTPGet-2   	   12266	    160000 ns/op	       150.0 cpu-µs/op	      5142 gets/s	   16948 B/op	     120 allocs/op
BenchmarkHTTPProbe starting a log line that is not a result
PASS
ok  	github.com/picket-dev/picket/probe	7.453s
pkg: github.com/picket-dev/picket/probe/expect
BenchmarkStatusOnly-8   	1000000000	         6.7 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/picket-dev/picket/probe/expect	2.1s
`

func TestParseGoBenchMergesRepeatsByMedian(t *testing.T) {
	got, err := ParseGoBench(strings.NewReader(goBenchText))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("want 3 benchmarks, got %d: %+v", len(got), got)
	}
	p := got[0]
	if p.Name != "BenchmarkHTTPProbe" || p.Procs != 2 || p.Lines != 3 || p.Package != "github.com/picket-dev/picket/probe" {
		t.Errorf("probe: %+v", p)
	}
	if p.NsPerOp != 190000 || p.Metrics["cpu-µs/op"] != 180 || p.BytesPerOp != 19107 || p.AllocsPerOp != 157 {
		t.Errorf("probe figures (want the medians): %+v", p)
	}
	if s := got[2]; s.Name != "BenchmarkStatusOnly" || s.Procs != 8 || s.NsPerOp != 6.7 || s.Package != "github.com/picket-dev/picket/probe/expect" {
		t.Errorf("second package: %+v", s)
	}
}

func TestParseGoBenchRejectsABadValue(t *testing.T) {
	_, err := ParseGoBench(strings.NewReader("BenchmarkX-2  10  abc ns/op\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), `"abc"`) {
		t.Errorf("want an error naming line 1 and the value, got %v", err)
	}
}

func writeFile(t *testing.T, path string, v any) {
	t.Helper()
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, GoBenchFile), goBenchText+"BenchmarkJourneyTwoSteps-2  5918  435222 ns/op  438.4 cpu-µs/op  42404 B/op  376 allocs/op\n")
	writeFile(t, filepath.Join(dir, "scale-10000.json"), bench.Report{Targets: 10000, DurationS: 60, IntervalS: 10, Concurrency: 256,
		ProbesPerS: 1001, ExpectedPerS: 1000, Lag: bench.Quantiles{P50: 0.33, P99: 1.1}, CPUCores: 0.31, PeakRSS: 30,
		MaxGoroutines: 37, LoadAvgStart: "1.89 1.81 1.73", LoadAvgEnd: "1.73 1.77 1.72"})
	writeFile(t, filepath.Join(dir, "scale-1000.json"), bench.Report{Targets: 1000, DurationS: 60, IntervalS: 10})
	writeFile(t, filepath.Join(dir, "daemon-10000.json"), bench.DaemonReport{Targets: 10000, DurationS: 60, IntervalS: 10, PeakRSS: 89,
		SteadyRSS: 76, Cores: 0.43, PlanDeviationP99MS: 4.2, FirstIntervalPct: 100, PerSecond: 1000, Expected: 1000,
		Gaps: bench.GapReport{Deviation: bench.Quantiles{P99: 6.5}}, LoadAvgStart: "9.63 9.72 9.37", LoadAvgEnd: "10.87 9.99 9.48"})
	timing := timetopage.Timing{Shape: "short", IntervalMS: 1000, TimeoutMS: 800, FailureThreshold: 2, SuccessThreshold: 2,
		GroupWaitMS: 1000, PageBoundMS: 3800, DetectBoundMS: 2800, ResolveBoundMS: 2800, AsBuiltPageBoundMS: 4900}
	writeFile(t, filepath.Join(dir, TimeToPageFile), timetopage.Report{Series: []timetopage.Series{
		{Timing: timing, Outage: "region", Trials: make([]timetopage.Trial, 20), Page: timetopage.Quantiles{P50MS: 3100, P99MS: 4200}, OverBound: 3},
		{Timing: timing, Outage: "global", Trials: make([]timetopage.Trial, 3)},
	}})
	writeFile(t, filepath.Join(dir, SoakFile), timetopage.SoakReport{DurationS: 120, Targets: 200, Flat: true,
		Goroutines: timetopage.SoakFigure{First: 9, Baseline: 14, Last: 12, Max: 88, GrowthPct: -14.3},
		Faults:     []timetopage.SoakFault{{What: "down"}, {What: "healed"}, {What: "hang"}, {What: "healed (end)"}}})
	return dir
}

func TestLoadMakesOneRowPerFigure(t *testing.T) {
	s, err := Load(fixtures(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Missing) != 0 || len(s.Sources) != 6 {
		t.Errorf("missing %v, sources %v", s.Missing, s.Sources)
	}
	// 4 probe-cost rows (probe, floor, ratio, journey), 2 scale, 1 daemon, 2 time to page, 1 soak.
	if len(s.Rows) != 10 {
		t.Fatalf("want 10 rows, got %d:\n%s", len(s.Rows), s.Markdown())
	}
	if pc := s.ProbeCost; pc.NsRatio != 1.19 || pc.CPURatio != 1.2 || pc.AllocsRatio != 1.31 {
		t.Errorf("ratios probe/floor: %+v", pc)
	}
	if s.Scale[0].Targets != 1000 || s.Scale[1].LoadAvg != "1.89 → 1.73" {
		t.Errorf("scale rows sorted by targets, one-minute load: %+v", s.Scale)
	}
	if s.Soak.Faults != 2 {
		t.Errorf("soak faults: want 2 (heals are not faults), got %d", s.Soak.Faults)
	}
	md := s.Markdown()
	for _, want := range []string{
		"| area | what | figure | reference |",
		"| probe cost | ratio probe / floor | CPU 1.20 · time 1.19 · bytes 1.13 · allocs 1.31 |",
		"10,000 targets every 10s for 60s, concurrency 256",
		"picket run, 10,000 targets every 10s for 60s (metrics, engine, status API) | RSS peak 89 MiB (steady 76) · 0.43 cores · plan deviation p99 4.2 ms · gap deviation p99 6.5 ms · 100.0 % in the first interval",
		"daemon-10000.json; load avg 9.63 → 10.87",
		"page p50 3.10 s, p99 4.20 s",
		"over bound 3 of 20",
		"bound 2 × 1.00 s + 0.80 s + group_wait 1.00 s = 3.80 s (2.80 s without group_wait",
		"goroutines 9 → 14 → 12 (max 88, -14.3 %)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "\n"); n != 2+10 {
		t.Errorf("want one table of 10 rows and nothing else, got %d lines:\n%s", n, md)
	}
}

func TestLoadListsWhatIsMissingAndRejectsWhatDoesNotParse(t *testing.T) {
	empty, err := Load(t.TempDir())
	if err != nil || len(empty.Rows) != 0 || len(empty.Missing) != 5 {
		t.Errorf("empty dir: err %v, rows %d, missing %v", err, len(empty.Rows), empty.Missing)
	}
	dir := fixtures(t)
	writeFile(t, filepath.Join(dir, TimeToPageFile), `{"series": "not a list"}`)
	s, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), TimeToPageFile) {
		t.Errorf("want an error naming %s, got %v", TimeToPageFile, err)
	}
	if len(s.Rows) != 8 {
		t.Errorf("the other files still give their rows: want 8, got %d", len(s.Rows))
	}
}

func TestCellEscapesPipes(t *testing.T) {
	s := &Summary{Rows: []Row{{Area: "a|b", What: "w", Figure: "f", Reference: "r"}}}
	if !strings.Contains(s.Markdown(), `| a\|b | w | f | r |`) {
		t.Errorf("pipe not escaped: %s", s.Markdown())
	}
}
