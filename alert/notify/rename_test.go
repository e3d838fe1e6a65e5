package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// notifiersOf maps fakes by name, as SetNotifiers takes them.
func notifiersOf(fs ...*fakeNotifier) map[string]Notifier {
	m := map[string]Notifier{}
	for _, f := range fs {
		m[f.name] = f
	}
	return m
}

// TestRenameKeepsTheOutboxsBookkeeping: a relabelled entry still counts for its
// delivery's fallback, keeps the parallel bounds right, and a renamed fallback is
// still found.
func TestRenameKeepsTheOutboxsBookkeeping(t *testing.T) {
	t.Run("a renamed primary refused for good: its delivery falls back", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		hook := &fakeNotifier{name: "hook"}
		h := newStepper(t, s, &fakeNotifier{name: "old", id: "pd-1", respond: alwaysFail(errDown)}, hook)
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"old"},
			Fallback: []string{"hook"}, FallbackAfter: time.Hour})
		h.drive(0)
		refusing := &fakeNotifier{name: "new", id: "pd-1", respond: alwaysFail(Permanent(errors.New("400")))}
		h.outbox.SetNotifiers(notifiersOf(refusing, hook))
		h.drive(time.Minute)
		if refusing.callCount() != 1 || hook.acceptedList() != "trigger:k" || h.outbox.Pending() != 0 {
			t.Errorf("new called %d times, hook accepted %q, %d pending; want new's refusal to fall back at once",
				refusing.callCount(), hook.acceptedList(), h.outbox.Pending())
		}
	})
	t.Run("renamed while being sent: the lane, the bounds and the retry follow", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		renamed := &fakeNotifier{name: "new", id: "pd-1"}
		var h *stepper
		old := &fakeNotifier{name: "old", id: "pd-1", respond: func(context.Context, Notification, int) error {
			h.outbox.SetNotifiers(notifiersOf(renamed)) // the reload lands mid-send
			return errDown
		}}
		h = newStepper(t, s, old)
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"old"}})
		h.drive(0)
		h.enqueue(Delivery{Notification: notification(ActionResolve, "k"), Notify: []string{"new"}})
		h.drive(time.Minute)
		// One lane at new: the resolve queued behind the trigger makes the trigger moot
		// (coalesced), so new gets the resolve alone; in two lanes it would get both.
		if old.callCount() != 1 || renamed.acceptedList() != "resolve:k" || h.outbox.Pending() != 0 {
			t.Errorf("old called %d times, new accepted %q, %d pending; want the resolve at new, in the trigger's lane",
				old.callCount(), renamed.acceptedList(), h.outbox.Pending())
		}
		h.outbox.mu.Lock()
		defer h.outbox.mu.Unlock()
		for name, n := range h.outbox.inFlightBy {
			if n != 0 || h.outbox.inFlight != 0 {
				t.Errorf("in flight: %d in all, %d for %s after every send ended; want 0", h.outbox.inFlight, n, name)
			}
		}
	})
	t.Run("relabelled, then restarted: the delivery falls back once", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		down := func(name, id string) *fakeNotifier {
			return &fakeNotifier{name: name, id: id, respond: alwaysFail(errDown)}
		}
		first := newStepper(t, s, down("old", "pd-1"), down("chat", "chat-1"), &fakeNotifier{name: "hook"})
		first.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"old", "chat"},
			Fallback: []string{"hook"}, FallbackAfter: time.Minute})
		first.drive(0)
		first.outbox.SetNotifiers(notifiersOf(down("new", "pd-1"), down("chat", "chat-1"), &fakeNotifier{name: "hook"}))

		hook := &fakeNotifier{name: "hook"}
		second := newStepper(t, s, down("new", "pd-1"), down("chat", "chat-1"), hook)
		if got := second.outbox.Entries(); len(got) != 2 || got[0].Notifier != "new" || got[1].Notifier != "chat" {
			t.Fatalf("after the restart the entries are %+v, want new's and chat's", got)
		}
		second.drive(10 * time.Minute)
		if got := hook.acceptedList(); got != "trigger:k" {
			t.Errorf("hook accepted %q, want the trigger once: both primaries kept failing", got)
		}
	})
	t.Run("a fallback renamed before it is needed", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
		first := newStepper(t, s, pd, &fakeNotifier{name: "hook-old", id: "hook-1"})
		first.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd"},
			Fallback: []string{"hook-old"}, FallbackAfter: time.Minute})
		first.drive(0)

		hook := &fakeNotifier{name: "hook-new", id: "hook-1"}
		second := newStepper(t, s, pd, hook)
		second.drive(10 * time.Minute)
		if got := hook.acceptedList(); got != "trigger:k" {
			t.Errorf("the renamed fallback accepted %q, want the trigger", got)
		}
		if logs := second.logs.String(); strings.Contains(logs, "refused for good") {
			t.Errorf("something was dropped:\n%s", logs)
		}
	})
	t.Run("an open fallback renamed across a restart is told the resolve", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		pd := &fakeNotifier{name: "pd", respond: refuse(ActionTrigger)}
		first := newStepper(t, s, pd, &fakeNotifier{name: "hook-old", id: "hook-1"})
		first.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd"},
			Fallback: []string{"hook-old"}})
		first.drive(time.Second)

		hook := &fakeNotifier{name: "hook-new", id: "hook-1"}
		second := newStepper(t, s, pd, hook)
		second.enqueue(Delivery{Notification: notification(ActionResolve, "k"), Notify: []string{"pd"},
			Fallback: []string{"hook-new"}})
		second.drive(time.Second)
		if got := hook.acceptedList(); got != "resolve:k" {
			t.Errorf("the renamed fallback accepted %q, want the resolve", got)
		}
		if keys := openFallbacks(t, s); len(keys) != 0 {
			t.Errorf("%s holds %q after the resolve, want nothing", FallbackOpenBucket, keys)
		}
	})
}

// TestRenamesWhileDelivering: reloads that rename the notifier back and forth while
// Run sends, fails and retries lose no page and send none twice.
func TestRenamesWhileDelivering(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	respond := func(_ context.Context, n Notification, call int) error {
		if call%3 == 1 {
			return errDown
		}
		mu.Lock()
		defer mu.Unlock()
		got[n.DedupKey]++
		return nil
	}
	names := []*fakeNotifier{{name: "a", id: "pd-1", respond: respond}, {name: "b", id: "pd-1", respond: respond}}
	h := newHarness(t, openStore(t, t.TempDir()), nil, names[0])
	h.run()
	const pages = 40
	for i := range pages {
		current := names[(i/5)%2]
		if i%5 == 0 {
			h.outbox.SetNotifiers(notifiersOf(current))
		}
		h.enqueue(Delivery{Notification: notification(ActionTrigger, fmt.Sprint("k", i)), Notify: []string{current.name}})
	}
	h.waitDrained(10 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	for i := range pages {
		if n := got[fmt.Sprint("k", i)]; n != 1 {
			t.Errorf("page k%d accepted %d times, want once", i, n)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, "refused for good") {
		t.Errorf("a page was dropped:\n%s", logs)
	}
}
