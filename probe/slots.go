package probe

import (
	"context"
	"math"
	"sync"

	"github.com/picket-dev/picket/config"
)

// slotsFor sizes the bound on runs at once for a target set.
//
// It was a fixed pool of concurrency slots (64 by default): when every target hung, the
// hung runs held every slot for their whole timeout and the others' runs queued behind
// them (6.4 runs/s; with 1,000 targets the first page came after 192 s). Now the bound
// follows the targets: config.RunsInFlight is how many runs are under way, on average,
// when every run lasts its timeout; twice that absorbs the runs that bunch up (first
// runs are spread by a hash, slow runs bunch, a reload adds some at once). More than
// one slot per target is never needed, because a target's runs never overlap: so the
// pool also bounds memory by the target count (a goroutine of 4–8 KB and a socket each;
// 2,000 targets of timeout 10s every 30s keep about 670 in flight). The pool stays,
// rather than one goroutine per due run, to smooth a burst: after the process was
// paused (a suspended VM, CPU starvation) every target is due at once. concurrency, as
// configured, is the floor; ceiling, if above 0, a cap (a host that must cap its
// sockets, or a test that makes the scheduler fall behind).
func slotsFor(targets []*config.Target, floor, ceiling int) int {
	n := int(math.Ceil(2 * config.RunsInFlight(targets)))
	n = max(floor, min(len(targets), n))
	if ceiling > 0 {
		n = min(n, ceiling)
	}
	return n
}

// slots is a counting semaphore whose limit can change while runs hold it: a reload
// resizes it without waiting for the runs in flight. One goroutine (the dispatcher)
// acquires; the runs release.
type slots struct {
	mu          sync.Mutex
	used, limit int
	freed       chan struct{} // a slot was released or the limit rose; 1-buffered
}

func newSlots(limit int) *slots {
	return &slots{limit: limit, freed: make(chan struct{}, 1)}
}

// tryAcquire takes a slot if one is free.
func (s *slots) tryAcquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used < s.limit {
		s.used++
		return true
	}
	return false
}

// acquire waits for a slot; false when ctx ends first.
func (s *slots) acquire(ctx context.Context) bool {
	for !s.tryAcquire() {
		select {
		case <-s.freed: // a signal sent after the check above is kept in the buffer
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (s *slots) release() {
	s.mu.Lock()
	s.used--
	s.mu.Unlock()
	s.signal()
}

func (s *slots) setLimit(n int) {
	s.mu.Lock()
	s.limit = n
	s.mu.Unlock()
	s.signal()
}

// usage returns the slots in use and the limit.
func (s *slots) usage() (used, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used, s.limit
}

func (s *slots) signal() {
	select {
	case s.freed <- struct{}{}:
	default:
	}
}
