package bench

import (
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// runtimeMetrics are the Go runtime's own figures, read at the start and the end of a
// run: they tell whether lag came from Picket's work or from the process waiting for a
// CPU (scheduling latency) or for the collector.
var runtimeMetrics = []string{
	"/sched/latencies:seconds",          // runnable goroutine waiting for a thread
	"/sched/pauses/total/gc:seconds",    // stop-the-world pauses of the GC
	"/gc/cycles/total:gc-cycles",        // completed GC cycles
	"/gc/heap/allocs:bytes",             // bytes allocated
	"/cpu/classes/gc/total:cpu-seconds", // CPU spent on GC
}

type runtimeSnapshot []metrics.Sample

func readRuntime() runtimeSnapshot {
	s := make([]metrics.Sample, len(runtimeMetrics))
	for i, name := range runtimeMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	return s
}

// RuntimeStats are the Go runtime's figures over the run.
type RuntimeStats struct {
	SchedLatency     Quantiles `json:"sched_latency"` // how long runnable goroutines waited for a CPU
	GCPause          Quantiles `json:"gc_pause"`
	GCCycles         uint64    `json:"gc_cycles"`
	AllocBytesPerRun float64   `json:"alloc_bytes_per_probe"`
	GCCPUSeconds     float64   `json:"gc_cpu_s"`
	MachineCoresBusy float64   `json:"machine_cores_busy"` // every process on the machine
	// CPUPressure is the share of the run during which some task on the machine waited
	// for a CPU (/proc/pressure/cpu "some"): high means the figures were taken crowded.
	CPUPressure float64 `json:"machine_cpu_pressure"`
}

// runtimeDelta is what happened between two snapshots, per probe where it says so.
func runtimeDelta(before, after runtimeSnapshot, probes int64) RuntimeStats {
	var rs RuntimeStats
	rs.SchedLatency = histogramDelta(before[0], after[0])
	rs.GCPause = histogramDelta(before[1], after[1])
	rs.GCCycles = after[2].Value.Uint64() - before[2].Value.Uint64()
	if probes > 0 {
		rs.AllocBytesPerRun = float64(after[3].Value.Uint64()-before[3].Value.Uint64()) / float64(probes)
	}
	rs.GCCPUSeconds = after[4].Value.Float64() - before[4].Value.Float64()
	return rs
}

// histogramDelta summarises the observations a runtime histogram gained between two
// reads; each quantile is its bucket's upper bound.
func histogramDelta(before, after metrics.Sample) Quantiles {
	if after.Value.Kind() != metrics.KindFloat64Histogram || before.Value.Kind() != metrics.KindFloat64Histogram {
		return Quantiles{}
	}
	a, b := after.Value.Float64Histogram(), before.Value.Float64Histogram()
	counts := make([]uint64, len(a.Counts))
	var total uint64
	for i := range a.Counts {
		counts[i] = a.Counts[i]
		if i < len(b.Counts) {
			counts[i] -= b.Counts[i]
		}
		total += counts[i]
	}
	at := func(q float64) float64 {
		rank := uint64(math.Ceil(q * float64(total)))
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= max(rank, 1) {
				return boundMS(a.Buckets[i+1], a.Buckets[i])
			}
		}
		return 0
	}
	q := Quantiles{Count: int64(total)}
	if total == 0 {
		return q
	}
	q.P50, q.P90, q.P99, q.P999, q.Max = at(0.5), at(0.9), at(0.99), at(0.999), at(1)
	return q
}

// boundMS is a bucket's upper bound in ms, or its lower bound when the upper is +Inf.
func boundMS(upper, lower float64) float64 {
	if math.IsInf(upper, 1) {
		upper = lower
	}
	return math.Round(upper*1e6) / 1e3
}

// cpuBusy reads the machine's busy and total CPU ticks from /proc/stat.
func cpuBusy() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return busy, total
}

// cpuPressureMicros is the total time, in microseconds, that some task waited for a CPU.
func cpuPressureMicros() uint64 {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// liveHeapMB collects garbage and returns the heap that is still reachable, in MiB.
func liveHeapMB() float64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64()) / (1 << 20)
}
