package notify

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/store"
)

// legacyKeys are the keys of the old layout's records of legacyFile, in order.
var legacyKeys = [4]string{
	"00000000000000000001-pd",   // the trigger to pd (chat, the other primary, was refused for good)
	"00000000000000000003-hook", // the trigger handed to hook as the fallback
	"00000000000000000004-pd",   // the resolve to pd
	"00000000000000000005-hook", // the resolve told to hook, whose trigger is open
}

// legacyNotification is the notification of the old file's trigger or resolve.
func legacyNotification(action string, created time.Time) Notification {
	id := map[string]string{ActionTrigger: "picket/region/eu1|trigger|1", ActionResolve: "picket/region/eu1|resolve|2"}[action]
	return Notification{ID: id, Action: action, DedupKey: fuzzOutboxKey, Scope: "region", Subject: "eu1",
		Summary: "[REGION eu1] 2 products down", Severity: SeverityCritical, Source: "fsn1-vps", Created: created, Opened: created,
		Details: map[string]any{"targets": []string{"logs/search@eu1", "metrics/query@eu1"}}}
}

// legacyFile is what the outbox of the layout before one record per delivery stored
// for the scenario of outboxSeeds, written out field by field as that code wrote them:
// one record per notifier, the delivery's fallback state copied onto each sibling.
func legacyFile(t0 time.Time) (outbox, open map[string]string) {
	trigger, resolve := legacyNotification(ActionTrigger, t0), legacyNotification(ActionResolve, t0)
	later := t0.Add(2 * time.Minute)
	records := map[string]map[string]any{
		legacyKeys[0]: {"notifier": "pd", "identity": "pagerduty:events.pagerduty.com", "notification": trigger,
			"group": legacyKeys[0], "primaries": []string{"pd", "chat"}, "fallback": []string{"hook"},
			"fallback_identity": map[string]string{"hook": "webhook:hooks.example.com"}, "fallback_after": time.Minute,
			"failed_peers": []string{"chat"}, "settled": true, "enqueued": t0},
		legacyKeys[1]: {"notifier": "hook", "identity": "webhook:hooks.example.com", "notification": trigger,
			"group": legacyKeys[0], "is_fallback": true, "enqueued": later},
		legacyKeys[2]: {"notifier": "pd", "identity": "pagerduty:events.pagerduty.com", "notification": resolve,
			"group": legacyKeys[2], "primaries": []string{"pd"}, "told": []string{"hook"}, "enqueued": later},
		legacyKeys[3]: {"notifier": "hook", "identity": "webhook:hooks.example.com", "notification": resolve,
			"group": legacyKeys[2], "is_fallback": true, "closes": []string{fuzzOutboxKey + "|hook"}, "enqueued": later},
	}
	outbox = map[string]string{}
	for k, rec := range records {
		raw, err := json.Marshal(rec)
		if err != nil {
			panic(err)
		}
		outbox[k] = string(raw)
	}
	open = map[string]string{fuzzOutboxKey + "|hook": `{"dedup_key":"` + fuzzOutboxKey +
		`","notifier":"hook","identity":"webhook:hooks.example.com","trigger":"` + legacyKeys[1] + `"}`}
	return outbox, open
}

// writeRaw stores each raw JSON record of records in bucket through the store.
func writeRaw(t *testing.T, s *store.Store, bucket string, records map[string]string) {
	t.Helper()
	for k, raw := range records {
		if err := s.Put(bucket, k, json.RawMessage(raw)); err != nil {
			t.Fatal(err)
		}
	}
}

// storedShapes lists, per stored outbox key, the notifiers of its parts ("pd,chat") or
// "old" for a record of the old layout.
func storedShapes(t *testing.T, s *store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = s.ForEach(OutboxBucket, func(key string, raw []byte) error {
		var rec struct {
			Parts []partRecord `json:"parts"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil || len(rec.Parts) == 0 {
			out[key] = "old"
			return nil
		}
		names := make([]string, len(rec.Parts))
		for i, p := range rec.Parts {
			names[i] = p.Notifier + ":" + cmp.Or(p.Outcome, "pending")
		}
		out[key] = strings.Join(names, ",")
		return nil
	})
	return out
}

// TestOldLayoutIsReadAndRewrittenAtLoad: a daemon upgraded mid-outage keeps its queue.
// The records of the old layout (one per notifier) are read as the deliveries they
// were, rewritten as one record per delivery in the transaction that deletes them, and
// the queue goes on exactly as the same queue stored in the new layout does.
func TestOldLayoutIsReadAndRewrittenAtLoad(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	old, oldOpen := legacyFile(t0)
	t.Run("the queue as it was", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		writeRaw(t, s, OutboxBucket, old)
		writeRaw(t, s, FallbackOpenBucket, oldOpen)
		h, pd, chat, hook := startAccepting(t, s)
		ids := make([]string, 0, 4)
		for _, e := range h.outbox.Entries() {
			ids = append(ids, e.ID+"/"+e.Action)
		}
		if want := legacyKeys[0] + "/trigger " + legacyKeys[1] + "/trigger " + legacyKeys[2] + "/resolve " + legacyKeys[3] + "/resolve"; strings.Join(ids, " ") != want {
			t.Fatalf("after the upgrade Entries are %q, want the old queue %q", ids, want)
		}
		want := map[string]string{legacyKeys[0]: "pd:pending,chat:refused,hook:pending", legacyKeys[2]: "pd:pending,hook:pending"}
		if got := storedShapes(t, s); !maps.Equal(got, want) {
			t.Fatalf("after the upgrade the store holds %v, want one record per delivery %v", got, want)
		}
		h.drive(time.Minute)
		newPD, newChat, newHook := replayNewLayout(t, t0)
		for _, c := range []struct{ name, got, want string }{
			{"pd", pd.callList(), newPD}, {"chat", chat.callList(), newChat}, {"hook", hook.callList(), newHook},
		} {
			if c.got != c.want {
				t.Errorf("%s got %q from the old layout, %q from the same queue in the new one", c.name, c.got, c.want)
			}
		}
		if hook.callList() != "resolve:"+fuzzOutboxKey || h.outbox.Pending() != 0 || len(h.stored()) != 0 ||
			len(openFallbacks(t, s)) != 0 {
			t.Errorf("hook got %q, %d pending, stored %v, open %v; want the resolve at hook and nothing left",
				hook.callList(), h.outbox.Pending(), h.stored(), openFallbacks(t, s))
		}
	})
	t.Run("a delivery still deciding its fallback", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		writeRaw(t, s, OutboxBucket, map[string]string{legacyKeys[0]: strings.Replace(old[legacyKeys[0]], `"settled":true`, `"settled":false`, 1)})
		for range 2 { // the old file's sequence: pd's and chat's numbers
			if _, err := s.NextSeq(OutboxBucket); err != nil {
				t.Fatal(err)
			}
		}
		pd := &fakeNotifier{name: "pd", id: "pagerduty:events.pagerduty.com", respond: alwaysFail(errDown)}
		chat := &fakeNotifier{name: "chat", id: "slack:hooks.slack.com"}
		hook := &fakeNotifier{name: "hook", id: "webhook:hooks.example.com"}
		h := newStepper(t, s, pd, chat, hook)
		h.drive(30 * time.Second)
		if hook.callCount() != 0 {
			t.Fatalf("hook called after pd failed for 30s, want the fallback only after fallback_after (1m)")
		}
		h.drive(2 * time.Minute)
		if hook.acceptedList() != "trigger:"+fuzzOutboxKey || chat.callCount() != 0 {
			t.Errorf("hook accepted %q, chat called %d times; want the fallback at hook and chat (refused before) left alone",
				hook.acceptedList(), chat.callCount())
		}
		want := map[string]string{legacyKeys[0]: "pd:pending,chat:refused,hook:done"}
		if got := storedShapes(t, s); !maps.Equal(got, want) || len(openFallbacks(t, s)) != 1 {
			t.Errorf("the store holds %v and %v open, want %v and hook's open record", got, openFallbacks(t, s), want)
		}
		if e := h.outbox.Entries(); len(e) != 1 || !strings.HasPrefix(e[0].ID, "00000000000000000001-") {
			t.Errorf("Entries %+v, want pd's trigger alone", e)
		}
		h.enqueue(Delivery{Notification: notification(ActionTrigger, "next"), Notify: []string{"chat"}})
		if keys := h.stored(); len(keys) != 2 || keys[1] <= "00000000000000000003-hook" {
			t.Errorf("stored %v, want a new delivery numbered after the old file's and the fallback's numbers", keys)
		}
	})
}

// startAccepting restarts an outbox on s with the scenario's notifiers, all accepting.
func startAccepting(t *testing.T, s *store.Store) (h *stepper, pd, chat, hook *fakeNotifier) {
	pd = &fakeNotifier{name: "pd", id: "pagerduty:events.pagerduty.com"}
	chat = &fakeNotifier{name: "chat", id: "slack:hooks.slack.com"}
	hook = &fakeNotifier{name: "hook", id: "webhook:hooks.example.com"}
	return newStepper(t, s, pd, chat, hook), pd, chat, hook
}

// replayNewLayout runs the scenario of legacyFile on the new layout (outboxSeeds'
// records) and returns what each receiver got after a restart with every notifier
// accepting.
func replayNewLayout(t *testing.T, t0 time.Time) (pd, chat, hook string) {
	t.Helper()
	s := openStore(t, t.TempDir())
	entries, open := newLayoutSeeds(t, s, t0)
	if len(entries) != 2 || len(open) != 1 {
		t.Fatalf("the new layout stores %v and %v open, want two deliveries and one open record", entries, open)
	}
	h, p, c, k := startAccepting(t, s)
	h.drive(time.Minute)
	return p.callList(), c.callList(), k.callList()
}

// newLayoutSeeds builds, on s, the scenario's queue as the outbox stores it now.
func newLayoutSeeds(t *testing.T, s *store.Store, t0 time.Time) (entries, open []string) {
	t.Helper()
	h := newStepper(t, s,
		&fakeNotifier{name: "pd", id: "pagerduty:events.pagerduty.com", respond: alwaysFail(errDown)},
		&fakeNotifier{name: "chat", id: "slack:hooks.slack.com", respond: alwaysFail(Permanent(errDown))},
		&fakeNotifier{name: "hook", id: "webhook:hooks.example.com", respond: alwaysFail(errDown)})
	h.clock.Set(t0)
	h.enqueue(Delivery{Notification: legacyNotification(ActionTrigger, t0), Notify: []string{"pd", "chat"},
		Fallback: []string{"hook"}, FallbackAfter: time.Minute})
	h.outbox.Step(t.Context())
	h.clock.Advance(2 * time.Minute)
	h.outbox.Step(t.Context())
	h.enqueue(Delivery{Notification: legacyNotification(ActionResolve, t0), Notify: []string{"pd"}})
	return slices.Sorted(slices.Values(h.stored())), openFallbacks(t, s)
}
