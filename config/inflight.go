package config

import (
	"math"
	"time"
)

// RunsInFlight is how many runs of targets are under way at once, on average, when
// every run takes as long as it may (its timeout, once per try): the sum of each
// target's longest run over its interval. It is what a scheduler needs to start every
// run on time while the platform hangs. A target adds at most 1: a run that would
// overlap the previous one of the same target is skipped, never stacked.
func RunsInFlight(targets []*Target) float64 {
	sum := 0.0
	for _, t := range targets {
		if t.Interval <= 0 {
			continue
		}
		longest := t.Timeout * time.Duration(1+t.Retries)
		sum += min(1, float64(longest)/float64(t.Interval))
	}
	return sum
}

// NeededConcurrency is RunsInFlight rounded up: the fewest slots that keep the schedule
// of targets when every target hangs.
func NeededConcurrency(targets []*Target) int {
	return int(math.Ceil(RunsInFlight(targets) - 1e-9)) // 3 × 1/3 is 1, not 2
}
