package probe

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
)

func schedTargets(n int, interval time.Duration) []*config.Target {
	out := make([]*config.Target, n)
	for i := range out {
		out[i] = &config.Target{ID: fmt.Sprintf("p/j@r%d", i), Interval: interval, Timeout: interval, Fingerprint: "f"}
	}
	return out
}

type runLog struct {
	mu     sync.Mutex
	starts map[string][]time.Time
}

func (l *runLog) run(delay time.Duration) RunFunc {
	return func(ctx context.Context, t *config.Target) Result {
		l.mu.Lock()
		l.starts[t.ID] = append(l.starts[t.ID], time.Now())
		l.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		return Result{Target: t.ID, Status: StatusUp}
	}
}

func (l *runLog) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.starts[id])
}

func TestSchedulerRunsEachTargetOnItsInterval(t *testing.T) {
	log := &runLog{starts: map[string][]time.Time{}}
	var results sync.Map
	s := NewScheduler(SchedulerOptions{Run: log.run(0), Concurrency: 4, OnResult: func(tg *config.Target, r Result) { results.Store(tg.ID, r) }})
	targets := schedTargets(5, 100*time.Millisecond)
	s.SetTargets(targets)
	ctx, cancel := context.WithTimeout(context.Background(), 650*time.Millisecond)
	defer cancel()
	_ = s.Run(ctx)
	for _, tg := range targets {
		n := log.count(tg.ID)
		if n < 5 || n > 8 {
			t.Errorf("%s ran %d times in 650ms at 100ms interval", tg.ID, n)
		}
		if _, ok := results.Load(tg.ID); !ok {
			t.Errorf("%s: no result reported", tg.ID)
		}
	}
	if st := s.Stats(); st.Runs < 25 || st.Skipped != 0 || st.Targets != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestSchedulerSpreadsFirstRuns(t *testing.T) {
	log := &runLog{starts: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Run: log.run(0), Concurrency: 64})
	targets := schedTargets(40, time.Second)
	begin := time.Now()
	s.SetTargets(targets)
	ctx, cancel := context.WithTimeout(context.Background(), 1100*time.Millisecond)
	defer cancel()
	_ = s.Run(ctx)
	early := 0
	for _, tg := range targets {
		if log.count(tg.ID) == 0 {
			t.Fatalf("%s never ran within one interval", tg.ID)
		}
		log.mu.Lock()
		if log.starts[tg.ID][0].Sub(begin) < 250*time.Millisecond {
			early++
		}
		log.mu.Unlock()
	}
	// Spread evenly, about a quarter start in the first quarter; all at once would be 40.
	if early > 20 {
		t.Errorf("%d of 40 targets started in the first 250ms: not spread", early)
	}
}

func TestSchedulerSkipsOverlappingRuns(t *testing.T) {
	log := &runLog{starts: map[string][]time.Time{}}
	var skips sync.Map
	s := NewScheduler(SchedulerOptions{Run: log.run(350 * time.Millisecond), Concurrency: 4,
		OnSkip: func(tg *config.Target) { skips.Store(tg.ID, true) }})
	tg := schedTargets(1, 100*time.Millisecond)
	s.SetTargets(tg)
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	_ = s.Run(ctx)
	if n := log.count(tg[0].ID); n < 1 || n > 3 {
		t.Errorf("ran %d times; a 350ms run every 100ms must not stack", n)
	}
	if s.Stats().Skipped == 0 {
		t.Error("skips not counted")
	}
	if _, ok := skips.Load(tg[0].ID); !ok {
		t.Error("OnSkip not called")
	}
}

func TestSchedulerSetTargetsKeepsUnchangedAndStopsRemoved(t *testing.T) {
	log := &runLog{starts: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Run: log.run(0), Concurrency: 4})
	targets := schedTargets(3, 100*time.Millisecond)
	s.SetTargets(targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	time.Sleep(300 * time.Millisecond)
	s.SetTargets(targets[:1])
	removedBefore := log.count(targets[2].ID)
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if got := log.count(targets[2].ID); got > removedBefore+1 {
		t.Errorf("removed target kept running: %d -> %d", removedBefore, got)
	}
	if s.Stats().Targets != 1 {
		t.Errorf("targets %d", s.Stats().Targets)
	}
	if log.count(targets[0].ID) < 4 {
		t.Errorf("kept target ran %d times", log.count(targets[0].ID))
	}
}

func TestSchedulerShutdownCancelsRunsInFlight(t *testing.T) {
	log := &runLog{starts: map[string][]time.Time{}}
	reported := 0
	var mu sync.Mutex
	s := NewScheduler(SchedulerOptions{Run: log.run(time.Hour), Concurrency: 4,
		OnResult: func(*config.Target, Result) { mu.Lock(); reported++; mu.Unlock() }})
	s.SetTargets(schedTargets(3, 50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = s.Run(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if reported != 0 {
		t.Errorf("%d cancelled runs were reported as results", reported)
	}
}

// TestSchedulerSetTargetsWhileDispatching is the reload path: unchanged targets get new
// pointers while runs are dispatched (run with -race).
func TestSchedulerSetTargetsWhileDispatching(t *testing.T) {
	log := &runLog{starts: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Run: log.run(0), Concurrency: 8, OnSkip: func(*config.Target) {}})
	targets := schedTargets(50, 5*time.Millisecond)
	s.SetTargets(targets)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	for i := 0; i < 200 && ctx.Err() == nil; i++ {
		fresh := make([]*config.Target, len(targets))
		for j, tg := range targets {
			c := *tg
			fresh[j] = &c
		}
		s.SetTargets(fresh)
		time.Sleep(time.Millisecond)
	}
	<-done
	if s.Stats().Runs == 0 {
		t.Error("no runs while reloading")
	}
}

// TestSchedulerSlotsFollowTheTargets: the bound on runs at once is twice the runs in
// flight when every run lasts its timeout, at most one per target, at least the
// configured concurrency, and capped by MaxConcurrency; a reload resizes it.
func TestSchedulerSlotsFollowTheTargets(t *testing.T) {
	hang := func(n int, interval, timeout time.Duration) []*config.Target {
		out := schedTargets(n, interval)
		for _, tg := range out {
			tg.Timeout = timeout
		}
		return out
	}
	cases := []struct {
		name           string
		targets        []*config.Target
		floor, ceiling int
		want           int
	}{
		{"no targets: the floor", nil, 64, 0, 64},
		{"few targets: the floor", hang(10, 3*time.Second, 2*time.Second), 64, 0, 64},
		{"1,000 of 10s every 30s: twice 333.3", hang(1000, 30*time.Second, 10*time.Second), 64, 0, 667},
		{"timeout as long as the interval: one per target", hang(300, 3*time.Second, 3*time.Second), 64, 0, 300},
		{"a cap", hang(1000, 30*time.Second, 10*time.Second), 64, 100, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := slotsFor(c.targets, c.floor, c.ceiling); got != c.want {
				t.Errorf("slotsFor = %d, want %d", got, c.want)
			}
		})
	}
	s := NewScheduler(SchedulerOptions{Run: (&runLog{starts: map[string][]time.Time{}}).run(0), Concurrency: 4})
	s.SetTargets(hang(100, time.Second, time.Second))
	if st := s.Stats(); st.Slots != 100 {
		t.Errorf("slots after SetTargets: %d, want 100", st.Slots)
	}
	s.SetTargets(hang(2, time.Second, time.Second))
	if st := s.Stats(); st.Slots != 4 {
		t.Errorf("slots after a reload to 2 targets: %d, want the floor 4", st.Slots)
	}
}

// TestSchedulerCountsLateAndWaitingRuns: held to one slot, runs of 400ms every 200ms
// for four targets fall behind; the runs waiting for the slot are seen while they wait,
// and those that start more than an interval after their plan are counted late.
func TestSchedulerCountsLateAndWaitingRuns(t *testing.T) {
	log := &runLog{starts: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Run: log.run(400 * time.Millisecond), Concurrency: 1, MaxConcurrency: 1})
	s.SetTargets(schedTargets(4, 200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	time.Sleep(1200 * time.Millisecond)
	mid := s.Stats()
	<-done
	end := s.Stats()
	if mid.Slots != 1 || mid.InFlight != 1 {
		t.Errorf("slots %d in flight %d, want 1 and 1", mid.Slots, mid.InFlight)
	}
	if mid.Waiting < 1 || mid.Overdue < 1 || mid.LongestWait <= 200*time.Millisecond {
		t.Errorf("while behind: waiting %d, overdue %d, longest wait %v; want runs seen waiting past their interval", mid.Waiting, mid.Overdue, mid.LongestWait)
	}
	if end.Late < 1 || end.LastLateLag <= 200*time.Millisecond || end.LastLate.IsZero() {
		t.Errorf("late %d, last lag %v at %v; want late runs counted", end.Late, end.LastLateLag, end.LastLate)
	}
}
