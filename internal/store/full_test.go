package store

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/tmpfs"
)

// TestFullDiskWritesFailLoudlyButNotInAFlood: on a real full file system (a 256 KiB
// tmpfs) writes fail with ENOSPC; Health counts them and says since when, the log says
// so once and then at most once a minute with a count, and once space is freed writes
// work again and the file is sound.
func TestFullDiskWritesFailLoudlyButNotInAFlood(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	logs := &logCounter{}
	fake := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := Open(dir, Options{Logger: slog.New(logs), Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put("states", "before", 1); err != nil {
		t.Fatal(err)
	}
	free := tmpfs.Fill(t, dir)
	failedAt := fake.Now()
	var failures int
	for i := range 200 { // ten writes a second for 20 s: big enough values to need new pages
		if err := s.Put("states", fmt.Sprintf("t%03d", i), strings.Repeat("x", 3000)); err != nil {
			failures++
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("write %d: %v, want ENOSPC", i, err)
			}
		}
		fake.Advance(100 * time.Millisecond)
	}
	if failures < 150 {
		t.Fatalf("%d of 200 writes failed on a full disk, want nearly all", failures)
	}
	h := s.Health()
	if h.WriteErrors != uint64(failures) || !h.FailingSince.Equal(failedAt) || !errors.Is(h.LastError, syscall.ENOSPC) {
		t.Errorf("health %+v, want %d errors failing since %s with ENOSPC", h, failures, failedAt)
	}
	if n := logs.count(slog.LevelError); n != 1 {
		t.Errorf("%d ERROR lines for %d failures in 20 s, want 1:\n%s", n, failures, logs)
	}
	fake.Advance(time.Minute)
	_ = s.Put("states", "still-full", strings.Repeat("x", 3000))
	if n := logs.count(slog.LevelError); n != 2 || !strings.Contains(logs.String(), fmt.Sprintf("failed_writes=%d", failures+1)) {
		t.Errorf("a minute later: %d ERROR lines, want 2, the second counting %d failures:\n%s", n, failures+1, logs)
	}

	free()
	if err := s.Put("states", "after", 1); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
	if h := s.Health(); !h.FailingSince.IsZero() {
		t.Errorf("after a write worked FailingSince = %s, want zero", h.FailingSince)
	}
	if !strings.Contains(logs.String(), "writes work again") {
		t.Errorf("no word that writes work again:\n%s", logs)
	}
	if _, err := s.verifyNow(); err != nil {
		t.Errorf("the file after a full disk: %v", err)
	}
	var v int
	if found, err := s.Get("states", "before", &v); !found || err != nil {
		t.Errorf("a record from before the disk filled: %v, %v", found, err)
	}
}

// TestOpenOnAFullDiskWithoutAFile: where even a fresh file cannot be made (a full
// disk, no picket.db yet), Open used to fail and the daemon did not start, so nothing
// paged. Now the store opens without a file: reads see an empty store, writes fail
// (counted), and the next look after space is freed makes the file.
func TestOpenOnAFullDiskWithoutAFile(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	free := tmpfs.Fill(t, dir)
	logs := &logCounter{}
	s, err := Open(dir, Options{Logger: slog.New(logs)})
	if err != nil {
		t.Fatalf("Open on a full disk: %v; want a store without a file", err)
	}
	defer s.Close()
	var v int
	if found, err := s.Get("states", "x", &v); found || err != nil {
		t.Errorf("Get without a file = %v, %v; want an empty store", found, err)
	}
	if err := s.Put("states", "x", 1); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Put without a file = %v, want the ENOSPC that kept it from being made", err)
	}
	if h := s.Health(); h.WriteErrors == 0 || h.FailingSince.IsZero() {
		t.Errorf("health %+v, want the failure counted", h)
	}
	if logs.count(slog.LevelError) == 0 {
		t.Errorf("no ERROR line:\n%s", logs)
	}
	s.look() // still full: still no file, and no harm
	free()
	s.look()
	if n := len(s.Health().Resets); n != 1 {
		t.Fatalf("%d resets after the file could be made, want 1 (the caller writes its memory)", n)
	}
	if err := s.Put("states", "x", 1); err != nil {
		t.Errorf("Put once the file is made: %v", err)
	}
}
