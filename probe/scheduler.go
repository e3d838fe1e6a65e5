package probe

import (
	"container/heap"
	"context"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
)

// RunFunc runs one target once; the Runner's Run in production.
type RunFunc func(ctx context.Context, t *config.Target) Result

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Run         RunFunc
	Concurrency int // runs at once across all targets
	// OnResult gets every result, from the run's goroutine.
	OnResult func(t *config.Target, r Result)
	// OnStart gets every run's lag: actual start minus planned start.
	OnStart func(t *config.Target, lag time.Duration)
	// OnSkip is told when a run is skipped because the previous one is still going.
	OnSkip func(t *config.Target)
	Logger *slog.Logger
	// JitterFraction spreads each run by up to ± this fraction of the interval (capped at
	// 1s), so targets that started together drift apart. Default 0.05.
	JitterFraction float64
	// Clock plans the runs; nil: the real clock.
	Clock clock.Clock
}

// Scheduler runs every target on its own interval. One dispatcher goroutine keeps a
// heap of planned runs; each run gets one goroutine, bounded by Concurrency. A run that
// would overlap the previous run of the same target is skipped and counted, never
// stacked. First runs are spread over the interval by a hash of the target id, so a
// start or a reload does not fire every target at once.
type Scheduler struct {
	o       SchedulerOptions
	sem     chan struct{}
	mu      sync.Mutex
	entries map[string]*entry // by target id
	queue   planQueue
	wake    chan struct{}
	wg      sync.WaitGroup

	runs      atomic.Int64
	skipped   atomic.Int64
	lastStart atomic.Int64 // unix nanos of the last run start
}

type entry struct {
	target  *config.Target
	next    time.Time
	index   int // in the heap; -1 when removed
	running atomic.Bool
}

// NewScheduler returns a scheduler with no targets.
func NewScheduler(o SchedulerOptions) *Scheduler {
	if o.Concurrency < 1 {
		o.Concurrency = config.DefaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.JitterFraction == 0 {
		o.JitterFraction = 0.05
	}
	o.Clock = clock.Or(o.Clock)
	return &Scheduler{
		o:       o,
		sem:     make(chan struct{}, o.Concurrency),
		entries: map[string]*entry{},
		wake:    make(chan struct{}, 1),
	}
}

// SetTargets replaces the target set. Targets with an unchanged fingerprint keep their
// schedule; new or changed ones start at their spread offset; removed ones stop (a run
// in flight finishes, its result is still reported).
func (s *Scheduler) SetTargets(targets []*config.Target) {
	now := s.o.Clock.Now()
	s.mu.Lock()
	keep := make(map[string]bool, len(targets))
	for _, t := range targets {
		keep[t.ID] = true
		if e, ok := s.entries[t.ID]; ok && e.target.Fingerprint == t.Fingerprint {
			e.target = t // same schedule, new pointer (new config)
			continue
		} else if ok {
			s.remove(e)
		}
		e := &entry{target: t, next: now.Add(spread(t))}
		s.entries[t.ID] = e
		heap.Push(&s.queue, e)
	}
	for id, e := range s.entries {
		if !keep[id] {
			s.remove(e)
		}
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) remove(e *entry) {
	if e.index >= 0 {
		heap.Remove(&s.queue, e.index)
	}
	delete(s.entries, e.target.ID)
}

// spread places a target's first run within its interval, the same way every time.
func spread(t *config.Target) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(t.ID))
	return time.Duration(h.Sum64() % uint64(t.Interval))
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends, then cancels runs in flight and waits for them.
func (s *Scheduler) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.wg.Wait()
	}()
	timer := s.o.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.dispatchDue(runCtx)
		if wait < 0 {
			return ctx.Err()
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		case <-timer.C():
		}
	}
}

// dispatchDue starts every due run and returns how long to sleep; -1 when ctx ended.
func (s *Scheduler) dispatchDue(ctx context.Context) time.Duration {
	for {
		s.mu.Lock()
		if s.queue.Len() == 0 {
			s.mu.Unlock()
			return time.Hour
		}
		e := s.queue[0]
		now := s.o.Clock.Now()
		if wait := e.next.Sub(now); wait > 0 {
			s.mu.Unlock()
			return wait
		}
		planned := e.next
		target := e.target // read under the lock: SetTargets replaces it on reload
		e.next = nextRun(planned, now, target.Interval, s.o.JitterFraction)
		heap.Fix(&s.queue, 0)
		s.mu.Unlock()

		if !e.running.CompareAndSwap(false, true) {
			s.skipped.Add(1)
			if s.o.OnSkip != nil {
				s.o.OnSkip(target)
			}
			continue
		}
		select {
		case s.sem <- struct{}{}: // waiting here is lag, and it is measured
		case <-ctx.Done():
			e.running.Store(false)
			return -1
		}
		s.start(ctx, e, target, planned)
	}
}

// nextRun keeps the cadence (planned + interval), with jitter; a target that fell far
// behind skips ahead instead of running back to back.
func nextRun(planned, now time.Time, interval time.Duration, jitterFraction float64) time.Time {
	next := planned.Add(interval)
	if next.Before(now) {
		next = now.Add(interval)
	}
	j := time.Duration(float64(interval) * jitterFraction)
	if j > time.Second {
		j = time.Second
	}
	if j > 0 {
		next = next.Add(time.Duration(rand.Int64N(int64(2*j))) - j)
	}
	return next
}

func (s *Scheduler) start(ctx context.Context, e *entry, t *config.Target, planned time.Time) {
	started := s.o.Clock.Now()
	s.runs.Add(1)
	s.lastStart.Store(started.UnixNano())
	if s.o.OnStart != nil {
		s.o.OnStart(t, started.Sub(planned))
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		defer e.running.Store(false)
		r := s.o.Run(ctx, t)
		if stopping(ctx) {
			return // shutting down: a cut-short run says nothing about the platform
		}
		if s.o.OnResult != nil {
			s.o.OnResult(t, r)
		}
	}()
}

// stopping reports whether the scheduler's context has ended or reached its deadline:
// a connection deadline taken from it can fire a moment before ctx.Err() is set, and
// that run must not count as a platform failure.
func stopping(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// SchedulerStats are counters for metrics and /readyz.
type SchedulerStats struct {
	Targets   int
	Runs      int64
	Skipped   int64
	LastStart time.Time
}

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() SchedulerStats {
	s.mu.Lock()
	n := len(s.entries)
	s.mu.Unlock()
	st := SchedulerStats{Targets: n, Runs: s.runs.Load(), Skipped: s.skipped.Load()}
	if ns := s.lastStart.Load(); ns > 0 {
		st.LastStart = time.Unix(0, ns)
	}
	return st
}

// planQueue is a min-heap of entries by next run.
type planQueue []*entry

func (q planQueue) Len() int           { return len(q) }
func (q planQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q planQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *planQueue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *planQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}
