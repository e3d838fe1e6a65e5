package notify

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/clock"
)

// switchable answers 503 (a definite refusal) while down is true, else accepts.
func switchable(down *bool) func(context.Context, Notification, int) error {
	return func(context.Context, Notification, int) error {
		if *down {
			return &StatusError{Status: 503}
		}
		return nil
	}
}

// ids lists the notification IDs f accepted.
func (f *fakeNotifier) ids() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.accepted {
		out = append(out, n.ID)
	}
	return strings.Join(out, " ")
}

func numbered(action, dedup string, i int) Notification {
	n := notification(action, dedup)
	n.ID = fmt.Sprintf("%s-%s-%d", action, dedup, i)
	return n
}

// TestQueuedUpdatesKeepOnlyTheLatest: updates of an open incident queued while the
// receiver is down leave as one, the latest.
func TestQueuedUpdatesKeepOnlyTheLatest(t *testing.T) {
	down := false
	pd := &fakeNotifier{name: "pd", respond: switchable(&down)}
	var drops dropLog
	s := newPacedStepper(t, clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)),
		func(o *OutboxOptions) { o.OnDrop = drops.add }, pd)
	s.enqueue(Delivery{Notification: numbered(ActionTrigger, "A", 1), Notify: []string{"pd"}})
	s.drive(time.Second)
	down = true
	for i := 2; i <= 5; i++ {
		s.enqueue(Delivery{Notification: numbered(ActionTrigger, "A", i), Notify: []string{"pd"}})
		s.clock.Advance(time.Second)
		s.drive(time.Second)
	}
	down = false
	s.drive(5 * time.Minute)
	if got := pd.ids(); got != "trigger-A-1 trigger-A-5" {
		t.Errorf("pd accepted %q, want the first trigger, then only the latest update", got)
	}
	if got := drops.count(DropCoalesced); got != 3 {
		t.Errorf("OnDrop heard of %d coalesced entries, want 3", got)
	}
}

// TestTriggerAndResolveQueuedTogetherBecomeNothing: an incident that opened and
// closed while the receiver was down is never paged: its trigger and resolve are
// dropped together, since the receiver's last word on the key was a resolve.
func TestTriggerAndResolveQueuedTogetherBecomeNothing(t *testing.T) {
	down := false
	pd := &fakeNotifier{name: "pd", respond: switchable(&down)}
	var drops dropLog
	s := newPacedStepper(t, clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)),
		func(o *OutboxOptions) { o.OnDrop = drops.add }, pd)
	s.enqueue(Delivery{Notification: numbered(ActionTrigger, "A", 1), Notify: []string{"pd"}})
	s.outbox.Step(t.Context())
	s.enqueue(Delivery{Notification: numbered(ActionResolve, "A", 2), Notify: []string{"pd"}})
	s.outbox.Step(t.Context())
	down = true
	s.enqueue(Delivery{Notification: numbered(ActionTrigger, "A", 3), Notify: []string{"pd"}})
	s.drive(3 * time.Second) // tried and refused with 503: it did not arrive
	s.enqueue(Delivery{Notification: numbered(ActionResolve, "A", 4), Notify: []string{"pd"}})
	down = false
	s.drive(5 * time.Minute)
	if got := pd.ids(); got != "trigger-A-1 resolve-A-2" {
		t.Errorf("pd accepted %q, want only the first incident: the second opened and closed unseen", got)
	}
	if got := drops.count(DropCoalesced); got != 2 || s.outbox.Pending() != 0 || len(s.stored()) != 0 {
		t.Errorf("coalesced %d, pending %d, stored %v; want 2 coalesced and nothing left", got, s.outbox.Pending(), s.stored())
	}
}

// TestTriggerThatMayHaveArrivedKeepsItsResolve: a trigger whose attempt timed out may
// have reached the receiver; it is not sent again once its resolve is queued, but the
// resolve is.
func TestTriggerThatMayHaveArrivedKeepsItsResolve(t *testing.T) {
	pd := &fakeNotifier{name: "pd", respond: func(_ context.Context, n Notification, call int) error {
		if n.Action == ActionTrigger {
			return TransportError(context.DeadlineExceeded)
		}
		return nil
	}}
	s := newPacedStepper(t, clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)), nil, pd)
	s.enqueue(Delivery{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}})
	s.outbox.Step(t.Context())
	s.enqueue(Delivery{Notification: notification(ActionResolve, "A"), Notify: []string{"pd"}})
	s.drive(5 * time.Minute)
	if got := pd.callList(); got != "trigger:A resolve:A" {
		t.Errorf("pd calls %q, want the trigger once (it timed out), then its resolve", got)
	}
}

// TestCoalescingKeepsTheFallbacksResolve: the trigger fell back to the webhook, which
// took it; the pager is still down when the incident closes. The pager's queued
// trigger is dropped (the incident is over), and the webhook is told the resolve, so
// its fallback_open record is closed.
func TestCoalescingKeepsTheFallbacksResolve(t *testing.T) {
	down := true
	pd := &fakeNotifier{name: "pd", respond: switchable(&down)}
	hook := &fakeNotifier{name: "hook"}
	s := newPacedStepper(t, clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)), nil, pd, hook)
	s.enqueue(fallbackDelivery(ActionTrigger, "A"))
	s.drive(2 * time.Minute)
	if got := hook.acceptedList(); got != "trigger:A" {
		t.Fatalf("hook accepted %q, want the fallback trigger", got)
	}
	s.enqueue(fallbackDelivery(ActionResolve, "A"))
	s.clock.Advance(time.Second)
	s.drive(time.Second)
	down = false
	s.drive(10 * time.Minute)
	if got := hook.acceptedList(); got != "trigger:A resolve:A" {
		t.Errorf("hook accepted %q, want the trigger and then its resolve", got)
	}
	if got := pd.acceptedList(); strings.Contains(got, "trigger") {
		t.Errorf("pd accepted %q, want no trigger of an incident that is over", got)
	}
	if open := openFallbacks(t, s.store); len(open) != 0 {
		t.Errorf("fallback_open still holds %v", open)
	}
	if s.outbox.Pending() != 0 {
		t.Errorf("%d entries pending, want none", s.outbox.Pending())
	}
}

// TestAMootEntryLeavesItsNotificationIncomplete: a notification one of whose entries
// was dropped for a later one is not "complete" when its other entries are accepted
// (a fleet would confirm a page the pager never got); the later one is, once the pager
// takes it.
func TestAMootEntryLeavesItsNotificationIncomplete(t *testing.T) {
	pdDown, chatDown := true, true
	pd := &fakeNotifier{name: "pd", respond: switchable(&pdDown)}
	chat := &fakeNotifier{name: "chat", respond: switchable(&chatDown)}
	s := newPacedStepper(t, clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)), nil, pd, chat)
	s.enqueue(Delivery{Notification: numbered(ActionTrigger, "A", 1), Notify: []string{"pd", "chat"}})
	s.outbox.Step(t.Context())
	s.enqueue(Delivery{Notification: numbered(ActionTrigger, "A", 2), Notify: []string{"pd"}}) // routed to pd alone now
	s.clock.Advance(time.Second)
	s.outbox.Step(t.Context()) // pd's first trigger is moot
	chatDown = false
	s.drive(time.Minute)
	pdDown = false
	s.drive(time.Minute)
	complete := map[string]bool{}
	for _, r := range s.results.all() {
		if r.OK {
			complete[r.NotificationID+" via "+r.Notifier] = r.Complete
		}
	}
	want := map[string]bool{"trigger-A-1 via chat": false, "trigger-A-2 via pd": true}
	if fmt.Sprint(complete) != fmt.Sprint(want) {
		t.Errorf("accepted (complete?) %v, want %v", complete, want)
	}
}
