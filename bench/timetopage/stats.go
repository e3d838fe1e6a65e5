package timetopage

import (
	"math"
	"slices"
	"time"
)

// Quantiles summarises a few durations, in milliseconds. With 20 values the p99 is the
// largest (nearest rank), so it is a worst case, not an estimate.
type Quantiles struct {
	Count  int     `json:"count"`
	MinMS  float64 `json:"min_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
}

// Summarize returns the nearest-rank quantiles of values (milliseconds).
func Summarize(values []float64) Quantiles {
	if len(values) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(values)
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return Quantiles{
		Count: len(s), MinMS: s[0], MaxMS: s[len(s)-1], MeanMS: round1(sum / float64(len(s))),
		P50MS: nearestRank(s, 0.50), P90MS: nearestRank(s, 0.90), P99MS: nearestRank(s, 0.99),
	}
}

// nearestRank is the smallest value with at least q of the values at or below it.
func nearestRank(sorted []float64, q float64) float64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms is d in milliseconds, to 0.1 ms.
func ms(d time.Duration) float64 { return round1(float64(d) / float64(time.Millisecond)) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }
