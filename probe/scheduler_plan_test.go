package probe

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/testkit"
)

// planRecord is what OnStart saw, in virtual time.
type planRecord struct {
	mu     sync.Mutex
	starts map[string][]time.Time
	lags   []time.Duration
}

func (p *planRecord) onStart(fake *clock.Fake) func(*config.Target, time.Duration) {
	return func(t *config.Target, lag time.Duration) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.starts[t.ID] = append(p.starts[t.ID], fake.Now())
		p.lags = append(p.lags, lag)
	}
}

// stepTimers advances the fake clock from timer to timer until end, waiting each time
// for the dispatcher to arm its next timer (it has then started every due run).
func stepTimers(t *testing.T, fake *clock.Fake, end time.Time) {
	t.Helper()
	for i := 0; i < 100_000; i++ {
		at, ok := fake.NextTimer()
		if !ok || at.After(end) {
			return
		}
		fake.Set(at)
		deadline := time.Now().Add(5 * time.Second)
		for {
			next, ok := fake.NextTimer()
			if ok && next.After(at) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the dispatcher did not arm a timer after %v", at)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	t.Fatal("more than 100,000 timers: the dispatcher loops")
}

// TestSchedulerKeepsARegularPlan: in virtual time, every target runs exactly at the
// instants of its plan, Unix time ≡ its offset (mod interval): gaps are exactly the
// interval (no per-run jitter), the first run falls within the first interval, and the
// deviation reported is 0. With ±5 % jitter the gaps varied by up to a second.
func TestSchedulerKeepsARegularPlan(t *testing.T) {
	start := time.Date(2020, 1, 1, 0, 0, 3, 700_000_000, time.UTC)
	fake := clock.NewFake(start)
	const interval = 10 * time.Second
	rec := &planRecord{starts: map[string][]time.Time{}}
	s := NewScheduler(SchedulerOptions{Run: func(context.Context, *config.Target) Result { return Result{} },
		Concurrency: 8, OnStart: rec.onStart(fake), Clock: fake})
	targets := schedTargets(50, interval)
	s.SetTargets(targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	waitForTimer(t, fake)
	stepTimers(t, fake, start.Add(5*interval-time.Nanosecond))
	cancel()
	<-done

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, tg := range targets {
		starts := rec.starts[tg.ID]
		if len(starts) != 5 {
			t.Fatalf("%s ran %d times in 5 intervals, want 5: %v", tg.ID, len(starts), starts)
		}
		if first := starts[0].Sub(start); first < 0 || first >= interval {
			t.Errorf("%s first ran %v after the start, want within the first interval", tg.ID, first)
		}
		for i, at := range starts {
			if phase := time.Duration(at.UnixNano() % int64(interval)); phase != planOffset(tg) {
				t.Errorf("%s run %d at phase %v, want its offset %v", tg.ID, i, phase, planOffset(tg))
			}
			if i > 0 && at.Sub(starts[i-1]) != interval {
				t.Errorf("%s gap %v before run %d, want exactly %v", tg.ID, at.Sub(starts[i-1]), i, interval)
			}
		}
	}
	for _, lag := range rec.lags {
		if lag != 0 {
			t.Fatalf("a deviation of %v from the plan in virtual time, want 0", lag)
		}
	}
}

// waitForTimer waits (bounded) until the dispatcher has armed its first timer.
func waitForTimer(t *testing.T, fake *clock.Fake) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, "the dispatcher to arm a timer", func() bool {
		_, ok := fake.NextTimer()
		return ok
	})
}

// TestPlanInstants: the plan's instants and how a target that fell behind rejoins its
// plan (skipping what it missed) rather than moving its phase to when it caught up.
func TestPlanInstants(t *testing.T) {
	base := time.Unix(1_000_000_000, 0) // a multiple of 10s
	const iv = 10 * time.Second
	cases := []struct {
		name string
		got  time.Time
		want time.Time
	}{
		{"first run: later in this interval", planAfter(base.Add(2*time.Second), iv, 7*time.Second), base.Add(7 * time.Second)},
		{"first run: in the next interval", planAfter(base.Add(8*time.Second), iv, 7*time.Second), base.Add(17 * time.Second)},
		{"first run: now is on the plan", planAfter(base.Add(7*time.Second), iv, 7*time.Second), base.Add(7 * time.Second)},
		{"before 1970", planAfter(time.Unix(-25, 0), iv, 3*time.Second), time.Unix(-17, 0)},
		{"on time: planned + interval", nextRun(base, base.Add(5*time.Millisecond), iv), base.Add(iv)},
		{"late, within an interval", nextRun(base, base.Add(9*time.Second), iv), base.Add(iv)},
		{"fell 2.5 intervals behind: the plan's next instant", nextRun(base, base.Add(25*time.Second), iv), base.Add(30 * time.Second)},
	}
	for _, c := range cases {
		if !c.got.Equal(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got.Sub(base), c.want.Sub(base))
		}
	}
}
