// Package lograte keeps a failure that repeats many times a second from flooding the
// log: one line per interval gets through, and it says how many were held back.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one event per Every through. The zero value allows one a minute. Safe
// for concurrent use.
type Limiter struct {
	Every time.Duration // 0: a minute

	mu   sync.Mutex
	last time.Time
	held int
}

// Allow reports whether an event at now may be logged and, if so, how many events it
// held back since the last one it allowed (the count the line should carry).
func (l *Limiter) Allow(now time.Time) (ok bool, heldBack int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	every := l.Every
	if every <= 0 {
		every = time.Minute
	}
	// A clock stepped back (now before last) must not silence the log for the step.
	if !l.last.IsZero() && now.Sub(l.last) < every && !now.Before(l.last) {
		l.held++
		return false, 0
	}
	heldBack, l.held, l.last = l.held, 0, now
	return true, heldBack
}

// Reset forgets the last event, so the next one is logged at once (the trouble ended;
// a new episode deserves its first line).
func (l *Limiter) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last, l.held = time.Time{}, 0
}
