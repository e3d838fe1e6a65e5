package summary

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/picket-dev/picket/bench"
	"github.com/picket-dev/picket/bench/timetopage"
)

// Markdown renders the summary as one markdown table, with the missing files after it.
func (s *Summary) Markdown() string {
	var b strings.Builder
	b.WriteString("| area | what | figure | reference |\n|---|---|---|---|\n")
	for _, r := range s.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(r.Area), cell(r.What), cell(r.Figure), cell(r.Reference))
	}
	if len(s.Missing) > 0 {
		fmt.Fprintf(&b, "\nNot found (no row): %s\n", strings.Join(s.Missing, ", "))
	}
	return b.String()
}

// cell keeps a value inside its table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (s *Summary) rows() []Row {
	var rows []Row
	rows = append(rows, s.probeRows()...)
	for _, sc := range s.Scale {
		rows = append(rows, scaleRow(sc))
	}
	for _, d := range s.Daemon {
		rows = append(rows, daemonRow(d))
	}
	for _, p := range s.TimeToPage {
		rows = append(rows, pageRow(p))
	}
	if s.Soak != nil {
		rows = append(rows, soakRow(s.Soak))
	}
	return rows
}

func (s *Summary) probeRows() []Row {
	pc := s.ProbeCost
	if pc == nil {
		return nil
	}
	var rows []Row
	add := func(b *GoBench, what string) {
		if b != nil {
			rows = append(rows, Row{Area: "probe cost", What: what + " (" + b.Name + ")", Figure: benchFigure(b), Reference: GoBenchFile})
		}
	}
	add(pc.Probe, "HTTP probe: fresh connection, traced")
	add(pc.Floor, "floor: plain net/http GET, fresh connection")
	if pc.NsRatio > 0 {
		fig := fmt.Sprintf("time %.2f", pc.NsRatio)
		if pc.CPURatio > 0 {
			fig = fmt.Sprintf("CPU %.2f · %s", pc.CPURatio, fig)
		}
		fig += fmt.Sprintf(" · bytes %.2f · allocs %.2f", pc.BytesRatio, pc.AllocsRatio)
		rows = append(rows, Row{Area: "probe cost", What: "ratio probe / floor", Figure: fig, Reference: "1.00 = no overhead over net/http"})
	}
	add(pc.Journey, "2-step journey: submit + read-back")
	return rows
}

func benchFigure(b *GoBench) string {
	fig := fmt.Sprintf("%s/op", micros(b.NsPerOp))
	if cpu, ok := b.Metrics["cpu-µs/op"]; ok {
		fig = fmt.Sprintf("%.0f µs CPU/op · %s wall", cpu, fig)
	}
	fig += fmt.Sprintf(" · %.1f KiB/op · %.0f allocs/op", b.BytesPerOp/1024, b.AllocsPerOp)
	if b.Lines > 1 {
		fig += fmt.Sprintf(" (median of %d)", b.Lines)
	}
	return fig
}

func micros(ns float64) string { return fmt.Sprintf("%.0f µs", ns/1000) }

func scaleRow(sc ScaleFigures) Row {
	return Row{
		Area: "scale",
		What: fmt.Sprintf("%s targets every %gs for %gs, concurrency %d", thousands(sc.Targets), sc.IntervalS, sc.DurationS, sc.Concurrency),
		Figure: fmt.Sprintf("%.0f probes/s (expected %.0f) · lag p50 %s, p99 %s · %.2f CPU cores · peak RSS %.0f MiB · %d goroutines max · %d skipped, %d failed",
			sc.ProbesPerS, sc.ExpectedPerS, bench.FormatMS(sc.LagP50MS), bench.FormatMS(sc.LagP99MS), sc.CPUCores, sc.PeakRSSMB, sc.MaxGoroutines, sc.Skipped, sc.Failures),
		Reference: fmt.Sprintf("%s; load avg %s", filepath.Base(sc.File), sc.LoadAvg),
	}
}

func daemonRow(d DaemonFigures) Row {
	return Row{
		Area: "daemon scale",
		What: fmt.Sprintf("picket run, %s targets every %gs for %gs (metrics, engine, status API)", thousands(d.Targets), d.IntervalS, d.DurationS),
		Figure: fmt.Sprintf("RSS peak %.0f MiB (steady %.0f) · %.2f cores · plan deviation p99 %s · gap deviation p99 %s · %.1f %% in the first interval · %.0f runs/s (expected %.0f)",
			d.PeakRSSMB, d.SteadyRSSMB, d.Cores, bench.FormatMS(d.PlanDeviationP99MS), bench.FormatMS(d.GapDeviationP99MS), d.FirstIntervalPct, d.RunsPerS, d.ExpectedPerS),
		Reference: fmt.Sprintf("%s; load avg %s", filepath.Base(d.File), d.LoadAvg),
	}
}

func pageRow(p PageFigures) Row {
	t := p.Timing
	what := fmt.Sprintf("%s outage, %s (%d trials)", p.Outage, timetopage.TimingLabel(t), p.Trials)
	fig := fmt.Sprintf("page p50 %s, p99 %s · resolve p50 %s, p99 %s · over bound %d of %d (as built %d) · trials with other keys %d",
		secs(p.Page.P50MS), secs(p.Page.P99MS), secs(p.Resolve.P50MS), secs(p.Resolve.P99MS), p.OverBound, p.Trials, p.OverAsBuilt, p.WithOtherKeys)
	ref := fmt.Sprintf("bound %d × %s + %s + group_wait %s = %s (%s without group_wait, which Picket adds on purpose; %s as built: + the engine tick); resolve bound %s",
		t.FailureThreshold, secs(t.IntervalMS), secs(t.TimeoutMS), secs(t.GroupWaitMS), secs(t.PageBoundMS),
		secs(t.DetectBoundMS), secs(t.AsBuiltPageBoundMS), secs(t.ResolveBoundMS))
	return Row{Area: "time to page", What: what, Figure: fig, Reference: ref}
}

func soakRow(s *SoakFigures) Row {
	fig := fmt.Sprintf("goroutines %s · live heap (MiB) %s · RSS (MiB) %s · %s · %.0f runs/s · %d triggers, %d resolves, %d open at the end · exit %d",
		figure(s.Goroutines, "%.0f"), figure(s.HeapLive, "%.1f"), figure(s.RSS, "%.0f"), flatText(s.Flat), s.RunsPerS, s.Triggers, s.Resolves, s.OpenAtEnd, s.ExitCode)
	return Row{
		Area:      "soak",
		What:      fmt.Sprintf("%d targets at 1 s and 3 s for %s, %d faults", s.Targets, duration(s.DurationS), s.Faults),
		Figure:    fig,
		Reference: "first → after warm-up → last (max); flat = last within +20 % of after warm-up (goroutines: or +4)",
	}
}

func figure(f timetopage.SoakFigure, format string) string {
	v := func(x float64) string { return fmt.Sprintf(format, x) }
	return fmt.Sprintf("%s → %s → %s (max %s, %+.1f %%)", v(f.First), v(f.Baseline), v(f.Last), v(f.Max), f.GrowthPct)
}

func flatText(flat bool) string {
	if flat {
		return "flat"
	}
	return "NOT flat"
}

func duration(s float64) string {
	if s >= 60 && int(s)%60 == 0 {
		return fmt.Sprintf("%d min", int(s)/60)
	}
	return fmt.Sprintf("%gs", s)
}

func secs(ms float64) string { return fmt.Sprintf("%.2f s", ms/1000) }

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
