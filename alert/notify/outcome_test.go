package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOutcomesTellWhatBecameOfEachNotification: after a flush that ran out of time,
// every notification and notifier has one line: accepted, refused with the reason (and
// its fallback's own line), or still queued with the attempts and the last error.
func TestOutcomesTellWhatBecameOfEachNotification(t *testing.T) {
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(Permanent(errors.New("expected 202, got 400 Bad Request")))}
	hook := &fakeNotifier{name: "hook"}
	chat := &fakeNotifier{name: "chat"}
	slow := &fakeNotifier{name: "slow", respond: alwaysFail(errDown)}
	var got Outcomes
	ob, err := NewOutbox(OutboxOptions{Store: openStore(t, t.TempDir()), OnResult: got.Record,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Notifiers: map[string]Notifier{"pd": pd, "hook": hook, "chat": chat, "slow": slow}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Delivery{
		{Notification: notification(ActionTrigger, "A"), Notify: []string{"pd"}, Fallback: []string{"hook"}},
		{Notification: notification(ActionTrigger, "A"), Notify: []string{"chat"}},
		{Notification: notification(ActionResolve, "B"), Notify: []string{"slow"}},
	} {
		if err := ob.Enqueue(d); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_ = ob.Flush(ctx)
	var lines []string
	for _, o := range got.List(ob.Entries()) {
		lines = append(lines, o.String())
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"trigger A via pd: refused: expected 202, got 400 Bad Request",
		"trigger A via hook (fallback): accepted",
		"trigger A via chat: accepted",
		"resolve B via slow: still queued (",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no line %q in:\n%s", want, text)
		}
	}
	if len(lines) != 4 {
		t.Errorf("want 4 lines, one per notification and notifier:\n%s", text)
	}
	if !strings.Contains(text, "attempts): "+errDown.Error()) {
		t.Errorf("a queued line says how often it was tried and the last error:\n%s", text)
	}
}
