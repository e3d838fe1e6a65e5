package bench

import (
	"fmt"
	"strings"
)

// Table renders reports as one markdown table, a row per report, with the conditions
// (duration, interval, concurrency, load average) each row was measured under.
func Table(reports []*Report) string {
	var b strings.Builder
	b.WriteString("| targets | probes/s (expected) | lag p50 | lag p90 | lag p99 | lag max | skipped | failures | CPU cores (Picket) | CPU µs/probe | peak RSS | max heap | max goroutines | CPU cores (servers) | machine cores busy (CPU pressure) | Go sched p99 | probe p99 | run | load avg start → end |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %d | %.0f (%.0f) | %s | %s | %s | %s | %d | %d | %.2f | %.0f | %.0f MiB | %.0f MiB | %d | %.2f | %.2f (%.0f%%) | %s | %s | %.0fs @ %gs, c=%d, %d hosts | %s → %s |\n",
			r.Targets, r.ProbesPerS, r.ExpectedPerS,
			FormatMS(r.Lag.P50), FormatMS(r.Lag.P90), FormatMS(r.Lag.P99), FormatMS(r.Lag.Max),
			r.Skipped, r.Failures, r.CPUCores, r.CPUPerProbeUS, r.PeakRSS, r.MaxHeap, r.MaxGoroutines,
			r.ServerCPUCores, r.Runtime.MachineCoresBusy, 100*r.Runtime.CPUPressure, FormatMS(r.Runtime.SchedLatency.P99), FormatMS(r.ProbeDuration.P99),
			r.DurationS, r.IntervalS, r.Concurrency, r.Hosts, r.LoadAvgStart, r.LoadAvgEnd)
	}
	return b.String()
}

// fmtMS prints milliseconds with the precision that matters at their size.
func FormatMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 1:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}
