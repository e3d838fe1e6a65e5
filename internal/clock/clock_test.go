package clock

import (
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
