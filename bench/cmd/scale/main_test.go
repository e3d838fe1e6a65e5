package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/bench"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSummaryPrintsOneRowPerReport(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, n := range []int{1000, 50000} {
		b, err := json.Marshal(bench.Report{Targets: n, ProbesPerS: float64(n) / 10, ExpectedPerS: float64(n) / 10})
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, fmt.Sprintf("scale-%d.json", n))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	var out bytes.Buffer
	if err := run(append([]string{"-summary"}, files...), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 1000 | 100 (100) |", "| 50000 | 5000 (5000) |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// TestDaemonSummaryPrintsOneRowPerReport: -daemon -summary reads daemon-level reports.
func TestDaemonSummaryPrintsOneRowPerReport(t *testing.T) {
	name := filepath.Join(t.TempDir(), "daemon-10000.json")
	b, err := json.Marshal(bench.DaemonReport{Targets: 10000, PerSecond: 1001, Expected: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-daemon", "-summary", name}, &out); err != nil {
		t.Fatal(err)
	}
	if want := "| 1001 (1000) |"; !strings.Contains(out.String(), "| 10000 |") || !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks the 10000 row with %q:\n%s", want, out.String())
	}
	if err := run([]string{"-daemon", "-summary", name + ".missing"}, &bytes.Buffer{}); err == nil {
		t.Error("-daemon -summary of a missing file: want an error")
	}
}

func TestSummaryRejectsWhatIsNotAReport(t *testing.T) {
	name := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(name, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"-summary", name}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "want a scale report in JSON") {
		t.Fatalf("err = %v, want a complaint naming the file's content", err)
	}
	if err := run([]string{"-summary"}, &bytes.Buffer{}); err == nil {
		t.Fatal("-summary with no file: want an error")
	}
}

func TestRunRefusesABadTargetCount(t *testing.T) {
	err := run([]string{"-targets", "150", "-duration", "1s"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "multiple of 100") {
		t.Fatalf("err = %v, want the layout rule", err)
	}
}
