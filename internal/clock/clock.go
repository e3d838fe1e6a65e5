// Package clock is the one source of time for every decision Picket makes (engine,
// fleet, outbox backoff, scheduler, self-check, heartbeat). Production uses Real; tests
// and the outage simulator use a Fake that moves only when told, so hours of an outage
// run in milliseconds and the same seed gives the same run.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer fires once after d on C.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer that Picket uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; false if it already fired or was stopped.
	Stop() bool
	// Reset makes a stopped or fired timer fire after d.
	Reset(d time.Duration) bool
}

// Real is the wall clock (with Go's monotonic reading: waits survive clock steps).
func Real() Clock { return realClock{} }

// Or returns c, or the real clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// FromFunc makes a clock of a now function (tests that only need Now); its timers
// are real.
func FromFunc(now func() time.Time) Clock {
	if now == nil {
		return Real()
	}
	return funcClock(now)
}

// Monotonic is a clock that also reads elapsed time that wall-clock steps do not
// move (the real clock's is Go's monotonic reading).
type Monotonic interface {
	Elapsed() time.Duration
}

// Elapsed returns a reading of c's monotonic time: its own when it has one (a Fake),
// Go's monotonic time since the call for the real clock, and for a clock of a bare
// now function its wall time since the call (no better is known). Like time.Time's
// monotonic reading, a value is meaningful only within this process: persist wall
// times, and compare readings only with readings.
func Elapsed(c Clock) func() time.Duration {
	switch c := c.(type) {
	case Monotonic:
		return c.Elapsed
	case funcClock:
		start := c()
		return func() time.Duration { return c().Sub(start) }
	}
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type funcClock func() time.Time

func (f funcClock) Now() time.Time               { return f() }
func (funcClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Fake is a clock that moves only by Advance or Set. Its timers fire, in order of
// their deadlines, as the clock passes them. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	elapsed time.Duration // monotonic: forward moves count, wall steps (Step) do not
	timers  []*fakeTimer
}

// NewFake starts a fake clock at start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now is the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d (d < 0 is a backward step) and fires the
// timers that are due.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the clock to t, forward or back (a wall-clock step), and fires the timers
// whose deadline is not after t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	if t.After(f.now) {
		f.elapsed += t.Sub(f.now)
	}
	f.set(t)
}

// Step moves the wall time by d, forward or back, without moving the monotonic
// reading (Elapsed): a wall-clock step, as NTP or an operator makes one. Timers due by
// the new wall time fire.
func (f *Fake) Step(d time.Duration) {
	f.mu.Lock()
	f.set(f.now.Add(d))
}

// Elapsed is the monotonic reading: how far the clock moved forward, not counting
// Step.
func (f *Fake) Elapsed() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.elapsed
}

// set moves the wall time and fires due timers. Called with mu held; releases it.
func (f *Fake) set(t time.Time) {
	f.now = t
	var due []*fakeTimer
	keep := f.timers[:0]
	for _, tm := range f.timers {
		if !tm.at.After(t) {
			due = append(due, tm)
		} else {
			keep = append(keep, tm)
		}
	}
	f.timers = keep
	// Sorted under the lock: a timer's deadline is written by Reset under it, and a
	// due timer may be reset (by its owner, on another goroutine) the moment it is out
	// of f.timers.
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	f.mu.Unlock()
	for _, tm := range due {
		select {
		case tm.c <- t:
		default: // a receiver that has not drained the last tick misses this one, like time.Timer
		}
	}
}

// NextTimer is the deadline of the earliest pending timer (ok false when none):
// a simulator advances straight to it.
func (f *Fake) NextTimer() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var best time.Time
	for _, tm := range f.timers {
		if best.IsZero() || tm.at.Before(best) {
			best = tm.at
		}
	}
	return best, !best.IsZero()
}

// NewTimer makes a timer that fires when the clock reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	tm := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	tm.Reset(d)
	return tm
}

type fakeTimer struct {
	f  *Fake
	c  chan time.Time
	at time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, x := range t.f.timers {
		if x == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			return true
		}
	}
	return false
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	active := t.Stop()
	t.f.mu.Lock()
	t.at = t.f.now.Add(d)
	fire := d <= 0
	if !fire {
		t.f.timers = append(t.f.timers, t)
	}
	now := t.f.now
	t.f.mu.Unlock()
	if fire {
		select {
		case t.c <- now:
		default:
		}
	}
	return active
}
