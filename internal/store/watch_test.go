package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/clock"
)

// logCounter counts log records by level, and keeps their messages.
type logCounter struct {
	mu    sync.Mutex
	lines []string
	byLvl map[slog.Level]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byLvl == nil {
		l.byLvl = map[slog.Level]int{}
	}
	l.byLvl[r.Level]++
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.lines = append(l.lines, b.String())
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byLvl[level]
}

func (l *logCounter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// watched opens a store with a counting logger, seeded with 200 records.
func watched(t *testing.T) (*Store, *logCounter, string) {
	t.Helper()
	dir := t.TempDir()
	seedFile(t, dir)
	logs := &logCounter{}
	s, err := Open(dir, Options{Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, logs, dir
}

func mustGet(t *testing.T, s *Store, key string) {
	t.Helper()
	var v string
	if found, err := s.Get("incidents", key, &v); !found || err != nil {
		t.Errorf("Get(%s) = %v, %v; want it there", key, found, err)
	}
}

func onlyReset(t *testing.T, s *Store, reason string) Reset {
	t.Helper()
	resets := s.Health().Resets
	if len(resets) != 1 || !strings.Contains(resets[0].Reason, reason) {
		t.Fatalf("resets %+v, want one saying %q", resets, reason)
	}
	return resets[0]
}

// TestDeletedWhileOpenIsCopiedBack: deleting the file under a running store used to be
// a silent fresh start at the next open (measured). Now the next look puts a copy of
// the still-open file back at the path, so a restart finds everything.
func TestDeletedWhileOpenIsCopiedBack(t *testing.T) {
	s, logs, dir := watched(t)
	path := filepath.Join(dir, FileName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("incidents", "written-after-delete", "x"); err != nil {
		t.Fatal(err)
	}
	s.look()
	r := onlyReset(t, s, "deleted")
	if !r.Copied || r.MovedTo != "" {
		t.Errorf("reset %+v, want copied and nothing moved aside", r)
	}
	if logs.count(slog.LevelError) == 0 {
		t.Errorf("the loss was not logged at ERROR:\n%s", logs)
	}
	if err := s.Put("incidents", "written-after-copy", "x"); err != nil {
		t.Fatalf("Put on the fresh file: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := openNoPanic(t, dir)
	for _, key := range []string{"inc-0000", "inc-0199", "written-after-delete", "written-after-copy"} {
		mustGet(t, again, key)
	}
}

// TestReplacedWhileOpen: a file moved over the path is set aside as .replaced-<time>
// and the store's own contents put back.
func TestReplacedWhileOpen(t *testing.T) {
	s, _, dir := watched(t)
	path := filepath.Join(dir, FileName)
	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, []byte("someone else's file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	s.look()
	r := onlyReset(t, s, "replaced")
	if !r.Copied || !strings.Contains(r.MovedTo, FileName+".replaced-") {
		t.Errorf("reset %+v, want copied and the stranger moved to picket.db.replaced-<time>", r)
	}
	if kept, _ := os.ReadFile(r.MovedTo); string(kept) != "someone else's file" {
		t.Errorf("the replacing file was not kept as it was: %q", kept)
	}
	mustGet(t, s, "inc-0100")
	s.look() // a second look finds nothing wrong
	if n := len(s.Health().Resets); n != 1 {
		t.Errorf("%d resets after a second look, want still 1", n)
	}
}

// TestReplacedByAnotherDaemonIsLeftAlone: a replacement another process holds (a
// second daemon started on the same state_dir after the file was deleted) is not
// moved away from under it.
func TestReplacedByAnotherDaemonIsLeftAlone(t *testing.T) {
	s, logs, dir := watched(t)
	path := filepath.Join(dir, FileName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	second := openNoPanic(t, dir) // creates and locks a new picket.db
	s.look()
	if n := len(s.Health().Resets); n != 0 {
		t.Errorf("%d resets, want none: the file is another daemon's", n)
	}
	if !strings.Contains(logs.String(), "another process holds") {
		t.Errorf("no word of the other process:\n%s", logs)
	}
	if err := second.Put("x", "y", 1); err != nil {
		t.Errorf("the other daemon's store broke: %v", err)
	}
}

// TestTruncatedWhileOpenDoesNotCrash: truncating the open file used to crash the process
// at the next read of bbolt's mapping (SIGBUS, measured); now calls fail with errors, and
// the next look starts a fresh file.
func TestTruncatedWhileOpenDoesNotCrash(t *testing.T) {
	for _, size := range []int64{0, 3 * 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s, _, dir := watched(t)
			path := filepath.Join(dir, FileName)
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				var v string
				_, _ = s.Get("incidents", fmt.Sprintf("inc-%04d", i*40), &v)
				_ = s.Put("incidents", fmt.Sprintf("after-%d", i), "x")
			}
			s.look()
			r := onlyReset(t, s, "")
			if r.Copied || !strings.Contains(r.MovedTo, ".damaged-") {
				t.Errorf("reset %+v, want the truncated file moved aside, nothing copied", r)
			}
			if err := s.Put("incidents", "fresh", "x"); err != nil {
				t.Fatalf("Put on the fresh file: %v", err)
			}
			mustGet(t, s, "fresh")
		})
	}
}

// TestZeroedPageWhileOpen: a page of the open file zeroed underneath (a disk or another
// program): the read that meets it fails instead of panicking, Watch is woken, and the
// damaged file is moved aside.
func TestZeroedPageWhileOpen(t *testing.T) {
	dir := t.TempDir()
	raw := seedFile(t, dir)
	path := filepath.Join(dir, FileName)
	id, size := usedPage(t, path) // before the store locks the file
	s := openNoPanic(t, dir)
	fd, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteAt(make([]byte, size), int64(id*size)); err != nil {
		t.Fatal(err)
	}
	_ = fd.Close()
	var failed error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("a read of the damaged file panicked: %v", p)
			}
		}()
		failed = s.ForEach("incidents", func(string, []byte) error { return nil })
	}()
	if failed == nil {
		t.Fatal("walking the records of a damaged file succeeded")
	}
	select {
	case <-s.kick:
	default:
		t.Error("Watch was not woken")
	}
	if err := s.Put("incidents", "x", 1); err == nil {
		t.Error("a write to the damaged file succeeded")
	}
	s.look()
	r := onlyReset(t, s, "damaged")
	if kept, _ := os.ReadFile(r.MovedTo); len(kept) != len(raw) {
		t.Errorf("damaged file kept as %s: %d bytes, want %d", r.MovedTo, len(kept), len(raw))
	}
	if err := s.Put("incidents", "fresh", "x"); err != nil {
		t.Fatalf("Put on the fresh file: %v", err)
	}
}

// TestWatchLooksByTheClockAndWhenWoken runs the loop itself with a fake clock.
func TestWatchLooksByTheClockAndWhenWoken(t *testing.T) {
	dir := t.TempDir()
	fake := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := Open(dir, Options{Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx) }()
	defer func() { cancel(); <-done }()
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { _, ok := fake.NextTimer(); return ok })
	fake.Advance(WatchEvery)
	waitUntil(t, func() bool { return len(s.Health().Resets) == 1 })
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Errorf("no file back at the path: %v", err)
	}
	s.wake() // a woken look with nothing wrong changes nothing
	time.Sleep(20 * time.Millisecond)
	if n := len(s.Health().Resets); n != 1 {
		t.Errorf("%d resets, want 1", n)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNextSeqContinuesAfterAFreshFile: a fresh file numbers above what was handed out
// before, so a key made of a number never collides with one still held in memory.
func TestNextSeqContinuesAfterAFreshFile(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for range 5 {
		if _, err := s.NextSeq("outbox"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(filepath.Join(dir, FileName), 0); err != nil {
		t.Fatal(err)
	}
	s.look()
	if seq, err := s.NextSeq("outbox"); err != nil || seq != 6 {
		t.Errorf("NextSeq on the fresh file = %d, %v; want 6", seq, err)
	}
	// Reopened by a later process: the fresh file holds the number too.
	_ = s.Close()
	s = open(t, dir, Options{})
	if seq, err := s.NextSeq("outbox"); err != nil || seq != 7 {
		t.Errorf("NextSeq after reopening = %d, %v; want 7", seq, err)
	}
	_ = bytes.MinRead
}

// verifyNow runs the full check of the open file (no writer may run beside it).
func (s *Store) verifyNow() (map[string]uint64, error) {
	f, err := s.current()
	if err != nil {
		return nil, err
	}
	return f.verify()
}

// TestHeaderOverwrittenWhileOpen: both meta pages zeroed under the open file (same
// inode, same size): the next look sees it without reading the mapping and moves the
// file aside.
func TestHeaderOverwrittenWhileOpen(t *testing.T) {
	s, _, dir := watched(t)
	fd, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteAt(make([]byte, 2*4096), 0); err != nil {
		t.Fatal(err)
	}
	_ = fd.Close()
	s.look()
	r := onlyReset(t, s, "header pages were overwritten")
	if !strings.Contains(r.MovedTo, ".damaged-") {
		t.Errorf("reset %+v, want the file moved aside as damaged", r)
	}
	if err := s.Put("incidents", "fresh", "x"); err != nil {
		t.Fatalf("Put on the fresh file: %v", err)
	}
}
