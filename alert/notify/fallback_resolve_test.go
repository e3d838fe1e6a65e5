package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/store"
)

// stepper drives a harness's outbox with Step on a fake clock: each turn delivers
// what is due, then the clock jumps to the next due time.
type stepper struct {
	*harness
	clock *clock.Fake
}

func newStepper(t *testing.T, s *store.Store, notifiers ...Notifier) *stepper {
	t.Helper()
	fake := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	h := newHarness(t, s, func(o *OutboxOptions) {
		o.Clock = fake
		o.Jitter = func() float64 { return 0.5 }
		o.MinBackoff, o.MaxBackoff = time.Second, 10*time.Second
	}, notifiers...)
	return &stepper{harness: h, clock: fake}
}

// drive steps for at most d of fake time.
func (s *stepper) drive(d time.Duration) {
	s.t.Helper()
	end := s.clock.Now().Add(d)
	for {
		next := s.outbox.Step(s.t.Context())
		if next.IsZero() || next.After(end) {
			return
		}
		s.clock.Set(next)
	}
}

// refuse answers a permanent 400 to one action, and accepts the other.
func refuse(action string) func(context.Context, Notification, int) error {
	return func(_ context.Context, n Notification, _ int) error {
		if n.Action == action {
			return Permanent(errors.New("expected 202, got 400"))
		}
		return nil
	}
}

func fallbackDelivery(action, dedup string) Delivery {
	return Delivery{Notification: notification(action, dedup), Notify: []string{"pd"},
		Fallback: []string{"hook"}, FallbackAfter: time.Minute}
}

// openFallbacks lists the fallback_open bucket's keys as the store has them.
func openFallbacks(t *testing.T, s OutboxStore) []string {
	t.Helper()
	var keys []string
	if err := s.ForEach(FallbackOpenBucket, func(key string, _ []byte) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		t.Fatalf("ForEach %s: %v", FallbackOpenBucket, err)
	}
	return keys
}

// TestFallbackIsToldTheResolve: a notifier handed a trigger as a fallback is handed
// the key's next resolve too, although the primaries accept that resolve; else the
// fallback's incident stays open for ever.
func TestFallbackIsToldTheResolve(t *testing.T) {
	t.Run("the primary refused the trigger for good", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(time.Second)
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(time.Second)
		if pd.acceptedList() != "resolve:k" || hook.acceptedList() != "trigger:k resolve:k" {
			t.Errorf("pd accepted %q, hook %q; want the resolve at both, hook's after its trigger",
				pd.acceptedList(), hook.acceptedList())
		}
		var fallbackResolves int
		for _, r := range h.results.all() {
			if r.Notifier == "hook" && r.Action == ActionResolve && r.OK && r.Fallback {
				fallbackResolves++
			}
		}
		if fallbackResolves != 1 {
			t.Errorf("results: %d fallback resolves accepted by hook, want 1: %+v", fallbackResolves, h.results.all())
		}
	})
	t.Run("the primary kept failing for fallback_after", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(2 * time.Minute)
		if hook.acceptedList() != "trigger:k" {
			t.Fatalf("hook accepted %q after 2m of pd failing, want the trigger", hook.acceptedList())
		}
		pd.mu.Lock()
		pd.respond = nil // pd recovers: its trigger goes through, then the resolve
		pd.mu.Unlock()
		h.drive(time.Minute)
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(time.Minute)
		if pd.acceptedList() != "trigger:k resolve:k" || hook.acceptedList() != "trigger:k resolve:k" {
			t.Errorf("pd accepted %q, hook %q; want trigger then resolve at both", pd.acceptedList(), hook.acceptedList())
		}
	})
	t.Run("across a restart", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		hook := &fakeNotifier{name: "hook"}
		first := newStepper(t, s, &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}, hook)
		first.enqueue(fallbackDelivery(ActionTrigger, "k"))
		first.drive(time.Second)
		if hook.acceptedList() != "trigger:k" || first.outbox.Pending() != 0 {
			t.Fatalf("before the restart hook accepted %q, %d pending", hook.acceptedList(), first.outbox.Pending())
		}

		pd2, hook2 := &fakeNotifier{name: "pd"}, &fakeNotifier{name: "hook"}
		second := newStepper(t, s, pd2, hook2)
		second.enqueue(fallbackDelivery(ActionResolve, "k"))
		second.drive(time.Second)
		if pd2.acceptedList() != "resolve:k" || hook2.acceptedList() != "resolve:k" {
			t.Errorf("after the restart pd accepted %q, hook %q; want the resolve at both", pd2.acceptedList(), hook2.acceptedList())
		}
	})
	t.Run("a crash before the record was written: the queued fallback trigger marks it at the start", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		first := newStepper(t, s, pd, &fakeNotifier{name: "hook", respond: alwaysFail(errDown)})
		first.enqueue(fallbackDelivery(ActionTrigger, "k"))
		first.drive(0)
		keys := openFallbacks(t, s)
		if len(keys) != 1 || first.outbox.Pending() != 1 {
			t.Fatalf("before the crash: open %q, %d pending; want hook's record and its trigger", keys, first.outbox.Pending())
		}
		if err := s.Delete(FallbackOpenBucket, keys[0]); err != nil { // as if killed before the write
			t.Fatal(err)
		}

		hook := &fakeNotifier{name: "hook"}
		second := newStepper(t, s, pd, hook)
		second.enqueue(fallbackDelivery(ActionResolve, "k"))
		second.drive(time.Second)
		// The resolve found the record markQueuedOpen wrote again; behind it, the
		// queued trigger is moot (the incident is over) and may have arrived before
		// the crash: hook gets the resolve, not the trigger.
		if got := hook.acceptedList(); got != "resolve:k" {
			t.Errorf("after the restart hook accepted %q, want the resolve only", got)
		}
		if keys := openFallbacks(t, s); len(keys) != 0 {
			t.Errorf("%s holds %q after the resolve, want nothing", FallbackOpenBucket, keys)
		}
	})
	t.Run("the resolve's own fallback does not tell it twice", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(time.Second)
		pd.mu.Lock()
		pd.respond = alwaysFail(errDown) // the resolve keeps failing at pd: it falls back too
		pd.mu.Unlock()
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(5 * time.Minute)
		if got := hook.acceptedList(); got != "trigger:k resolve:k" {
			t.Errorf("hook accepted %q, want the trigger, then the resolve once", got)
		}
	})
	t.Run("a resolve queued behind the fallback trigger: the trigger is moot", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		hook := &fakeNotifier{name: "hook", respond: func(_ context.Context, _ Notification, call int) error {
			if call <= 2 {
				return errDown
			}
			return nil
		}}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(0) // pd refuses, hook's trigger fails once and waits
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(time.Minute)
		// The incident is over before hook took its trigger: the trigger is not sent
		// again; the resolve is (the failed try may have reached hook).
		if got := hook.callList(); got != "trigger:k resolve:k resolve:k" {
			t.Errorf("hook calls %q, want its trigger once, then the resolve until accepted", got)
		}
		if got := hook.acceptedList(); got != "resolve:k" {
			t.Errorf("hook accepted %q", got)
		}
		if keys := openFallbacks(t, s); len(keys) != 0 {
			t.Errorf("%s holds %q after the resolve, want nothing", FallbackOpenBucket, keys)
		}
	})
	t.Run("an update sent to the fallback again: one resolve", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, pd, hook)
		for _, action := range []string{ActionTrigger, ActionTrigger, ActionResolve} {
			h.enqueue(fallbackDelivery(action, "k"))
			h.drive(time.Second)
		}
		if got := hook.acceptedList(); got != "trigger:k trigger:k resolve:k" {
			t.Errorf("hook accepted %q, want both triggers, then the resolve once", got)
		}
	})
	t.Run("the resolve was enqueued before the trigger was refused for good", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: func(_ context.Context, n Notification, call int) error {
			switch {
			case n.Action == ActionResolve:
				return nil
			case call == 1:
				return errDown
			default:
				return Permanent(errors.New("expected 202, got 400"))
			}
		}}
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(0) // 503: the trigger waits to be retried, no fallback yet
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(time.Minute)
		// The resolve makes the waiting trigger moot before it is refused: it is not
		// retried, so nothing falls back; pd gets the resolve (the 503 may have hidden
		// an acceptance).
		if pd.acceptedList() != "resolve:k" || hook.acceptedList() != "" {
			t.Errorf("pd accepted %q, hook %q; want the resolve at pd, nothing at hook", pd.acceptedList(), hook.acceptedList())
		}
	})
	t.Run("the resolve was enqueued while the trigger waited for fallback_after: told once", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(10 * time.Second)
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(2 * time.Minute)
		// The incident closed before its trigger fell back: the trigger is moot and
		// never falls back; the resolve, failing at pd for fallback_after, does.
		if got := hook.acceptedList(); got != "resolve:k" {
			t.Errorf("hook accepted %q, want the resolve once and no trigger of an incident already over", got)
		}
	})
	t.Run("the resolve closes the record: the next incident of the key is the primaries' alone", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(time.Second)
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(time.Second)
		if keys := openFallbacks(t, s); len(keys) != 0 {
			t.Errorf("%s holds %q after the resolve was delivered, want nothing", FallbackOpenBucket, keys)
		}
		pd.mu.Lock()
		pd.respond = nil
		pd.mu.Unlock()
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(time.Second)
		if got := hook.acceptedList(); got != "trigger:k resolve:k" {
			t.Errorf("hook accepted %q, want only the first incident's trigger and resolve", got)
		}
	})
	t.Run("a fallback that refuses the resolve for good: the record is closed", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		hook := &fakeNotifier{name: "hook", respond: refuse(ActionResolve)}
		h := newStepper(t, s, pd, hook)
		h.enqueue(fallbackDelivery(ActionTrigger, "k"))
		h.drive(time.Second)
		if keys := openFallbacks(t, s); len(keys) != 1 || !strings.HasPrefix(keys[0], "k") || !strings.HasSuffix(keys[0], "hook") {
			t.Errorf("%s holds %q after the fallback trigger, want one record for k and hook", FallbackOpenBucket, keys)
		}
		h.enqueue(fallbackDelivery(ActionResolve, "k"))
		h.drive(time.Second)
		if keys := openFallbacks(t, s); len(keys) != 0 || h.outbox.Pending() != 0 {
			t.Errorf("%s holds %q, %d pending; want nothing once hook refused the resolve for good",
				FallbackOpenBucket, keys, h.outbox.Pending())
		}
	})
}
