package timetopage

import (
	"flag"
	"os"
	"testing"
	"time"
)

var (
	soakDuration = flag.Duration("soak.duration", 10*time.Minute, "how long the soak runs (a multiple of 20s keeps the last sample quiet)")
	soakOut      = flag.String("soak.out", "bench/out/soak.json", "report file (relative: from the module root)")
	soakSeed     = flag.Int64("soak.seed", 1, "seed of the faults")
)

// TestSoak runs the daemon with 200 targets and a fault on every other 10 s beat for
// -soak.duration, writes -soak.out, and wants goroutines and live heap flat (the last
// quiet sample within +20 % of the first after warm-up; goroutines may also grow by 4,
// see soakGoroutineSlack), the daemon ready at every
// sample, every page resolved once healed, and a clean exit on SIGTERM.
func TestSoak(t *testing.T) {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "soak.duration" })
	if !given && os.Getenv("PICKET_SOAK") != "1" {
		t.Skip("a soak of minutes: give -soak.duration=10m (and -timeout above it), or PICKET_SOAK=1")
	}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < *soakDuration+2*time.Minute {
		t.Fatalf("-soak.duration=%s does not fit the test's deadline (%s left): run with -timeout %s",
			*soakDuration, time.Until(deadline).Round(time.Second), (*soakDuration + 5*time.Minute).Round(time.Minute))
	}
	rep, err := RunSoak(t.Context(), SoakOptions{Duration: *soakDuration, Seed: *soakSeed, Dir: t.TempDir()})
	if rep != nil {
		path, werr := WriteJSON(*soakOut, rep)
		if werr != nil {
			t.Error(werr)
		}
		t.Logf("wrote %s: %d targets, %.0f runs/s; goroutines %v; live heap MiB %v; RSS MiB %v; %d triggers, %d resolves",
			path, rep.Targets, rep.RunsPerS, rep.Goroutines, rep.HeapLive, rep.RSS, rep.Triggers, rep.Resolves)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Flat {
		t.Errorf("not flat: goroutines %+v, live heap %+v (want growth at most %d%%, or %d goroutines)", rep.Goroutines, rep.HeapLive, soakMaxGrowth, soakGoroutineSlack)
	}
	if rep.NotReady > 0 {
		t.Errorf("%d sample(s) with /readyz not ready", rep.NotReady)
	}
	if rep.OpenAtEnd > 0 {
		t.Errorf("%d alert(s) still open at the receiver after healing", rep.OpenAtEnd)
	}
	if rep.ExitCode != 0 {
		t.Errorf("daemon exit code after SIGTERM: %d, want 0", rep.ExitCode)
	}
}
