package probe

import (
	"context"
	"slices"
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
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-first-run")
	var mem []int64
	b.ResetTimer()
	for b.Loop() {
		res := runner.Run(ctx, tg)
		if res.Status != StatusUp {
			b.Fatalf("run: %s", res.Error)
		}
		b.StopTimer()
		mem = append(mem, runnerBrowserMemory(runner))
		b.StartTimer()
	}
	b.StopTimer()
	var sum int64
	for _, m := range mem {
		sum += m
	}
	if len(mem) > 0 {
		b.ReportMetric(float64(sum/int64(len(mem)))/(1<<20), "browser-MiB")
		b.ReportMetric(float64(slices.Max(mem))/(1<<20), "browser-max-MiB")
	}
}

// runnerBrowserMemory is the memory of the runner's idle browsers, summed.
func runnerBrowserMemory(r *Runner) int64 {
	r.Browser.mu.Lock()
	defer r.Browser.mu.Unlock()
	var total int64
	for _, pool := range r.Browser.pools {
		for range pool.set.Pool {
			proc := <-pool.free
			total += proc.memory()
			pool.free <- proc
		}
	}
	return total
}
