package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/internal/tmpfs"
)

// TestAPageLeavesWhenTheDiskIsFull: on a real full disk (a 256 KiB tmpfs filled to
// ENOSPC) Enqueue used to fail and nothing was sent until space was freed (measured: 0
// triggers in 8 s). Now the entry is held in memory, unpersisted, and delivered at
// once; the outbox says so at ERROR once, not at every enqueue.
func TestAPageLeavesWhenTheDiskIsFull(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	s := openStore(t, dir)
	pd := &fakeNotifier{name: "pd"}
	st := newStepper(t, s, pd)
	tmpfs.Fill(t, dir)
	for i := range 20 { // a tick's worth of pages each second for 20 s
		if err := st.outbox.Enqueue(Delivery{Notification: notification(ActionTrigger, fmt.Sprintf("k%02d", i)), Notify: []string{"pd"}}); err != nil {
			t.Fatalf("Enqueue on a full disk: %v; want it queued in memory", err)
		}
		if i == 0 {
			if n := st.outbox.Unpersisted(); n != 1 {
				t.Errorf("Unpersisted = %d, want 1", n)
			}
			if e := st.outbox.Entries(); len(e) != 1 || !e[0].Unpersisted {
				t.Errorf("Entries %+v, want one marked unpersisted", e)
			}
		}
		st.drive(time.Second)
	}
	if got := pd.callCount(); got != 20 {
		t.Fatalf("pd called %d times on a full disk, want all 20 pages delivered", got)
	}
	if n := st.outbox.Pending(); n != 0 {
		t.Errorf("%d pending after delivery", n)
	}
	if n := strings.Count(st.logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d outbox ERROR lines for 20 unpersisted pages in 20 s, want 1:\n%s", n, st.logs)
	}
}

// TestUnpersistedIsWrittenOnceTheStoreWorks: an entry the full disk refused, not yet
// delivered (its receiver is down), is written by the retry once space is freed, so a
// restart replays it; an entry enqueued after that gets a later number of its own.
func TestUnpersistedIsWrittenOnceTheStoreWorks(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	s := openStore(t, dir)
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
	st := newStepper(t, s, pd)
	free := tmpfs.Fill(t, dir)
	if err := st.outbox.Enqueue(Delivery{Notification: notification(ActionTrigger, "first"), Notify: []string{"pd"}}); err != nil {
		t.Fatalf("Enqueue on a full disk: %v", err)
	}
	st.drive(5 * time.Second)
	if n := len(st.stored()); n != 0 || pd.callCount() == 0 {
		t.Fatalf("on a full disk: %d stored, %d calls; want none stored and sending tried", n, pd.callCount())
	}
	free()
	st.drive(40 * time.Second) // beyond the longest retry wait
	stored := st.stored()
	if len(stored) != 1 || st.outbox.Unpersisted() != 0 {
		t.Fatalf("after space was freed: stored %v, unpersisted %d; want the entry written", stored, st.outbox.Unpersisted())
	}
	if err := st.outbox.Enqueue(Delivery{Notification: notification(ActionTrigger, "second"), Notify: []string{"pd"}}); err != nil {
		t.Fatal(err)
	}
	keys := st.stored()
	if len(keys) != 2 || keys[0] != stored[0] || keys[1] <= keys[0] {
		t.Errorf("stored %v, want the first entry kept and the second under a later number", keys)
	}
	restarted := newHarness(t, s, nil, &fakeNotifier{name: "pd"})
	if n := restarted.outbox.Pending(); n != 2 {
		t.Errorf("a restart replays %d entries, want both", n)
	}
}

// TestRunRetriesTheWriteInTheBackground: with Run, a refused write is retried with
// backoff until the store takes it.
func TestRunRetriesTheWriteInTheBackground(t *testing.T) {
	s := openStore(t, t.TempDir())
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(errDown)}
	var refusals atomic.Int32
	fs := &faultyStore{Store: s, failPut: func(string) bool { return refusals.Add(1) <= 2 }}
	h := newHarness(t, s, func(o *OutboxOptions) { o.Store = fs }, pd)
	if err := h.outbox.Enqueue(Delivery{Notification: notification(ActionTrigger, "k"), Notify: []string{"pd"}}); err != nil {
		t.Fatal(err)
	}
	h.run()
	testkit.WaitFor(t, 10*time.Second, "the entry written by the retry", func() bool {
		return len(h.stored()) == 1 && h.outbox.Unpersisted() == 0
	})
	if n := refusals.Load(); n != 3 {
		t.Errorf("%d writes tried, want 3: the refused one, one refused retry, the one that worked", n)
	}
}

// TestPersistAgainAfterAFreshStoreFile: when the store had to start a fresh file, the
// pending entries and open-fallback records are written to it again.
func TestPersistAgainAfterAFreshStoreFile(t *testing.T) {
	s := openStore(t, t.TempDir())
	pd := &fakeNotifier{name: "pd", respond: alwaysFail(Permanent(errors.New("400")))}
	hook := &fakeNotifier{name: "hook", respond: alwaysFail(errDown)}
	st := newStepper(t, s, pd, hook)
	st.enqueue(fallbackDelivery(ActionTrigger, "k"))
	st.drive(2 * time.Second) // pd refuses: the fallback to hook is queued, and fails for now
	before := st.stored()
	if len(before) != 1 || len(openFallbacks(t, s)) != 1 {
		t.Fatalf("stored %v, open %v; want hook's fallback entry and its open record", before, openFallbacks(t, s))
	}
	for _, k := range before { // what a fresh file holds: nothing
		_ = s.Delete(OutboxBucket, k)
	}
	_ = s.Delete(FallbackOpenBucket, openFallbacks(t, s)[0])
	st.outbox.PersistAgain()
	st.outbox.Step(context.Background())
	if after := st.stored(); strings.Join(after, " ") != strings.Join(before, " ") || len(openFallbacks(t, s)) != 1 {
		t.Errorf("after PersistAgain stored %v (want %v), open %v (want one)", after, before, openFallbacks(t, s))
	}
}
