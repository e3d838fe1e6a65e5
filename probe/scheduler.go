package probe

import (
	"container/heap"
	"context"
	"hash/fnv"
	"log/slog"
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
	Run RunFunc
	// Concurrency is the least bound on runs at once across all targets; the bound grows
	// with the targets, so that hung targets do not make the others wait (slotsFor).
	Concurrency int
	// MaxConcurrency, if above 0, caps that bound.
	MaxConcurrency int
	// OnResult gets every result, from the run's goroutine.
	OnResult func(t *config.Target, r Result)
	// OnStart gets every run's deviation from the plan: actual start minus planned start.
	OnStart func(t *config.Target, lag time.Duration)
	// OnSkip is told when a run is skipped because the previous one is still going.
	OnSkip func(t *config.Target)
	Logger *slog.Logger
	// Clock plans the runs; nil: the real clock.
	Clock clock.Clock
}

// Scheduler runs every target on its own interval, on a regular plan: a target runs at
// every instant whose Unix time modulo its interval is its offset, a hash of its id
// (planOffset). The offsets spread the targets over the interval, so a start or a
// reload does not fire every target at once, and the plan is the same every time (a
// restart keeps each target's phase). There is no per-run jitter: a target's gaps are
// its interval, and how far a start strays from its plan is what OnStart reports.
//
// One dispatcher goroutine keeps a heap of planned runs; each run gets one goroutine,
// bounded by slots sized from the targets (slotsFor). A run that starts more than its
// interval after its plan is late, and counted; a run waiting for a slot is seen while
// it waits (Stats). A run that would overlap the previous run of the same target is
// skipped and counted, never stacked.
type Scheduler struct {
	o       SchedulerOptions
	slots   *slots
	mu      sync.Mutex
	entries map[string]*entry // by target id
	queue   planQueue
	held    *heldRun // the run the dispatcher holds while it waits for a slot; nil: none
	wake    chan struct{}
	wg      sync.WaitGroup
	runCtx  atomic.Pointer[context.Context] // Run's, for RunNow; nil while not running

	runs        atomic.Int64
	skipped     atomic.Int64
	lastStart   atomic.Int64 // unix nanos of the last run start
	late        atomic.Int64
	lastLate    atomic.Int64 // unix nanos of the last late start
	lastLateLag atomic.Int64
}

// heldRun is a due run taken off the heap and waiting for a slot.
type heldRun struct {
	planned  time.Time
	interval time.Duration
}

type entry struct {
	target  *config.Target
	next    time.Time
	index   int // in the heap; -1 when removed
	running atomic.Bool
	extra   atomic.Bool // the run going is an extra one (RunNow), not of the plan
}

// NewScheduler returns a scheduler with no targets.
func NewScheduler(o SchedulerOptions) *Scheduler {
	if o.Concurrency < 1 {
		o.Concurrency = config.DefaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.Or(o.Clock)
	return &Scheduler{
		o:       o,
		slots:   newSlots(slotsFor(nil, o.Concurrency, o.MaxConcurrency)),
		entries: map[string]*entry{},
		wake:    make(chan struct{}, 1),
	}
}

// SetTargets replaces the target set. Targets with an unchanged fingerprint keep their
// schedule; new or changed ones start at the next instant of their plan; removed ones
// stop (a run in flight finishes, its result is still reported).
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
		e := &entry{target: t, next: firstRun(now, t)}
		s.entries[t.ID] = e
		heap.Push(&s.queue, e)
	}
	for id, e := range s.entries {
		if !keep[id] {
			s.remove(e)
		}
	}
	s.mu.Unlock()
	s.slots.setLimit(slotsFor(targets, s.o.Concurrency, s.o.MaxConcurrency))
	s.poke()
}

func (s *Scheduler) remove(e *entry) {
	if e.index >= 0 {
		heap.Remove(&s.queue, e.index)
	}
	delete(s.entries, e.target.ID)
}

// planOffset is where in its interval a target runs: a hash of its id, so the targets
// spread evenly and each lands on the same place every time.
func planOffset(t *config.Target) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(t.ID))
	return time.Duration(h.Sum64() % uint64(t.Interval))
}

// firstRun is the first instant of t's plan at or after now: Unix time ≡ offset
// (mod interval).
func firstRun(now time.Time, t *config.Target) time.Time {
	return planAfter(now, t.Interval, planOffset(t))
}

// planAfter is the first instant at or after now whose Unix time modulo interval is
// offset.
func planAfter(now time.Time, interval, offset time.Duration) time.Time {
	phase := time.Duration(now.UnixNano() % int64(interval))
	if phase < 0 {
		phase += interval // before 1970
	}
	wait := offset - phase
	if wait < 0 {
		wait += interval
	}
	return now.Add(wait)
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
	s.runCtx.Store(&runCtx)
	defer func() {
		s.runCtx.Store(nil)
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
		e.next = nextRun(planned, now, target.Interval)
		heap.Fix(&s.queue, 0)
		s.mu.Unlock()

		if !e.running.CompareAndSwap(false, true) {
			if e.extra.Load() {
				continue // an extra run (RunNow) is going: it stands for this one
			}
			s.skipped.Add(1)
			if s.o.OnSkip != nil {
				s.o.OnSkip(target)
			}
			continue
		}
		if !s.acquire(ctx, planned, target.Interval) {
			e.running.Store(false)
			return -1
		}
		s.start(ctx, e, target, planned)
	}
}

// nextRun is the run of the plan after planned: planned + interval. A target that fell
// more than an interval behind skips the runs it missed and goes on with the first
// instant of its plan after now, rather than running back to back or leaving its plan.
func nextRun(planned, now time.Time, interval time.Duration) time.Time {
	next := planned.Add(interval)
	if next.Before(now) {
		missed := now.Sub(next)/interval + 1
		next = next.Add(missed * interval)
	}
	return next
}

// acquire takes a slot for a run planned at planned; false when ctx ended first. While
// it waits, the run is held where Stats sees it: waiting is lag before it is measured.
func (s *Scheduler) acquire(ctx context.Context, planned time.Time, interval time.Duration) bool {
	if s.slots.tryAcquire() {
		return true
	}
	s.mu.Lock()
	s.held = &heldRun{planned: planned, interval: interval}
	s.mu.Unlock()
	ok := s.slots.acquire(ctx)
	s.mu.Lock()
	s.held = nil
	s.mu.Unlock()
	return ok
}

// late says whether a run that started lag after its plan is late: its target's
// verdict is then at least a whole run behind.
func late(lag, interval time.Duration) bool { return lag > interval }

func (s *Scheduler) start(ctx context.Context, e *entry, t *config.Target, planned time.Time) {
	started := s.o.Clock.Now()
	lag := started.Sub(planned)
	s.runs.Add(1)
	s.lastStart.Store(started.UnixNano())
	if late(lag, t.Interval) {
		s.late.Add(1)
		s.lastLateLag.Store(int64(lag))
		s.lastLate.Store(started.UnixNano())
	}
	if s.o.OnStart != nil {
		s.o.OnStart(t, lag)
	}
	s.launch(ctx, e, t, nil)
}

// launch runs t once in its own goroutine, holding a slot taken for it; done, if set,
// is called after OnResult (or when the run was cut short).
func (s *Scheduler) launch(ctx context.Context, e *entry, t *config.Target, done func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if done != nil {
			defer done()
		}
		// The slot is held until OnResult returns: a verdict that waits for its consumer
		// (the engine) is late too, and is seen as runs waiting for a slot.
		defer s.slots.release()
		defer func() {
			e.extra.Store(false)
			e.running.Store(false)
		}()
		r := s.o.Run(ctx, t)
		if stopping(ctx) {
			return // shutting down: a cut-short run says nothing about the platform
		}
		if s.o.OnResult != nil {
			s.o.OnResult(t, r)
		}
	}()
}

// RunNow runs target id once at once, out of its plan (a confirmation run: see
// Confirmer), and calls done after its result was handed to OnResult. It does not move
// the plan, and its start is not a deviation from it; a planned run that comes due
// meanwhile is left out, not counted as skipped. False (done not called) when the
// target is unknown, a run of it is going (its result is as fresh), or the scheduler
// is not running.
func (s *Scheduler) RunNow(id string, done func()) bool {
	ctxp := s.runCtx.Load()
	if ctxp == nil || (*ctxp).Err() != nil {
		return false
	}
	ctx := *ctxp
	s.mu.Lock()
	e := s.entries[id]
	s.mu.Unlock()
	if e == nil || !e.running.CompareAndSwap(false, true) {
		return false
	}
	e.extra.Store(true)
	if !s.slots.acquire(ctx) {
		e.extra.Store(false)
		e.running.Store(false)
		return false
	}
	s.mu.Lock()
	t := e.target // read under the lock: SetTargets replaces it on reload
	s.mu.Unlock()
	s.runs.Add(1)
	s.lastStart.Store(s.o.Clock.Now().UnixNano())
	s.launch(ctx, e, t, done)
	return true
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
	// Slots is the bound on runs at once (sized from the targets), InFlight the runs
	// holding a slot.
	Slots, InFlight int
	// Late counts the runs that started more than their interval after their plan;
	// LastLate is when the last of them started, LastLateLag how late it was.
	Late        int64
	LastLate    time.Time
	LastLateLag time.Duration
	// Waiting are the runs planned by now that have not started (waiting for a slot,
	// or for the dispatcher); Overdue those of them already waiting longer than their
	// interval: late before they start. LongestWait is the longest wait of them all.
	Waiting, Overdue int
	LongestWait      time.Duration
}

// Stats returns the scheduler's counters and what waits now.
func (s *Scheduler) Stats() SchedulerStats {
	now := s.o.Clock.Now()
	s.mu.Lock()
	st := SchedulerStats{Targets: len(s.entries)}
	s.countWaiting(now, &st)
	s.mu.Unlock()
	st.Runs, st.Skipped = s.runs.Load(), s.skipped.Load()
	st.InFlight, st.Slots = s.slots.usage()
	if ns := s.lastStart.Load(); ns > 0 {
		st.LastStart = time.Unix(0, ns)
	}
	st.Late = s.late.Load()
	if ns := s.lastLate.Load(); ns > 0 {
		st.LastLate, st.LastLateLag = time.Unix(0, ns), time.Duration(s.lastLateLag.Load())
	}
	return st
}

// countWaiting (under s.mu) adds the held run and the due part of the heap to st. It
// visits only due entries (a heap's children are never due before their parent), and
// leaves out those whose previous run still goes: they will be skipped, not started.
func (s *Scheduler) countWaiting(now time.Time, st *SchedulerStats) {
	add := func(planned time.Time, interval time.Duration) {
		wait := now.Sub(planned)
		st.Waiting++
		if late(wait, interval) {
			st.Overdue++
		}
		st.LongestWait = max(st.LongestWait, wait)
	}
	if h := s.held; h != nil {
		add(h.planned, h.interval)
	}
	var walk func(i int)
	walk = func(i int) {
		if i >= len(s.queue) || s.queue[i].next.After(now) {
			return
		}
		if e := s.queue[i]; !e.running.Load() {
			add(e.next, e.target.Interval)
		}
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
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
