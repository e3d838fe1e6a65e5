package alert

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// TestTableScopeLineNamesTheWidestScopeAndTheRest: the footer names the region that is
// out and its products, and mentions the stray failures separately.
func TestTableScopeLineNamesTheWidestScopeAndTheRest(t *testing.T) {
	cfg := &config.Config{Vantage: "v", BlastRadius: br}
	var results []probe.Result
	for _, id := range []string{"logs/a@eu1", "metrics/q@eu1", "events/e@eu1", "logs/a@ap1", "metrics/q@us1"} {
		results = append(results, resultOf(id, "down"))
	}
	results = append(results, resultOf("logs/a@us1", "up"))
	var out bytes.Buffer
	if err := WriteTable(&out, BuildReport(cfg, time.Now(), results)); err != nil {
		t.Fatal(err)
	}
	want := "1 up, 0 degraded, 5 down; scope REGION eu1 (events, logs, metrics); also 2 other failing targets"
	if got := footer(out.String()); got != want {
		t.Errorf("footer %q, want %q", got, want)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if n := len([]rune(line)); n > tableWidth {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
}

// footer is the table's last paragraph on one line (it wraps at 80 columns).
func footer(table string) string {
	paras := strings.Split(strings.TrimSpace(table), "\n\n")
	return strings.Join(strings.Fields(paras[len(paras)-1]), " ")
}
