package bench

import (
	"bufio"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// scrape is what the harness reads of the daemon's /metrics: the sums of a few series
// and one histogram's buckets. It reads line by line and keeps only those, so that a
// scrape of 100,000 targets' series costs the harness (which shares the machine) little.
type scrape struct {
	sums    map[string]float64 // by metric name, every series added up
	buckets map[float64]float64
	count   float64
	bytes   int64
}

// readScrape reads the text exposition format; histogram is the one whose buckets are
// kept, sums the names whose series are added up (a name with `{status="up"}` and the
// like matches series of that label only).
func readScrape(r io.Reader, histogram string, sums []string) (scrape, error) {
	s := scrape{sums: map[string]float64{}, buckets: map[float64]float64{}}
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadString('\n')
		s.bytes += int64(len(line))
		s.line(strings.TrimSuffix(line, "\n"), histogram, sums)
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return s, err
		}
	}
}

func (s *scrape) line(line, histogram string, sums []string) {
	if line == "" || line[0] == '#' {
		return
	}
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return
	}
	series, value := line[:sp], line[sp+1:]
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return
	}
	if rest, ok := strings.CutPrefix(series, histogram+"_bucket{le=\""); ok {
		le, err := strconv.ParseFloat(strings.TrimSuffix(rest, "\"}"), 64)
		if err == nil {
			s.buckets[le] = v
		}
		return
	}
	if series == histogram+"_count" {
		s.count = v
		return
	}
	for _, name := range sums {
		if matchesSeries(series, name) {
			s.sums[name] += v
		}
	}
}

// matchesSeries: name is a metric name, or name{label="value"} matching series that
// carry that label pair.
func matchesSeries(series, name string) bool {
	metric, pair, hasPair := strings.Cut(strings.TrimSuffix(name, "}"), "{")
	got, labels, _ := strings.Cut(series, "{")
	if got != metric {
		return false
	}
	return !hasPair || strings.Contains(labels, pair)
}

// quantile is histogram_quantile: linear within the bucket the rank falls in.
func (s scrape) quantile(q float64) float64 {
	if s.count == 0 {
		return 0
	}
	les := make([]float64, 0, len(s.buckets))
	for le := range s.buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	rank := q * s.count
	lower, below := 0.0, 0.0
	for _, le := range les {
		n := s.buckets[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return lower // past the last finite bucket: its bound is all one knows
			}
			if n == below {
				return le
			}
			return lower + (le-lower)*(rank-below)/(n-below)
		}
		lower, below = le, n
	}
	return lower
}
