package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// subBuckets is how many buckets each power of two is cut into (about 3% wide each).
const subBuckets = 32

// nBuckets covers 0 µs to 2^41 µs (25 days): exact below 64 µs, log-linear above.
const nBuckets = 2*subBuckets + 36*subBuckets

// histogram counts durations in fixed buckets, so recording costs no allocation or lock
// and a long run at 50,000 targets keeps no per-sample memory that would inflate the RSS
// being measured.
type histogram struct {
	counts [nBuckets]atomic.Int64
	total  atomic.Int64
	max    atomic.Int64 // nanoseconds, exact
}

func bucketOf(us int64) int {
	if us < 2*subBuckets {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 6 // us is in [32<<e, 64<<e)
	b := 2*subBuckets + (e-1)*subBuckets + int(us>>e) - subBuckets
	return min(b, nBuckets-1)
}

// bucketBounds returns the lowest and highest microsecond value of bucket b.
func bucketBounds(b int) (lo, hi int64) {
	if b < 2*subBuckets {
		return int64(b), int64(b)
	}
	e := (b-2*subBuckets)/subBuckets + 1
	m := int64((b-2*subBuckets)%subBuckets + subBuckets)
	return m << e, (m+1)<<e - 1
}

func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(d.Microseconds())].Add(1)
	h.total.Add(1)
	storeMax(&h.max, int64(d))
}

// quantile returns the q-quantile (0 < q <= 1) as the middle of its bucket, never above
// the exact maximum; 0 when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.999999)
	rank = min(max(rank, 1), total)
	var seen int64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			lo, hi := bucketBounds(b)
			mid := time.Duration((lo+hi)/2) * time.Microsecond
			return min(mid, time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// Quantiles are a distribution's summary, in milliseconds.
type Quantiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *histogram) summary() Quantiles {
	return Quantiles{
		Count: h.total.Load(),
		P50:   ms(h.quantile(0.50)),
		P90:   ms(h.quantile(0.90)),
		P99:   ms(h.quantile(0.99)),
		P999:  ms(h.quantile(0.999)),
		Max:   ms(time.Duration(h.max.Load())),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
