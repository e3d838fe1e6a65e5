package notify

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/clock"
)

// memStore is an OutboxStore in memory, for fuzzing: thousands of restarts a second.
type memStore struct {
	mu      sync.Mutex
	buckets map[string]map[string][]byte
	seqs    map[string]uint64
}

func newMemStore() *memStore {
	return &memStore{buckets: map[string]map[string][]byte{}, seqs: map[string]uint64{}}
}

func (m *memStore) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m.putRaw(bucket, key, raw)
	return nil
}

func (m *memStore) putRaw(bucket, key string, raw []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets[bucket] == nil {
		m.buckets[bucket] = map[string][]byte{}
	}
	m.buckets[bucket][key] = raw
}

func (m *memStore) Delete(bucket, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.buckets[bucket], key)
	return nil
}

func (m *memStore) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	m.mu.Lock()
	b := maps.Clone(m.buckets[bucket])
	m.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if err := fn(k, b[k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) NextSeq(bucket string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seqs[bucket]++
	return m.seqs[bucket], nil
}

// fuzzOutboxKey is the stored dedup key of the seeds.
const fuzzOutboxKey = "picket/region/eu1"

// outboxSeeds are real records: what an outbox stores for a trigger to pd and chat with
// hook as fallback (chat refused it for good, so the fallback went out and its record is
// open), and the resolve queued behind it.
func outboxSeeds(f *testing.F) (entries map[string][]byte, open map[string][]byte) {
	st := newMemStore()
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	chat := &fakeNotifier{name: "chat", id: "slack:hooks.slack.com", respond: alwaysFail(Permanent(errDown))}
	o, err := NewOutbox(OutboxOptions{Store: st, Clock: clk, Notifiers: map[string]Notifier{
		"pd":   &fakeNotifier{name: "pd", id: "pagerduty:events.pagerduty.com", respond: alwaysFail(errDown)},
		"chat": chat, "hook": &fakeNotifier{name: "hook", id: "webhook:hooks.example.com", respond: alwaysFail(errDown)},
	}})
	if err != nil {
		f.Fatal(err)
	}
	n := Notification{ID: "picket/region/eu1|trigger|1", Action: ActionTrigger, DedupKey: fuzzOutboxKey, Scope: "region",
		Subject: "eu1", Summary: "[REGION eu1] 2 products down", Severity: SeverityCritical, Source: "fsn1-vps",
		Created: clk.Now(), Opened: clk.Now(), Details: map[string]any{"targets": []string{"logs/search@eu1", "metrics/query@eu1"}}}
	if err := o.Enqueue(Delivery{Notification: n, Notify: []string{"pd", "chat"}, Fallback: []string{"hook"}, FallbackAfter: time.Minute}); err != nil {
		f.Fatal(err)
	}
	o.Step(context.Background()) // chat refuses: its entry goes, pd's records it
	clk.Advance(2 * time.Minute)
	o.Step(context.Background()) // pd has kept failing: the fallback is queued to hook
	n.ID, n.Action = "picket/region/eu1|resolve|2", ActionResolve
	if err := o.Enqueue(Delivery{Notification: n, Notify: []string{"pd"}}); err != nil {
		f.Fatal(err)
	}
	entries, open = st.buckets[OutboxBucket], st.buckets[FallbackOpenBucket]
	if len(entries) < 3 || len(open) != 1 {
		f.Fatalf("seed outbox holds %d entries and %d open fallbacks, want at least 3 and 1", len(entries), len(open))
	}
	return entries, open
}

// FuzzOutboxLoad: an outbox restarts on whatever its store holds. A damaged record is
// skipped (and kept for a human); it neither panics, nor fails the start, nor stops the
// other records: with notifiers that answer, every readable entry is delivered, refused
// or falls back, and leaves the store.
func FuzzOutboxLoad(f *testing.F) {
	entries, open := outboxSeeds(f)
	keys := slices.Sorted(maps.Keys(entries))
	openKeyOf := slices.Collect(maps.Keys(open))[0]
	real := func(i int) []byte { return entries[keys[min(i, len(keys)-1)]] }
	f.Add(real(0), real(1), real(2), real(3), open[openKeyOf])
	f.Add(real(0), []byte(`{"notifier":"pd","group":"nowhere","primaries":["pd","ghost"]}`), real(2), real(3), []byte(`null`))
	f.Add([]byte(`{"notifier":"ghost","is_fallback":true}`), real(1), []byte(`not json`), []byte(`{}`), []byte(`{"notifier":"hook"}`))
	f.Add(real(1), real(1), real(1), real(1), []byte(nil))
	f.Add([]byte(`{"notifier":"pd","notification":{"action":"trigger"},"fallback":["hook"],"fallback_after":-1}`), []byte(nil), []byte(nil), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, rec1, rec2, rec3, rec4, openRec []byte) {
		st := newMemStore()
		for i, raw := range [][]byte{rec1, rec2, rec3, rec4} {
			if len(raw) > 0 && i < len(keys) { // empty: no such record
				st.putRaw(OutboxBucket, keys[i], raw)
			}
		}
		if len(openRec) > 0 {
			st.putRaw(FallbackOpenBucket, openKeyOf, openRec)
		}
		clk := clock.NewFake(time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC))
		o, err := NewOutbox(OutboxOptions{Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler), Notifiers: map[string]Notifier{
			"pd":   &fakeNotifier{name: "pd", id: "pagerduty:events.pagerduty.com"},
			"chat": &fakeNotifier{name: "chat", id: "slack:hooks.slack.com", respond: alwaysFail(Permanent(errDown))},
			"hook": &fakeNotifier{name: "hook", id: "webhook:hooks.example.com"},
		}})
		if err != nil {
			t.Fatalf("restart on damaged records failed: %v", err)
		}
		_ = o.Entries()
		drain(t, o, clk)
		for key, raw := range st.buckets[OutboxBucket] {
			if readable(raw) {
				t.Errorf("entry %s %s was readable but is still stored after the outbox drained", key, raw)
			}
		}
	})
}

// drain steps the outbox through virtual time until nothing is pending; a bounded number
// of turns, since every entry either goes at once or waits for a backoff or a fallback.
func drain(t *testing.T, o *Outbox, clk *clock.Fake) {
	t.Helper()
	for range 50 {
		next := o.Step(context.Background())
		if o.Pending() == 0 {
			return
		}
		if next.IsZero() {
			t.Fatalf("%d entries pending and nothing due: %+v", o.Pending(), o.Entries())
		}
		clk.Set(next)
	}
	t.Fatalf("%d entries still pending after 50 turns: %+v", o.Pending(), o.Entries())
}

// readable is load's test of a record.
func readable(raw []byte) bool {
	var rec outboxRecord
	return json.Unmarshal(raw, &rec) == nil && rec.Notifier != ""
}
