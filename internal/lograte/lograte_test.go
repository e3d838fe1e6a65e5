package lograte

import (
	"testing"
	"time"
)

func TestOneLineAMinuteWithTheCount(t *testing.T) {
	var l Limiter
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if ok, held := l.Allow(t0); !ok || held != 0 {
		t.Fatalf("first event: %v, %d; want logged with nothing held back", ok, held)
	}
	allowed := 0
	for i := 1; i <= 600; i++ { // ten a second for a minute
		if ok, _ := l.Allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			allowed++
		}
	}
	if allowed != 1 {
		t.Fatalf("a minute of ten events a second let %d lines through, want 1 (at the minute)", allowed)
	}
	if ok, held := l.Allow(t0.Add(2 * time.Minute)); !ok || held != 0 {
		t.Errorf("after a quiet minute: %v, %d", ok, held)
	}
}

func TestHeldBackCountAndReset(t *testing.T) {
	l := Limiter{Every: time.Second}
	t0 := time.Unix(1000, 0)
	l.Allow(t0)
	for i := range 5 {
		l.Allow(t0.Add(time.Duration(i+1) * 100 * time.Millisecond))
	}
	if ok, held := l.Allow(t0.Add(time.Second)); !ok || held != 5 {
		t.Errorf("Allow after a second = %v, %d; want true, 5", ok, held)
	}
	l.Allow(t0.Add(1100 * time.Millisecond))
	l.Reset()
	if ok, held := l.Allow(t0.Add(1200 * time.Millisecond)); !ok || held != 0 {
		t.Errorf("after Reset = %v, %d; want true, 0", ok, held)
	}
	if ok, _ := l.Allow(t0.Add(-time.Hour)); !ok {
		t.Error("a clock stepped back silenced the log")
	}
}
