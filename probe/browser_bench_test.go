package probe

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBrowserJourney is the cost of one browser run: the mixed journey (log in
// through the form, wait for the dashboard, read its facts, then check the API over
// HTTP) against the simulated platform on loopback, in one warm browser process. It
// reports the time per run (ns/op) and the browser's memory after each run (its
// processes' proportional set sizes summed: the mean, and the largest).
//
//	go test -run '^$' -bench BrowserJourney -benchtime 20x ./probe/
func BenchmarkBrowserJourney(b *testing.B) {
	requireBrowser(b)
	plat := webPlatform(b)
	tg := targetsFor(b, plat.URL("eu1"), browserTop(b, ""), mixedJourney)[0]
	runner, _ := browserRunner(b)
	ctx := context.Background()
	start := time.Now()
	if res := runner.Run(ctx, tg); res.Status != StatusUp { // starts the browser
		b.Fatalf("warm-up run: %s", res.Error)
	}
	first := time.Since(start)
	var mem []int64
	var lookCPU time.Duration // the benchmark's own look at the memory, not Picket's
	cpu0, self0 := runnerBrowserCPU(runner), selfCPU()
	b.ResetTimer()
	for b.Loop() {
		res := runner.Run(ctx, tg)
		if res.Status != StatusUp {
			b.Fatalf("run: %s", res.Error)
		}
		b.StopTimer()
		look := selfCPU()
		mem = append(mem, runnerBrowserMemory(runner))
		lookCPU += selfCPU() - look
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(len(mem))
	b.ReportMetric(float64(first.Milliseconds()), "first-run-ms")
	b.ReportMetric(float64(runnerBrowserCPU(runner)-cpu0)/float64(time.Millisecond)/n, "browser-cpu-ms/op")
	b.ReportMetric(float64(selfCPU()-self0-lookCPU)/float64(time.Millisecond)/n, "picket-cpu-ms/op")
	var sum int64
	for _, m := range mem {
		sum += m
	}
	b.ReportMetric(float64(sum)/n/(1<<20), "browser-MiB")
	b.ReportMetric(float64(slices.Max(mem))/(1<<20), "browser-max-MiB")
}

// forEachIdleBrowser calls f with each idle browser of the runner (all, between runs).
func forEachIdleBrowser(r *Runner, f func(*browserProc)) {
	r.Browser.mu.Lock()
	defer r.Browser.mu.Unlock()
	for _, pool := range r.Browser.pools {
		for range pool.set.Pool {
			proc := <-pool.free
			f(proc)
			pool.free <- proc
		}
	}
}

// runnerBrowserMemory is the memory of the runner's idle browsers, summed.
func runnerBrowserMemory(r *Runner) int64 {
	var total int64
	forEachIdleBrowser(r, func(p *browserProc) { total += p.memory() })
	return total
}

// runnerBrowserCPU is the CPU time the runner's browsers used so far: every process of
// each browser, with the children they reaped (a run's renderers end with its tab).
func runnerBrowserCPU(r *Runner) time.Duration {
	var total time.Duration
	forEachIdleBrowser(r, func(p *browserProc) {
		if p == nil {
			return
		}
		pids, _ := procTree(p.pid)
		for _, pid := range pids {
			total += processCPU(pid)
		}
	})
	return total
}

// processCPU is utime+stime+cutime+cstime of a process (clock ticks of 10 ms).
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// selfCPU is this process's CPU time, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
