package store

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// base is a whole hour, so slot boundaries are easy to read.
var base = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

func mustRecord(t testing.TB, s *Store, target string, at time.Time, status string) {
	t.Helper()
	if err := s.RecordResult(target, at, status); err != nil {
		t.Fatalf("RecordResult(%s, %s, %s): %v", target, at, status, err)
	}
}

func history(t testing.TB, s *Store, target string, from, to time.Time, step time.Duration) []Bucket {
	t.Helper()
	got, err := s.History(target, from, to, step)
	if err != nil {
		t.Fatalf("History(%s, %s..%s, %s): %v", target, from, to, step, err)
	}
	return got
}

// encodeCounts writes a slot's value of the first layout (legacy.go), which only the
// tests still write.
func encodeCounts(c [3]uint32) []byte {
	out := make([]byte, 0, 12)
	for _, n := range c {
		out = binary.BigEndian.AppendUint32(out, n)
	}
	return out
}

// counts renders buckets as "up/degraded/down" per slot.
func counts(buckets []Bucket) string {
	parts := make([]string, len(buckets))
	for i, b := range buckets {
		parts[i] = fmt.Sprintf("%d/%d/%d", b.Up, b.Degraded, b.Down)
	}
	return strings.Join(parts, " ")
}

func TestHistoryBucketsByStep(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	const target = "logs/search@eu1"
	mustRecord(t, s, target, base, StatusUp)
	mustRecord(t, s, target, base.Add(4*time.Minute+59*time.Second), StatusUp) // same 5m slot
	mustRecord(t, s, target, base.Add(5*time.Minute), StatusDegraded)          // next slot
	mustRecord(t, s, target, base.Add(17*time.Minute), StatusDown)
	mustRecord(t, s, target, base.Add(61*time.Minute), StatusDown) // next hour
	mustRecord(t, s, "other@us1", base, StatusDown)                // another target stays apart

	fine := history(t, s, target, base, base.Add(20*time.Minute), FineStep)
	if got, want := counts(fine), "2/0/0 0/1/0 0/0/0 0/0/1"; got != want {
		t.Errorf("5m slots %s, want %s", got, want)
	}
	for i, b := range fine {
		if want := base.Add(time.Duration(i) * FineStep); !b.Start.Equal(want) || b.Start.Location() != time.UTC {
			t.Errorf("slot %d starts %s, want %s UTC", i, b.Start, want)
		}
	}
	if fine[0].Total() != 2 {
		t.Errorf("Total = %d, want 2", fine[0].Total())
	}

	coarse := history(t, s, target, base.Add(-time.Hour), base.Add(2*time.Hour), CoarseStep)
	if got, want := counts(coarse), "0/0/0 2/1/1 0/0/1"; got != want {
		t.Errorf("1h slots %s, want %s", got, want)
	}

	// from inside a slot starts at that slot; to is exclusive.
	mid := history(t, s, target, base.Add(7*time.Minute), base.Add(15*time.Minute), FineStep)
	if got, want := counts(mid), "0/1/0 0/0/0"; got != want || !mid[0].Start.Equal(base.Add(5*time.Minute)) {
		t.Errorf("mid-slot range: %s from %s, want %s from %s", got, mid[0].Start, want, base.Add(5*time.Minute))
	}

	// Times in another zone land in the same UTC slots.
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	mustRecord(t, s, target, base.In(zone).Add(time.Minute), StatusUp)
	if got := history(t, s, target, base, base.Add(FineStep), FineStep); got[0].Up != 3 {
		t.Errorf("a result given in +05:30 went elsewhere: %s", counts(got))
	}
}

func TestHistoryOfUnknownTargetIsEmptySlots(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	got := history(t, s, "never@eu1", base, base.Add(time.Hour), FineStep)
	if len(got) != 12 || counts(got) != strings.TrimSpace(strings.Repeat("0/0/0 ", 12)) {
		t.Errorf("unknown target: %d slots %s, want 12 empty", len(got), counts(got))
	}
}

func TestHistoryRetentionPerResolution(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	const target = "t@eu1"
	mustRecord(t, s, target, base, StatusDown)
	// 24h later minus one slot: the first fine slot is the oldest of 288, still kept.
	mustRecord(t, s, target, base.Add(FineRetention-FineStep), StatusUp)
	if got := history(t, s, target, base, base.Add(FineStep), FineStep); got[0].Down != 1 {
		t.Fatalf("fine slot 287 slots back was pruned: %s", counts(got))
	}
	mustRecord(t, s, target, base.Add(FineRetention), StatusUp)
	if got := history(t, s, target, base, base.Add(FineStep), FineStep); got[0].Total() != 0 {
		t.Errorf("fine slot 288 slots back kept: %s", counts(got))
	}
	if got := history(t, s, target, base, base.Add(CoarseStep), CoarseStep); got[0].Down != 1 {
		t.Errorf("coarse slot pruned with the fine one: %s", counts(got))
	}
	mustRecord(t, s, target, base.Add(CoarseRetention), StatusUp)
	if got := history(t, s, target, base, base.Add(CoarseStep), CoarseStep); got[0].Total() != 0 {
		t.Errorf("coarse slot 90 days back kept: %s", counts(got))
	}

	// The sizes stay fixed: 288 fine and 2160 coarse rows at most.
	err := s.View(func(tx *Tx) error {
		for _, r := range resolutions() {
			n := 0
			_ = rowsBucket(tx.tx, r).ForEach(func(_, _ []byte) error { n++; return nil })
			if limit := int(r.keep / r.step); n > limit {
				t.Errorf("%s: %d slots stored, want at most %d", r.name, n, limit)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHistoryKeepsAtMostAFullWindow(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	const target = "t@eu1"
	// 30 hours of one result per 5 minutes: 360 fine slots written, 288 kept.
	for i := range 360 {
		mustRecord(t, s, target, base.Add(time.Duration(i)*FineStep), StatusUp)
	}
	last := base.Add(359 * FineStep)
	got := history(t, s, target, last.Add(-FineRetention).Add(FineStep), last.Add(FineStep), FineStep)
	if len(got) != 288 {
		t.Fatalf("%d slots, want 288", len(got))
	}
	for i, b := range got {
		if b.Up != 1 {
			t.Fatalf("slot %d (%s) = %d/%d/%d, want 1 up: the last 24h must be whole", i, b.Start, b.Up, b.Degraded, b.Down)
		}
	}
	older := history(t, s, target, base, last.Add(-FineRetention).Add(FineStep), FineStep)
	for _, b := range older {
		if b.Total() != 0 {
			t.Fatalf("slot %s older than 24h kept", b.Start)
		}
	}
}

func TestPruneHistory(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	mustRecord(t, s, "kept@eu1", base, StatusUp)
	mustRecord(t, s, "kept@eu1", base.Add(3*time.Hour), StatusDown)
	mustRecord(t, s, "removed@eu1", base, StatusUp)

	if err := s.PruneHistory(base.Add(time.Hour)); err != nil {
		t.Fatalf("PruneHistory: %v", err)
	}
	got := history(t, s, "kept@eu1", base, base.Add(4*time.Hour), CoarseStep)
	if counts(got) != "0/0/0 0/0/0 0/0/0 0/0/1" {
		t.Errorf("after prune: %s, want only the slot at +3h", counts(got))
	}
	var targets []string
	err := s.View(func(tx *Tx) error {
		return tx.tx.Bucket([]byte(columnsBucket)).ForEach(func(k, _ []byte) error {
			targets = append(targets, string(k))
			return nil
		})
	})
	if err != nil || strings.Join(targets, ",") != "kept@eu1" {
		t.Errorf("targets after prune %v (%v), want the emptied one's column freed", targets, err)
	}
	if err := open(t, t.TempDir(), Options{}).PruneHistory(base); err != nil {
		t.Errorf("PruneHistory on an empty store: %v", err)
	}
}

func TestHistoryRejectsBadInput(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"status", s.RecordResult("t", base, "flaky"), "up, degraded or down"},
		{"empty target", s.RecordResult("", base, StatusUp), "target id"},
		{"before 1970", s.RecordResult("t", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), StatusUp), "after 1970"},
		{"step", errOf(s.History("t", base, base.Add(time.Hour), time.Minute)), "5m0s or 1h0m0s"},
		{"reversed range", errOf(s.History("t", base, base.Add(-time.Hour), FineStep)), "after from"},
		{"too many slots", errOf(s.History("t", base, base.Add(365*24*time.Hour), FineStep)), "at most 10000"},
		{"centuries", errOf(s.History("t", base, base.AddDate(400, 0, 0), CoarseStep)), "at most 10000"}, // (FuzzHistory)
	}
	for _, tc := range cases {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, tc.err, tc.want)
		}
	}
}

func errOf(_ []Bucket, err error) error { return err }

func BenchmarkRecordResult(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	targets := make([]string, 50)
	for i := range targets {
		targets[i] = fmt.Sprintf("product%d/journey@eu%d", i%10, i%5)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Results 15s apart per target, so slots fill and pruning runs as in production.
		at := base.Add(time.Duration(i/len(targets)) * 15 * time.Second)
		if err := s.RecordResult(targets[i%len(targets)], at, StatusUp); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestRecordResultsBatch(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	batch := []Result{
		{Target: "a@eu1", At: base, Status: StatusUp},
		{Target: "a@eu1", At: base.Add(time.Minute), Status: StatusDown},
		{Target: "b@us1", At: base, Status: StatusDegraded},
	}
	if err := s.RecordResults(batch); err != nil {
		t.Fatalf("RecordResults: %v", err)
	}
	if got := counts(history(t, s, "a@eu1", base, base.Add(FineStep), FineStep)); got != "1/0/1" {
		t.Errorf("a@eu1 = %s, want 1/0/1", got)
	}
	if got := counts(history(t, s, "b@us1", base, base.Add(CoarseStep), CoarseStep)); got != "0/1/0" {
		t.Errorf("b@us1 = %s, want 0/1/0", got)
	}
	// One bad result is left out and reported; the rest of the batch still counts.
	bad := []Result{{Target: "a@eu1", At: base, Status: StatusUp}, {Target: "a@eu1", At: base, Status: "flaky"}}
	if err := s.RecordResults(bad); err == nil || !strings.Contains(err.Error(), "flaky") {
		t.Errorf("RecordResults with a bad status = %v", err)
	}
	if got := counts(history(t, s, "a@eu1", base, base.Add(FineStep), FineStep)); got != "2/0/1" {
		t.Errorf("after a batch with one bad result a@eu1 = %s, want 2/0/1", got)
	}
	if err := s.RecordResults(nil); err != nil {
		t.Errorf("RecordResults(nil) = %v", err)
	}
}

// BenchmarkRecordResults is the daemon's path: 100 results per transaction.
// ns/op is per result.
func BenchmarkRecordResults(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	const perBatch = 100
	batch := make([]Result, perBatch)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = Result{Target: fmt.Sprintf("product%d/journey@eu%d", i%10, i%5),
				At: base.Add(time.Duration(n) * 15 * time.Second), Status: StatusUp}
		}
		if err := s.RecordResults(batch); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBatch), "ns/result")
}

// TestHistoryFlushWritesRowsNotPagesPerTarget: a flush of one result for each of 5,000
// targets writes the rows of its slots, a few dozen pages, not pages per target. The
// first layout (a bucket per target) wrote over 5,000 pages a flush, and every page it
// touched stayed in the daemon's resident memory (about 8 KB a target).
func TestHistoryFlushWritesRowsNotPagesPerTarget(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	flush := func(at time.Time) {
		batch := make([]Result, 5000)
		for i := range batch {
			batch[i] = Result{Target: fmt.Sprintf("p%02d/j%03d@r%04d", i%10, i%100, i/100), At: at, Status: StatusUp}
		}
		if err := s.RecordResults(batch); err != nil {
			t.Fatal(err)
		}
	}
	flush(base) // the first flush gives every target its column
	f, err := s.current()
	if err != nil {
		t.Fatal(err)
	}
	before := f.db.Stats().TxStats
	flush(base.Add(10 * time.Second))
	after := f.db.Stats().TxStats
	if written := after.GetWrite() - before.GetWrite(); written > 60 {
		t.Errorf("a flush of 5,000 targets' results wrote %d pages, want a few rows' worth (at most 60)", written)
	}
	if got := history(t, s, "p07/j007@r0000", base, base.Add(FineStep), FineStep); got[0].Up != 2 {
		t.Errorf("p07/j007@r0000 = %s, want 2 up", counts(got))
	}
}

// TestHistoryColumnsOfRemovedTargetsAreReused: a target no longer recorded loses its
// column once its last hour is older than the prune, and a new target takes that
// column without inheriting its counts.
func TestHistoryColumnsOfRemovedTargetsAreReused(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	mustRecord(t, s, "a@eu1", base, StatusDown)
	mustRecord(t, s, "b@eu1", base, StatusUp)
	mustRecord(t, s, "b@eu1", base.Add(5*time.Hour), StatusUp)
	if err := s.PruneHistory(base.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustRecord(t, s, "c@eu1", base.Add(5*time.Hour), StatusUp)
	err := s.View(func(tx *Tx) error {
		ca, aok := columnOf(tx.tx, "a@eu1")
		cc, cok := columnOf(tx.tx, "c@eu1")
		if aok || !cok || cc != 0 {
			t.Errorf("columns: a %d (%v), c %d (%v); want a's column 0 freed and taken by c", ca, aok, cc, cok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(history(t, s, "c@eu1", base, base.Add(6*time.Hour), CoarseStep)); got != "0/0/0 0/0/0 0/0/0 0/0/0 0/0/0 1/0/0" {
		t.Errorf("c@eu1 = %s, want only its own result", got)
	}
	if got := counts(history(t, s, "a@eu1", base, base.Add(CoarseStep), CoarseStep)); got != "0/0/0" {
		t.Errorf("a@eu1 after prune = %s, want nothing", got)
	}
}

// TestHistoryReadsAndAgesOutTheFirstLayout: a state file written by the first layout
// (a bucket per target) keeps its uptime bars after the upgrade: they are read beside
// the rows, added up, and pruned as before.
func TestHistoryReadsAndAgesOutTheFirstLayout(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	err := s.Update(func(tx *Tx) error {
		for _, r := range resolutions() {
			names := [][]byte{[]byte(historyBucket), []byte("old@eu1"), []byte(r.name)}
			if err := putRaw(tx.tx, names, slotKey(base), encodeCounts([3]uint32{7, 1, 2})); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustRecord(t, s, "old@eu1", base.Add(time.Minute), StatusDown)
	if got := counts(history(t, s, "old@eu1", base, base.Add(FineStep), FineStep)); got != "7/1/3" {
		t.Errorf("after the upgrade: %s, want the first layout's 7/1/2 plus the new down", got)
	}
	if err := s.PruneHistory(base.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Tx) error {
		if hb := tx.tx.Bucket([]byte(historyBucket)); hb != nil && hb.Bucket([]byte("old@eu1")) != nil {
			t.Error("the first layout's history of old@eu1 outlived the prune")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
