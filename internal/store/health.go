package store

import (
	"sync"
	"time"
)

// Health is how the store's writes and its file have fared since Open: for metrics,
// and for the daemon's notice when the state cannot be written.
type Health struct {
	WriteErrors  uint64    // writing transactions that failed on the file (not on a caller's error)
	FailingSince time.Time // the first failure since the last write that worked; zero while writes work
	LastError    error     // the latest failure; nil if none
	// Resets are the fresh files started in place of a lost one, oldest first: the
	// caller writes again what it holds in memory each time one is added.
	Resets []Reset
}

// Reset says why a file was given up and what became of it.
type Reset struct {
	At     time.Time
	Reason string // e.g. "deleted", "replaced by another file", "damaged database file: ..."
	// MovedTo is where the old file was moved (picket.db.damaged-<UTC time>, or
	// .replaced- for a file someone put in its place); empty when it was gone.
	MovedTo string
	// Copied: the old file was still readable (deleted or replaced under the daemon, so
	// its open descriptor still held it) and its contents were copied into the fresh
	// one; only writes made during the copy are missing.
	Copied bool
}

type healthState struct {
	mu           sync.Mutex
	errors       uint64
	failingSince time.Time
	failed       uint64 // failures in the current episode
	lastErr      error
	resets       []Reset
}

// Health reports how writes and the file have fared.
func (s *Store) Health() Health {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return Health{WriteErrors: s.health.errors, FailingSince: s.health.failingSince, LastError: s.health.lastErr,
		Resets: append([]Reset(nil), s.health.resets...)}
}

// noteWrite counts a write's outcome and logs failures: the first at once, then at
// most one line a minute with the count, since on a full disk every probe result and
// every tick fails to write (measured: ~11 ERROR lines a second before).
func (s *Store) noteWrite(err error) {
	now := s.clock.Now()
	h := &s.health
	h.mu.Lock()
	if err == nil {
		if h.failingSince.IsZero() {
			h.mu.Unlock()
			return
		}
		since, failed := h.failingSince, h.failed
		h.failingSince, h.failed = time.Time{}, 0
		h.mu.Unlock()
		s.errLog.Reset()
		s.log.Info("store: writes work again", "path", s.path, "failed_writes", failed, "failed_for", now.Sub(since).Round(time.Second))
		return
	}
	h.errors++
	h.failed++
	h.lastErr = err
	if h.failingSince.IsZero() {
		h.failingSince = now
	}
	since, failed := h.failingSince, h.failed
	h.mu.Unlock()
	if ok, _ := s.errLog.Allow(now); ok {
		s.log.Error("store: cannot write the state; alerting and paging go on from memory (logged at most once a minute)",
			"path", s.path, "failed_writes", failed, "failing_for", now.Sub(since).Round(time.Second), "err", err)
	}
}

// noteReset records a fresh file started in place of a lost one, and says so.
func (s *Store) noteReset(r Reset) {
	s.health.mu.Lock()
	s.health.resets = append(s.health.resets, r)
	s.health.mu.Unlock()
	what := "started a fresh state file; what only the lost file held (history, closed incidents, and anything not also in memory) is gone"
	if r.Copied {
		what = "started a fresh state file with a copy of the old one's contents"
	}
	s.log.Error("store: the state file was lost: "+what, "path", s.path, "reason", r.Reason, "moved_to", r.MovedTo)
}

// wake asks Watch to look at the file now.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
