package timetopage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/picket-dev/picket/bench"
)

// Series is a run of trials of one outage under one timing.
type Series struct {
	Timing  Timing    `json:"timing"`
	Outage  string    `json:"outage"` // region | global
	Seed    int64     `json:"seed"`
	Trials  []Trial   `json:"trials"`
	Page    Quantiles `json:"page"`
	Resolve Quantiles `json:"resolve"`
	Detect  Quantiles `json:"detect"`
	Hold    Quantiles `json:"hold"`
	Deliver Quantiles `json:"deliver"`
	// OverBound counts trials paged later than the bound; WithOtherKeys the trials in
	// which any dedup key besides the expected one was triggered.
	OverBound     int `json:"over_bound"`
	OverAsBuilt   int `json:"over_as_built_bound"`
	WithOtherKeys int `json:"trials_with_other_keys"`
}

// RunSeries runs n trials of outage on the rig, seeded. On an error it returns the
// trials done so far with the error.
func (r *Rig) RunSeries(ctx context.Context, outage string, n int, seed int64) (Series, error) {
	s := Series{Timing: r.Timing, Outage: outage, Seed: seed}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7469_6d65_746f_7061)) // "timetopa"
	for i := range n {
		tr, err := r.Trial(ctx, rng, i+1, outage)
		if err != nil {
			s.summarize()
			return s, err
		}
		s.Trials = append(s.Trials, tr)
	}
	s.summarize()
	return s, nil
}

func (s *Series) summarize() {
	var page, resolve, detect, hold, deliver []float64
	s.OverBound, s.OverAsBuilt, s.WithOtherKeys = 0, 0, 0
	for _, tr := range s.Trials {
		page, resolve = append(page, tr.PageMS), append(resolve, tr.ResolveMS)
		detect, hold, deliver = append(detect, tr.DetectMS), append(hold, tr.HoldMS), append(deliver, tr.DeliverMS)
		if tr.OverBound {
			s.OverBound++
		}
		if tr.OverAsBuilt {
			s.OverAsBuilt++
		}
		if len(tr.OtherKeys) > 0 {
			s.WithOtherKeys++
		}
	}
	s.Page, s.Resolve = Summarize(page), Summarize(resolve)
	s.Detect, s.Hold, s.Deliver = Summarize(detect), Summarize(hold), Summarize(deliver)
}

// Report is what bench/out/timetopage.json holds.
type Report struct {
	Started      string   `json:"started"`
	WallS        float64  `json:"wall_s"`
	GoVersion    string   `json:"go_version"`
	NumCPU       int      `json:"num_cpu"`
	GOMAXPROCS   int      `json:"gomaxprocs"`
	LoadAvgStart string   `json:"load_avg_start"`
	LoadAvgEnd   string   `json:"load_avg_end"`
	Seed         int64    `json:"seed"`
	Series       []Series `json:"series"`
	Notes        []string `json:"notes"`
	began        time.Time
}

// NewReport starts a report: the conditions at the start.
func NewReport(seed int64) *Report {
	now := time.Now()
	return &Report{
		Started: now.UTC().Format(time.RFC3339), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvgStart: bench.LoadAvg(), Seed: seed, began: now,
		Notes: []string{
			"page = T(trigger accepted by the local Events API receiver) - T0 (the fault set on the simulated platform); resolve = T(resolve accepted) - T(heal)",
			"page bound = failure_threshold x interval + timeout + group_wait; Picket holds a new incident's first page for group_wait on purpose, so that the first page says how wide the outage is (detect bound = the same without group_wait)",
			"detect = the incident opened (its scope formed) - T0; hold = its trigger handed to the outbox - opened (group_wait, then the daemon's engine tick, every 100 ms, unless another target changes state first); deliver = accepted - handed over",
			"T0 falls at a seeded random moment within one interval of quiet; each trial breaks with a seeded fault kind (down: connection dropped, error: 500, hang: no answer, failed by the timeout)",
			"as-built bound = the bound + one engine tick (100 ms: internal/daemon/daemon.go tick)",
			"other keys: dedup keys triggered besides the expected one during a trial (pages beyond the one)",
			"quantiles are nearest-rank: with 20 trials p99 is the largest",
		},
	}
}

// Finish records the conditions at the end.
func (r *Report) Finish() {
	r.WallS = round1(time.Since(r.began).Seconds())
	r.LoadAvgEnd = bench.LoadAvg()
}

// Table renders the series as one markdown table.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| timing | outage | trials | page p50 | page p99 | bound (without group_wait; as built) | over bound (as built) | resolve p50 | resolve p99 | resolve bound | detect p50 | hold p50 | deliver p50 | trials with other keys |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Series {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s (%s; %s) | %d (%d) | %s | %s | %s | %s | %s | %s | %d |\n",
			TimingLabel(s.Timing), s.Outage, s.Page.Count, Secs(s.Page.P50MS), Secs(s.Page.P99MS),
			Secs(s.Timing.PageBoundMS), Secs(s.Timing.DetectBoundMS), Secs(s.Timing.AsBuiltPageBoundMS), s.OverBound, s.OverAsBuilt,
			Secs(s.Resolve.P50MS), Secs(s.Resolve.P99MS), Secs(s.Timing.ResolveBoundMS),
			Secs(s.Detect.P50MS), Secs(s.Hold.P50MS), Secs(s.Deliver.P50MS), s.WithOtherKeys)
	}
	return b.String()
}

// TimingLabel is a timing in one short phrase: "short: 1s, ×2, timeout 800ms, group_wait 1s".
func TimingLabel(t Timing) string {
	s := fmt.Sprintf("%s: every %s, ×%d failures, timeout %s, group_wait %s",
		t.Shape, Secs(t.IntervalMS), t.FailureThreshold, Secs(t.TimeoutMS), Secs(t.GroupWaitMS))
	if len(t.Defaulted) > 0 {
		s += " (defaults: " + strings.Join(t.Defaulted, ", ") + ")"
	}
	return s
}

// Secs prints milliseconds as seconds with two decimals.
func Secs(ms float64) string { return fmt.Sprintf("%.2fs", ms/1000) }
