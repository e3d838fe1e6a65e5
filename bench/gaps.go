package bench

import (
	"sync"
	"time"
)

// gapsEnv, when set in the server child's environment, is the targets' interval in
// nanoseconds: the child then notes every request's arrival by path (one path per
// target) and reports how regular each target's gaps were and when it first came.
const gapsEnv = "PICKET_BENCH_GAPS"

// GapReport is what the servers saw of the targets' schedule, independent of what the
// prober says of itself: the gap between two requests of a target, minus the interval,
// and whether each target's first request came within the first interval after the
// prober was ready.
type GapReport struct {
	Targets         int       `json:"targets_seen"`
	InFirstInterval int       `json:"in_first_interval"`
	Deviation       Quantiles `json:"gap_deviation"` // |gap − interval|
	// Missed counts gaps longer than 1.5 intervals: a run skipped or not made.
	Missed int64 `json:"missed_gaps"`
}

// gapRecorder keeps one first and last arrival per path.
type gapRecorder struct {
	interval time.Duration
	mu       sync.Mutex
	seen     map[string]*arrivals
	dev      histogram
	missed   int64
}

type arrivals struct{ first, last int64 } // unix nanos

func newGapRecorder(interval time.Duration) *gapRecorder {
	return &gapRecorder{interval: interval, seen: map[string]*arrivals{}}
}

func (g *gapRecorder) arrive(path string, now time.Time) {
	ns := now.UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.seen[path]
	if a == nil {
		g.seen[path] = &arrivals{first: ns, last: ns}
		return
	}
	gap := time.Duration(ns - a.last)
	a.last = ns
	if gap > g.interval*3/2 {
		g.missed++
	}
	dev := gap - g.interval
	if dev < 0 {
		dev = -dev
	}
	g.dev.record(dev)
}

// report sums up; readyAt is when the prober was ready (unix nanos, 0: unknown).
func (g *gapRecorder) report(readyAt int64) GapReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := GapReport{Targets: len(g.seen), Deviation: g.dev.summary(), Missed: g.missed}
	for _, a := range g.seen {
		if readyAt > 0 && a.first < readyAt+int64(g.interval) {
			r.InFirstInterval++
		}
	}
	return r
}
