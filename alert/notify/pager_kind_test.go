package notify

import (
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// pagerOf is a fake notifier of a given kind.
type pagerOf struct {
	*fakeNotifier
	kind string
}

func (p pagerOf) Kind() string { return p.kind }

// TestOpsgenieIsAPager: pagers decide when a notification is complete. Once the
// Opsgenie delivery is accepted, a chat that keeps failing does not keep it
// incomplete (a fleet would page again from every vantage), as for PagerDuty; a
// kind that is no pager (email) does not complete it while the chat fails.
func TestOpsgenieIsAPager(t *testing.T) {
	for kind, complete := range map[string]bool{"pagerduty": true, "opsgenie": true, "email": false} {
		t.Run(kind, func(t *testing.T) {
			pager := &fakeNotifier{name: "pager"}
			chat := &fakeNotifier{name: "chat", respond: alwaysFail(errDown)}
			h := newHarness(t, openStore(t, t.TempDir()), nil, pagerOf{pager, kind}, pagerOf{chat, "teams"})
			h.enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"chat", "pager"}})
			h.run()
			testkit.WaitFor(t, 3*time.Second, "the pager accepted and chat failed twice", func() bool {
				return pager.acceptedList() == "trigger:k" && chat.callCount() >= 2
			})
			for _, r := range h.results.all() {
				if r.OK && r.Complete != complete {
					t.Errorf("%s accepted: Complete %v, want %v", kind, r.Complete, complete)
				}
			}
		})
	}
}
