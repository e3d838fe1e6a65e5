package timetopage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
)

func TestSummarizeIsNearestRank(t *testing.T) {
	var v []float64
	for i := 20; i >= 1; i-- {
		v = append(v, float64(i*100))
	}
	q := Summarize(v)
	if q.Count != 20 || q.MinMS != 100 || q.P50MS != 1000 || q.P90MS != 1800 || q.P99MS != 2000 || q.MaxMS != 2000 || q.MeanMS != 1050 {
		t.Errorf("quantiles of 100..2000: %+v", q)
	}
	if (Summarize(nil) != Quantiles{}) {
		t.Errorf("no values: want zero quantiles")
	}
}

func TestOutPathIsFromTheModuleRoot(t *testing.T) {
	got, err := OutPath("bench/out/x.json")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(got)) // .../bench/out/x.json → .../bench
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "go.mod")); err != nil {
		t.Errorf("%s is not under the module root: %v", got, err)
	}
	if abs, _ := OutPath("/tmp/x.json"); abs != "/tmp/x.json" {
		t.Errorf("absolute path changed: %s", abs)
	}
}

func urls() map[string]string {
	m := map[string]string{}
	for i, r := range Regions() {
		m[r] = "http://127.0.0.1:1808" + string(rune('1'+i))
	}
	return m
}

func TestDefaultsScaledTimingComesFromPicketsDefaults(t *testing.T) {
	s := DefaultsScaledShape()
	cfg, err := config.Parse("t.yaml", []byte(renderConfig(configSpec{stateDir: "/tmp/x", regionURL: urls(), eventsURL: "http://127.0.0.1:1", shape: s, journeys: 1})))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Targets) != 20 {
		t.Errorf("want 4 regions × 5 products, got %d targets", len(cfg.Targets))
	}
	tm, err := timingOf(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 2 × 2s + 667ms, and group_wait defaults to the shortest interval (2s).
	if tm.FailureThreshold != 2 || tm.SuccessThreshold != 2 || tm.GroupWaitMS != 2000 || tm.PageBoundMS != 6667 || tm.DetectBoundMS != 4667 || tm.ResolveBoundMS != 4667 {
		t.Errorf("timing: %+v", tm)
	}
	if len(tm.Defaulted) != 3 {
		t.Errorf("defaulted: %v", tm.Defaulted)
	}
}

func TestConfigOfTheSoakHas200TargetsAtTwoIntervals(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(renderConfig(configSpec{stateDir: "/tmp/x", regionURL: urls(), eventsURL: "http://127.0.0.1:1",
		shape: soakShape(), journeys: soakJourneys, intervals: soakIntervals()})))
	if err != nil {
		t.Fatal(err)
	}
	count := map[time.Duration]int{}
	for _, tg := range cfg.Targets {
		count[tg.Interval]++
	}
	if len(cfg.Targets) != 200 || count[time.Second] != 100 || count[3*time.Second] != 100 {
		t.Errorf("want 200 targets, half at 1s and half at 3s, got %d: %v", len(cfg.Targets), count)
	}
}

func TestBaselineIsTheFirstQuietSampleAfterWarmUp(t *testing.T) {
	samples := []SoakSample{
		{AtS: 0, Phase: "start"}, {AtS: 10, Phase: "fault"}, {AtS: 20, Phase: "quiet", Goroutines: 1},
		{AtS: 30, Phase: "fault"}, {AtS: 40, Phase: "quiet", Goroutines: 2}, {AtS: 50, Phase: "fault"},
		{AtS: 60, Phase: "quiet", Goroutines: 3},
	}
	base, last, ok := baselineAndLast(samples, 30)
	if !ok || base.Goroutines != 2 || last.Goroutines != 3 {
		t.Errorf("base %+v, last %+v, ok %v", base, last, ok)
	}
	if _, _, ok := baselineAndLast(samples, 60); ok {
		t.Error("a baseline that is also the last sample compares nothing: want not ok")
	}
}

func TestFlatGoroutinesAllowsTwentyPercentOrFour(t *testing.T) {
	for _, c := range []struct {
		base, last float64
		flat       bool
	}{{12, 14, true}, {12, 16, true}, {12, 17, false}, {100, 120, true}, {100, 121, false}} {
		f := SoakFigure{Baseline: c.base, Last: c.last, GrowthPct: 100 * (c.last - c.base) / c.base}
		if got := flatGoroutines(f); got != c.flat {
			t.Errorf("%v → %v: flat %v, want %v", c.base, c.last, got, c.flat)
		}
	}
}
