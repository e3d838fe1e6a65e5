package timetopage

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var (
	ttpTrials = flag.Int("timetopage.trials", 20, "trials of a one-region outage per timing")
	ttpGlobal = flag.Int("timetopage.global", 3, "trials of a global outage (4 regions × 5 products) per timing")
	ttpOut    = flag.String("timetopage.out", "bench/out/timetopage.json", "report file (relative: from the module root)")
	ttpSeed   = flag.Int64("timetopage.seed", 1, "seed of the regions, faults and moments of T0")
	ttpShapes = flag.String("timetopage.shapes", "short,defaults", "timings to run: short (1s, ×2, 800ms, group_wait 1s), defaults (Picket's defaults / 15), defaults30 (Picket's defaults: 30s, 10s, ×2, group_wait 30s), defaults30-noconfirm (the same without confirmation runs)")
)

func TestMain(m *testing.M) {
	ServeSoakChildIfAsked() // the soak re-executes this binary as the daemon's process
	goleak.VerifyTestMain(m)
}

// asked reports whether a flag with this prefix was given, or PICKET_BENCH=1 is set.
func asked(prefix string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || strings.HasPrefix(f.Name, prefix) })
	return given || os.Getenv("PICKET_BENCH") == "1"
}

func shapesNamed(t *testing.T, list string) []Shape {
	t.Helper()
	var out []Shape
	for name := range strings.SplitSeq(list, ",") {
		switch strings.TrimSpace(name) {
		case "short":
			out = append(out, ShortShape())
		case "defaults":
			out = append(out, DefaultsScaledShape())
		case "defaults30":
			out = append(out, Defaults30Shape())
		case "defaults30-noconfirm":
			out = append(out, Defaults30NoConfirmShape())
		default:
			t.Fatalf("-timetopage.shapes: unknown timing %q, want short, defaults, defaults30 or defaults30-noconfirm", name)
		}
	}
	return out
}

func startRig(t *testing.T, shape Shape) *Rig {
	t.Helper()
	rig, err := StartRig(t.Context(), RigOptions{Shape: shape, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rig.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return rig
}

// TestTimeToPage is the benchmark: region outages and global outages under each
// timing, written to -timetopage.out. A global outage must page exactly one dedup key,
// picket/global; everything else is a figure.
func TestTimeToPage(t *testing.T) {
	if !asked("timetopage.") {
		t.Skip("a benchmark of minutes: give -timetopage.trials=N (or PICKET_BENCH=1)")
	}
	rep := NewReport(*ttpSeed)
	for _, shape := range shapesNamed(t, *ttpShapes) {
		t.Run(shape.Name, func(t *testing.T) {
			rig := startRig(t, shape)
			for _, o := range []struct {
				outage string
				n      int
			}{{OutageRegion, *ttpTrials}, {OutageGlobal, *ttpGlobal}} {
				s, err := rig.RunSeries(t.Context(), o.outage, o.n, *ttpSeed)
				rep.Series = append(rep.Series, s)
				if err != nil {
					t.Fatal(err)
				}
				if o.outage == OutageGlobal {
					checkOnePage(t, s)
				}
			}
		})
	}
	rep.Finish()
	path, err := WriteJSON(*ttpOut, rep)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s\n%s", path, rep.Table())
}

// checkOnePage: every trial paged one dedup key, the expected one, and resolved it once.
func checkOnePage(t *testing.T, s Series) {
	t.Helper()
	for _, tr := range s.Trials {
		if len(tr.OtherKeys) > 0 || tr.Triggers < 1 || tr.Resolves != 1 {
			t.Errorf("%s trial %d: want one page (%s triggered, resolved once), got %d trigger(s), %d resolve(s), other keys %v",
				s.Outage, tr.N, tr.Key, tr.Triggers, tr.Resolves, tr.OtherKeys)
		}
	}
}

// TestPageWithinBoundQuick runs in every `go test`: three region outages under the quick
// timing (every 500ms, ×2, timeout 400ms, group_wait 500ms), each paged within
// failure_threshold × interval + timeout + group_wait and resolved within
// success_threshold × interval + timeout — both plus what the daemon adds as built: its
// engine tick (100 ms, pages only).
func TestPageWithinBoundQuick(t *testing.T) {
	rig := startRig(t, QuickShape())
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s, err := rig.RunSeries(ctx, OutageRegion, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	tm := s.Timing
	for _, tr := range s.Trials {
		t.Logf("trial %d: %s %s, T0 +%.0fms: page %.0fms (detect %.0f, hold %.0f, deliver %.0f; bound %.0f, as built %.0f), resolve %.0fms (bound %.0f), other keys %v",
			tr.N, tr.Outage, tr.Fault, tr.OffsetMS, tr.PageMS, tr.DetectMS, tr.HoldMS, tr.DeliverMS, tm.PageBoundMS, tm.AsBuiltPageBoundMS, tr.ResolveMS, tm.ResolveBoundMS, tr.OtherKeys)
		if tr.PageMS > tm.AsBuiltPageBoundMS {
			t.Errorf("trial %d: paged after %.0fms, want at most %.0fms (failure_threshold × interval + timeout + group_wait = %.0fms, + engine tick %.0fms)",
				tr.N, tr.PageMS, tm.AsBuiltPageBoundMS, tm.PageBoundMS, tm.EngineTickMS)
		}
		if tr.ResolveMS > tm.AsBuiltResolveBoundMS {
			t.Errorf("trial %d: resolved after %.0fms, want at most %.0fms (success_threshold × interval + timeout = %.0fms)",
				tr.N, tr.ResolveMS, tm.AsBuiltResolveBoundMS, tm.ResolveBoundMS)
		}
		if tr.Triggers < 1 || tr.Resolves != 1 {
			t.Errorf("trial %d: %s triggered %d and resolved %d times, want at least one trigger and one resolve", tr.N, tr.Key, tr.Triggers, tr.Resolves)
		}
	}
}
