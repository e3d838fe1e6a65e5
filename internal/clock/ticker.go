package clock

import (
	"context"
	"sync"
	"time"
)

// Ticker is time.Ticker on a Clock's timers: C delivers a tick every period, in the
// same phase; a tick the receiver has not taken when the next is due is dropped, as
// time.Ticker drops it. One goroutine re-arms the timer; Stop ends it.
type Ticker struct {
	c     chan time.Time
	reset chan time.Duration
	reArm chan struct{} // Reset returns once the new period is armed
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// NewTicker starts a ticker of period d on c (nil: the real clock). d must be more
// than 0, as for time.NewTicker.
func NewTicker(c Clock, d time.Duration) *Ticker {
	if d <= 0 {
		panic("clock: NewTicker: expected a period more than 0")
	}
	t := &Ticker{c: make(chan time.Time, 1), reset: make(chan time.Duration), reArm: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	c = Or(c)
	// Armed here, not in the goroutine: the phase starts now, and a fake clock's
	// NextTimer sees the first tick at once.
	go t.run(c, d, c.Now().Add(d), c.NewTimer(d))
	return t
}

// C delivers the ticks.
func (t *Ticker) C() <-chan time.Time { return t.c }

// Reset makes the ticker tick every d from now on (a tick already waiting on C stays).
func (t *Ticker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: Ticker.Reset: expected a period more than 0")
	}
	select {
	case t.reset <- d:
		<-t.reArm
	case <-t.done:
	}
}

// Stop ends the ticker; no new tick comes after it returns. Safe to call more than once.
func (t *Ticker) Stop() {
	t.once.Do(func() { close(t.stop) })
	<-t.done
}

func (t *Ticker) run(c Clock, d time.Duration, next time.Time, tm Timer) {
	defer close(t.done)
	defer tm.Stop()
	for {
		select {
		case <-t.stop:
			return
		case d = <-t.reset:
			tm.Stop()
			select { // a fake timer may hold a fire from before the Stop
			case <-tm.C():
			default:
			}
			next = c.Now().Add(d)
			tm.Reset(d)
			t.reArm <- struct{}{}
		case at := <-tm.C():
			select {
			case t.c <- at:
			default: // not taken yet: this tick is dropped
			}
			// Keep the phase (the next tick is one period after this one was due, not
			// after this goroutine woke), and skip the periods a jump of the clock passed.
			now := c.Now()
			if next = next.Add(d); !next.After(now) {
				next = next.Add((now.Sub(next)/d + 1) * d)
			}
			tm.Reset(next.Sub(now))
		}
	}
}

// Every calls fn every d on c until ctx ends, and also at once whenever kick receives
// (nil: never); each wait of d starts when fn returns. It is the loop of the daemon's
// periodic looks (the store's watch, the fleet's members).
func Every(ctx context.Context, c Clock, d time.Duration, kick <-chan struct{}, fn func()) {
	t := Or(c).NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-kick:
		}
		fn()
		t.Reset(d)
	}
}
