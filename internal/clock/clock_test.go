package clock

import (
	"context"
	"testing"
	"time"
)

func TestFakeTimersFireInOrderWhenPassed(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	a, b := f.NewTimer(2*time.Second), f.NewTimer(time.Second)
	if at, ok := f.NextTimer(); !ok || !at.Equal(start.Add(time.Second)) {
		t.Fatalf("next timer: got %v %v, want %v", at, ok, start.Add(time.Second))
	}
	f.Advance(1500 * time.Millisecond)
	select {
	case <-b.C():
	default:
		t.Fatal("1s timer did not fire at 1.5s")
	}
	select {
	case <-a.C():
		t.Fatal("2s timer fired at 1.5s")
	default:
	}
	if !a.Stop() {
		t.Fatal("Stop of a pending timer: want true")
	}
	f.Advance(time.Hour)
	select {
	case <-a.C():
		t.Fatal("stopped timer fired")
	default:
	}
	a.Reset(-time.Second)
	select {
	case <-a.C():
	default:
		t.Fatal("Reset with d <= 0 must fire at once")
	}
}

func TestFakeStepsBackward(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	tm := f.NewTimer(time.Minute)
	f.Advance(-10 * time.Minute) // a wall-clock step back
	if got := f.Now(); !got.Equal(start.Add(-10 * time.Minute)) {
		t.Fatalf("now after step back: got %v", got)
	}
	select {
	case <-tm.C():
		t.Fatal("timer fired on a backward step")
	default:
	}
	f.Advance(11 * time.Minute)
	select {
	case <-tm.C():
	default:
		t.Fatal("timer did not fire once its deadline passed")
	}
}

func TestOrAndFromFunc(t *testing.T) {
	if _, ok := Or(nil).(realClock); !ok {
		t.Fatal("Or(nil) is not the real clock")
	}
	fixed := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := FromFunc(func() time.Time { return fixed }).Now(); !got.Equal(fixed) {
		t.Fatalf("FromFunc Now: got %v", got)
	}
}

func TestTickerTicksOnTheFakeClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	tk := NewTicker(f, time.Minute)
	defer tk.Stop()
	tick := func(what string) time.Time {
		t.Helper()
		select {
		case at := <-tk.C():
			return at
		case <-time.After(5 * time.Second):
			t.Fatalf("no tick %s", what)
		}
		return time.Time{}
	}
	// Advance only once the ticker has re-armed (its timer is pending again), so that
	// each step is one period.
	advance := func(d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, ok := f.NextTimer(); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the ticker did not re-arm within 5s")
			}
			time.Sleep(time.Millisecond)
		}
		f.Advance(d)
	}
	advance(59 * time.Second)
	select {
	case <-tk.C():
		t.Fatal("ticked before its period")
	case <-time.After(50 * time.Millisecond):
	}
	advance(time.Second)
	if at := tick("after one period"); !at.Equal(start.Add(time.Minute)) {
		t.Fatalf("first tick at %v", at)
	}
	// A jump over many periods gives one tick, and the phase stays.
	advance(10*time.Minute + 30*time.Second)
	tick("after a jump")
	if next, _ := f.NextTimer(); !next.Equal(start.Add(12 * time.Minute)) {
		t.Fatalf("next tick due at %v, want %v", next, start.Add(12*time.Minute))
	}
	tk.Reset(time.Hour)
	if next, _ := f.NextTimer(); !next.Equal(start.Add(11*time.Minute + 30*time.Second + time.Hour)) {
		t.Fatalf("after Reset the next tick is due at %v", next)
	}
	tk.Stop()
	tk.Stop() // twice is fine
	if _, ok := f.NextTimer(); ok {
		t.Fatal("a stopped ticker left its timer pending")
	}
}

func TestTickerOnTheRealClock(t *testing.T) {
	tk := NewTicker(nil, 10*time.Millisecond)
	defer tk.Stop()
	for i := range 3 {
		select {
		case <-tk.C():
		case <-time.After(5 * time.Second):
			t.Fatalf("tick %d did not come", i)
		}
	}
}

// TestFakeStepMovesWallNotElapsed: a wall step is not elapsed time; an advance is.
func TestFakeStepMovesWallNotElapsed(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	f := NewFake(start)
	mono := Elapsed(f)
	f.Advance(time.Minute)
	f.Step(9 * time.Minute)
	f.Step(-20 * time.Minute)
	f.Advance(30 * time.Second)
	if got, want := f.Now(), start.Add(time.Minute+9*time.Minute-20*time.Minute+30*time.Second); !got.Equal(want) {
		t.Errorf("wall %s, want %s", got, want)
	}
	if got := mono(); got != 90*time.Second {
		t.Errorf("elapsed %s, want 1m30s (the steps are not elapsed time)", got)
	}
}

// TestElapsedOfTheRealClockIsMonotonic: the real clock's reading only grows.
func TestElapsedOfTheRealClockIsMonotonic(t *testing.T) {
	mono := Elapsed(Real())
	a := mono()
	b := mono()
	if a < 0 || b < a {
		t.Errorf("readings %s then %s; want non-negative and non-decreasing", a, b)
	}
}

// TestEveryRunsOnItsPeriodAndWhenKicked: in virtual time, Every calls fn once a period
// (each wait starting when fn returned), at once when kicked, and returns when ctx ends.
func TestEveryRunsOnItsPeriodAndWhenKicked(t *testing.T) {
	f := NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	calls, kick := make(chan time.Time, 10), make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, f, time.Minute, kick, func() { calls <- f.Now() })
	}()
	call := func(what string) time.Time {
		t.Helper()
		select {
		case at := <-calls:
			return at
		case <-time.After(5 * time.Second):
			t.Fatalf("no call %s", what)
		}
		return time.Time{}
	}
	waitArmed := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, ok := f.NextTimer(); ok {
				return
			}
		}
		t.Fatal("Every did not arm its timer within 5s")
	}
	waitArmed()
	f.Advance(59 * time.Second)
	select {
	case at := <-calls:
		t.Fatalf("called at %s, before its period", at)
	case <-time.After(20 * time.Millisecond):
	}
	f.Advance(time.Second)
	first := call("after a period")
	kick <- struct{}{}
	if at := call("when kicked"); !at.Equal(first) {
		t.Errorf("kicked call at %s, want at once (%s)", at, first)
	}
	waitArmed()
	f.Advance(time.Minute)
	if at := call("a period after the kicked one"); at.Sub(first) != time.Minute {
		t.Errorf("next call %s after the first, want a minute", at.Sub(first))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Every still running 5s after ctx ended")
	}
}
