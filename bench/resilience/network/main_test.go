package network

import (
	"os"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireResilience skips heavy tests unless `make resilience` (PICKET_RESILIENCE=1)
// asked for them.
func requireResilience(t *testing.T) {
	t.Helper()
	if os.Getenv("PICKET_RESILIENCE") != "1" {
		t.Skip("resilience test: set PICKET_RESILIENCE=1 (make resilience)")
	}
}

// quantile is the q-quantile (0..1) of ds by the nearest-rank method; 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
