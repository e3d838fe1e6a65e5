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
