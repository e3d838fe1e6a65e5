package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/testkit"
)

// confirmRig is a real Scheduler and Confirmer on a fake clock; runs answer at once
// with the status down() gives the target, and every start is noted with its time.
type confirmRig struct {
	fake    *clock.Fake
	sched   *Scheduler
	confirm *Confirmer
	mu      sync.Mutex
	down    map[string]bool
	extra   []string // ids of the runs started by RunNow, in order
	settled [][]string
	planned map[string]int
}

func newConfirmRig(t *testing.T, targets []*config.Target, perSecond float64) (*confirmRig, func()) {
	t.Helper()
	r := &confirmRig{fake: clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)), down: map[string]bool{}, planned: map[string]int{}}
	r.sched = NewScheduler(SchedulerOptions{Concurrency: 8, Clock: r.fake,
		Run: func(_ context.Context, tg *config.Target) Result {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.down[tg.ID] {
				return Result{Target: tg.ID, Status: StatusDown}
			}
			return Result{Target: tg.ID, Status: StatusUp}
		},
		OnStart: func(tg *config.Target, _ time.Duration) { r.mu.Lock(); r.planned[tg.ID]++; r.mu.Unlock() },
	})
	r.confirm = NewConfirmer(ConfirmOptions{Clock: r.fake,
		RunNow: func(id string, done func()) bool {
			r.mu.Lock()
			r.extra = append(r.extra, id)
			r.mu.Unlock()
			return r.sched.RunNow(id, done)
		},
		OnSettled: func(ids []string) { r.mu.Lock(); r.settled = append(r.settled, ids); r.mu.Unlock() },
	})
	r.sched.SetTargets(targets)
	r.confirm.SetConfig(config.Confirm{Enabled: true, MaxPerSecond: perSecond}, targets)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.sched.Run(ctx) }()
	go func() { defer wg.Done(); r.confirm.Run(ctx) }()
	return r, func() { cancel(); wg.Wait() }
}

// gridTargets are products × regions of one journey each, every 10 s.
func gridTargets(products, regions int) []*config.Target {
	var out []*config.Target
	for p := range products {
		for r := range regions {
			out = append(out, &config.Target{ID: fmt.Sprintf("p%d/j@r%d", p, r), Product: fmt.Sprintf("p%d", p), Journey: "j",
				Region: fmt.Sprintf("r%d", r), Interval: 10 * time.Second, Timeout: time.Second, Fingerprint: "f"})
		}
	}
	return out
}

func (r *confirmRig) waitSettled(t *testing.T, n int) [][]string {
	t.Helper()
	var got [][]string
	testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("%d confirmation rounds to settle", n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		got = slices.Clone(r.settled)
		return len(got) >= n
	})
	return got
}

// TestConfirmRunsAFirstFailureAgainAtOnce: a first failure runs the target again at
// once, out of its plan (its planned runs stay where they were), and the round
// settles with it; asked again within half its interval, it is not run again.
func TestConfirmRunsAFirstFailureAgainAtOnce(t *testing.T) {
	targets := gridTargets(2, 2)
	r, stop := newConfirmRig(t, targets, 50)
	defer stop()
	waitForTimer(t, r.fake)
	r.confirm.FirstFailure(targets[0])
	settled := r.waitSettled(t, 1)
	if want := [][]string{{targets[0].ID}}; !slices.EqualFunc(settled, want, slices.Equal[[]string]) {
		t.Errorf("settled %v, want %v", settled, want)
	}
	r.confirm.FirstFailure(targets[0]) // within half its interval: not again
	r.fake.Advance(time.Second)
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Equal(r.extra, []string{targets[0].ID}) {
		t.Errorf("extra runs %v, want one of %s", r.extra, targets[0].ID)
	}
	if n := r.planned[targets[0].ID]; n > 1 {
		t.Errorf("%d planned runs of %s in the first second, want its plan's (at most 1)", n, targets[0].ID)
	}
}

// TestConfirmFansOutFromAFiringTarget: a target that fires has its region's targets
// (every product) and its journey in the other regions run at once, each once, capped
// at config.ConfirmSiblings a side and spread over the group; a failing one among them
// is confirmed at once too, and the round settles once all have reported.
func TestConfirmFansOutFromAFiringTarget(t *testing.T) {
	targets := gridTargets(40, 40) // 40 products × 40 regions: both sides over the cap
	r, stop := newConfirmRig(t, targets, 10_000)
	defer stop()
	waitForTimer(t, r.fake)
	first := targets[0] // p0/j@r0
	r.mu.Lock()
	for _, tg := range targets {
		r.down[tg.ID] = tg.Region == "r0" // region r0 is down
	}
	r.mu.Unlock()
	r.confirm.Firing(first)
	settled := r.waitSettled(t, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	var region, journey int
	products := map[string]bool{}
	for _, id := range r.extra {
		switch {
		case strings.HasSuffix(id, "@r0"):
			region++
			products[strings.Split(id, "/")[0]] = true
		case strings.HasPrefix(id, "p0/"):
			journey++
		}
	}
	if region != config.ConfirmSiblings || journey != config.ConfirmSiblings {
		t.Errorf("ran %d of region r0 and %d of journey p0/j elsewhere, want %d each", region, journey, config.ConfirmSiblings)
	}
	if len(products) < config.ConfirmSiblings {
		t.Errorf("region r0's runs covered %d products, want them spread over %d", len(products), config.ConfirmSiblings)
	}
	if len(settled) != 1 || len(settled[0]) != 2*config.ConfirmSiblings {
		t.Errorf("settled %d round(s), the first of %d targets; want one of %d", len(settled), len(settled[0]), 2*config.ConfirmSiblings)
	}
	if slices.Contains(r.extra, first.ID) {
		t.Errorf("the firing target itself ran again: %v", r.extra)
	}
}

// TestConfirmKeepsItsRate: 40 asks at 10 a second start one second's worth at once,
// then 10 a second, by the fake clock.
func TestConfirmKeepsItsRate(t *testing.T) {
	targets := gridTargets(1, 41)
	r, stop := newConfirmRig(t, targets, 10)
	defer stop()
	waitForTimer(t, r.fake)
	r.confirm.Firing(targets[0]) // 32 siblings in its journey (the cap) and none in its region
	started := func() int {
		time.Sleep(30 * time.Millisecond) // (the confirmer's goroutine starts what is due)
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.extra)
	}
	if n := started(); n != 10 {
		t.Fatalf("%d started at once, want a burst of 10", n)
	}
	for want := 15; want <= 30; want += 5 {
		r.fake.Advance(500 * time.Millisecond)
		if n := started(); n != want {
			t.Fatalf("%d started by +%v, want %d (10 a second)", n, time.Duration(want-10)*100*time.Millisecond, want)
		}
	}
}

// TestConfirmOff: with confirm.enabled false nothing runs out of plan.
func TestConfirmOff(t *testing.T) {
	targets := gridTargets(2, 2)
	r, stop := newConfirmRig(t, targets, 50)
	defer stop()
	r.confirm.SetConfig(config.Confirm{Enabled: false, MaxPerSecond: 50}, targets)
	r.confirm.FirstFailure(targets[0])
	r.confirm.Firing(targets[1])
	time.Sleep(30 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.extra) != 0 || len(r.settled) != 0 {
		t.Errorf("with confirm off: extra runs %v, rounds %v", r.extra, r.settled)
	}
}

// TestRunNowLeavesThePlan: an extra run neither moves the plan nor counts as a
// deviation, and a planned run that comes due while it goes is left out without being
// counted as skipped.
func TestRunNowLeavesThePlan(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	release := make(chan struct{})
	var mu sync.Mutex
	var starts []time.Time
	s := NewScheduler(SchedulerOptions{Concurrency: 2, Clock: fake,
		Run: func(ctx context.Context, tg *config.Target) Result {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return Result{Target: tg.ID, Status: StatusUp}
		},
		OnStart: func(*config.Target, time.Duration) { mu.Lock(); starts = append(starts, fake.Now()); mu.Unlock() },
	})
	tg := schedTargets(1, 10*time.Second)[0]
	s.SetTargets([]*config.Target{tg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	waitForTimer(t, fake)
	finished := make(chan struct{})
	if !s.RunNow(tg.ID, func() { close(finished) }) {
		t.Fatal("RunNow refused an idle target")
	}
	if s.RunNow(tg.ID, nil) {
		t.Error("RunNow started a second run while one goes")
	}
	planned := firstRun(start, tg)
	fake.Set(planned) // the planned run comes due while the extra one goes
	time.Sleep(20 * time.Millisecond)
	close(release)
	<-finished
	fake.Set(planned.Add(tg.Interval))
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if st := s.Stats(); st.Skipped != 0 {
		t.Errorf("%d runs counted as skipped, want 0: the extra run stood for the planned one", st.Skipped)
	}
	if len(starts) != 1 || !starts[0].Equal(planned.Add(tg.Interval)) {
		t.Errorf("planned starts %v, want one, at the plan's next instant %v", starts, planned.Add(tg.Interval))
	}
}
