package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunPrintsTheTableAndWritesJSON(t *testing.T) {
	dir := t.TempDir()
	bench := "BenchmarkHTTPProbe-2  100  190000 ns/op  19107 B/op  157 allocs/op\nBenchmarkFloorNetHTTPGet-2  100  160000 ns/op  16948 B/op  120 allocs/op\n"
	if err := os.WriteFile(filepath.Join(dir, "gobench.txt"), []byte(bench), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run([]string{"-dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| probe cost | ratio probe / floor | time 1.19") {
		t.Errorf("table:\n%s", out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows    []map[string]string `json:"rows"`
		Missing []string            `json:"missing"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != 3 || len(got.Missing) != 4 {
		t.Errorf("summary.json: %d rows (want 3), missing %v (want 4: scale, daemon, time to page, soak)", len(got.Rows), got.Missing)
	}
}

func TestRunFailsOnAFileThatDoesNotParseButStillPrints(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "soak.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := run([]string{"-dir", dir, "-json", "-"}, &out)
	if err == nil || !strings.Contains(err.Error(), "soak.json") {
		t.Errorf("want an error naming soak.json, got %v", err)
	}
	if !strings.Contains(out.String(), "| area |") {
		t.Errorf("want the table anyway, got %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); !os.IsNotExist(err) {
		t.Errorf("-json - must write nothing: %v", err)
	}
}
