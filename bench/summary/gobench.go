package summary

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// GoBench is one benchmark from `go test -bench` text output. With -count above one,
// each figure is the median of the benchmark's lines.
type GoBench struct {
	Name        string             `json:"name"` // without the -GOMAXPROCS suffix
	Package     string             `json:"package,omitempty"`
	Procs       int                `json:"procs,omitempty"`
	Lines       int                `json:"lines"` // result lines merged
	NsPerOp     float64            `json:"ns_per_op"`
	BytesPerOp  float64            `json:"bytes_per_op"`
	AllocsPerOp float64            `json:"allocs_per_op"`
	Metrics     map[string]float64 `json:"metrics,omitempty"` // every other unit, e.g. cpu-µs/op
}

// ParseGoBench reads `go test -bench` output (several packages may follow each other)
// and returns one GoBench per benchmark name, in order of first appearance. Lines that
// are not results (goos:, PASS, ok, logs) are skipped.
func ParseGoBench(r io.Reader) ([]GoBench, error) {
	var order []string
	lines := map[string][]map[string]float64{}
	meta := map[string]GoBench{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if p, ok := strings.CutPrefix(text, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		name, procs, units, ok, err := parseResultLine(text)
		if err != nil {
			return nil, fmt.Errorf("go bench output line %d: %w", n, err)
		}
		if !ok {
			continue
		}
		if _, seen := lines[name]; !seen {
			order = append(order, name)
			meta[name] = GoBench{Name: name, Package: pkg, Procs: procs}
		}
		lines[name] = append(lines[name], units)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read go bench output: %w", err)
	}
	out := make([]GoBench, 0, len(order))
	for _, name := range order {
		out = append(out, merge(meta[name], lines[name]))
	}
	return out, nil
}

// parseResultLine reads "BenchmarkX-2  1000  1234 ns/op  56 B/op  7 allocs/op": a name,
// an iteration count, then value-unit pairs. ok is false for any other line.
func parseResultLine(line string) (name string, procs int, units map[string]float64, ok bool, err error) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return "", 0, nil, false, nil
	}
	if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
		return "", 0, nil, false, nil // e.g. a log line that starts with a benchmark's name
	}
	name, procs = splitProcs(f[0])
	units = map[string]float64{}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return "", 0, nil, false, fmt.Errorf("%s: value %q of %s: %w", f[0], f[i], f[i+1], err)
		}
		units[f[i+1]] = v
	}
	return name, procs, units, true, nil
}

// splitProcs cuts the -GOMAXPROCS suffix go test adds to a name: BenchmarkX-2.
func splitProcs(s string) (string, int) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0
	}
	return s[:i], n
}

// merge takes the median of every unit over a benchmark's lines.
func merge(b GoBench, lines []map[string]float64) GoBench {
	b.Lines = len(lines)
	all := map[string][]float64{}
	for _, l := range lines {
		for unit, v := range l {
			all[unit] = append(all[unit], v)
		}
	}
	for unit, vs := range all {
		v := median(vs)
		switch unit {
		case "ns/op":
			b.NsPerOp = v
		case "B/op":
			b.BytesPerOp = v
		case "allocs/op":
			b.AllocsPerOp = v
		default:
			if b.Metrics == nil {
				b.Metrics = map[string]float64{}
			}
			b.Metrics[unit] = v
		}
	}
	return b
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
