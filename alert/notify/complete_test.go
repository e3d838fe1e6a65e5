package notify

import (
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// One notification, two deliveries (two routes, as the engine enqueues with continue:
// true): chat accepts while pd keeps failing: no acceptance is Complete.
func TestCompleteAcrossDeliveriesOfOneNotification(t *testing.T) {
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
	chat := &fakeNotifier{name: "chat"}
	h := newHarness(t, openStore(t, t.TempDir()), nil, pd, chat)
	n := notification(ActionTrigger, "k")
	h.enqueue(Delivery{Notification: n, Notify: []string{"chat"}})
	h.enqueue(Delivery{Notification: n, Notify: []string{"pd"}})
	h.run()
	testkit.WaitFor(t, 3*time.Second, "chat accepted and pd failed twice", func() bool {
		return chat.acceptedList() == "trigger:k" && pd.callCount() >= 2
	})
	for _, r := range h.results.all() {
		if r.OK && r.Complete {
			t.Errorf("%s's acceptance reported Complete while pd (same notification %s) still fails", r.Notifier, r.NotificationID)
		}
	}
}

// Both routes accept: the later acceptance is Complete, the earlier one not.
func TestCompleteWhenEveryDeliveryAccepted(t *testing.T) {
	pd := &fakeNotifier{name: "pd"}
	chat := &fakeNotifier{name: "chat"}
	h := newHarness(t, openStore(t, t.TempDir()), nil, pd, chat)
	n := notification(ActionTrigger, "k")
	h.enqueue(Delivery{Notification: n, Notify: []string{"chat"}})
	h.enqueue(Delivery{Notification: n, Notify: []string{"pd"}})
	h.run()
	testkit.WaitFor(t, 3*time.Second, "both accepted", func() bool { return len(h.results.all()) >= 2 })
	complete := 0
	for _, r := range h.results.all() {
		if r.OK && r.Complete {
			complete++
		}
	}
	if complete != 1 {
		t.Errorf("%d acceptances reported Complete, want exactly the last one: %+v", complete, h.results.all())
	}
}
