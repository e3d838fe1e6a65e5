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

func (m *memStore) putRaw(bucket, key string, raw []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets[bucket] == nil {
		m.buckets[bucket] = map[string][]byte{}
	}
	m.buckets[bucket][key] = raw
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

// Commit is all or nothing, as the real store's transaction.
func (m *memStore) Commit(bucket string, n int, after uint64, fill func(uint64) (map[string]map[string]any, error)) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := max(m.seqs[bucket], after)
	first := uint64(0)
	if n > 0 {
		first = seq + 1
	}
	writes, err := fill(first)
	if err != nil {
		return 0, err
	}
	raws := map[string]map[string][]byte{}
	for b, records := range writes {
		raws[b] = map[string][]byte{}
		for k, v := range records {
			if v == nil {
				continue
			}
			if raws[b][k], err = json.Marshal(v); err != nil {
				return 0, err
			}
		}
	}
	m.seqs[bucket] = seq + uint64(n)
	for b, records := range writes {
		if m.buckets[b] == nil {
			m.buckets[b] = map[string][]byte{}
		}
		for k, v := range records {
			if v == nil {
				delete(m.buckets[b], k)
			} else {
				m.buckets[b][k] = raws[b][k]
			}
		}
	}
	return first, nil
}

// fuzzOutboxKey is the stored dedup key of the seeds.
const fuzzOutboxKey = "picket/region/eu1"

// outboxSeeds are real records: what an outbox stores for a trigger to pd and chat with
// hook as fallback (chat refused it for good, pd kept failing, so the fallback went out
// and its record is open), and the resolve queued behind it: two deliveries, under the
// keys the old layout's first and third records had.
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
	n := legacyNotification(ActionTrigger, clk.Now())
	if err := o.Enqueue(Delivery{Notification: n, Notify: []string{"pd", "chat"}, Fallback: []string{"hook"}, FallbackAfter: time.Minute}); err != nil {
		f.Fatal(err)
	}
	o.Step(context.Background()) // chat refuses: its part is recorded so
	clk.Advance(2 * time.Minute)
	o.Step(context.Background()) // pd has kept failing: the fallback is queued to hook
	if err := o.Enqueue(Delivery{Notification: legacyNotification(ActionResolve, n.Created), Notify: []string{"pd"}}); err != nil {
		f.Fatal(err)
	}
	entries, open = st.buckets[OutboxBucket], st.buckets[FallbackOpenBucket]
	if got := slices.Sorted(maps.Keys(entries)); !slices.Equal(got, []string{legacyKeys[0], legacyKeys[2]}) || len(open) != 1 {
		f.Fatalf("seed outbox holds %q and %d open fallbacks, want the records %s and %s, and 1", got, len(open),
			legacyKeys[0], legacyKeys[2])
	}
	return entries, open
}

// FuzzOutboxLoad: an outbox restarts on whatever its store holds, in either layout. A
// damaged record is skipped (and kept for a human); it neither panics, nor fails the
// start, nor stops the other records: with notifiers that answer, every readable record
// is delivered, refused or falls back, and leaves the store.
func FuzzOutboxLoad(f *testing.F) {
	entries, open := outboxSeeds(f)
	old, oldOpen := legacyFile(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	keys := legacyKeys[:]
	openKeyOf := slices.Collect(maps.Keys(open))[0]
	f.Add(entries[keys[0]], []byte(nil), entries[keys[2]], []byte(nil), open[openKeyOf])
	f.Add([]byte(old[keys[0]]), []byte(old[keys[1]]), []byte(old[keys[2]]), []byte(old[keys[3]]), []byte(oldOpen[openKeyOf]))
	f.Add(entries[keys[0]], []byte(old[keys[1]]), []byte(old[keys[2]]), []byte(old[keys[3]]), []byte(nil))
	f.Add([]byte(old[keys[0]]), []byte(`{"notifier":"pd","group":"nowhere","primaries":["pd","ghost"]}`), entries[keys[2]], []byte(nil), []byte(`null`))
	f.Add([]byte(`{"notifier":"ghost","is_fallback":true}`), entries[keys[0]], []byte(`not json`), []byte(`{}`), []byte(`{"notifier":"hook"}`))
	f.Add(entries[keys[0]], entries[keys[0]], entries[keys[0]], entries[keys[0]], []byte(nil))
	f.Add([]byte(`{"notifier":"pd","notification":{"action":"trigger"},"fallback":["hook"],"fallback_after":-1}`), []byte(nil), []byte(nil), []byte(nil), []byte(nil))
	f.Add([]byte(`{"parts":[{"notifier":"pd","outcome":"refused"}],"notification":{"action":"trigger"},"fallback":["hook"]}`), []byte(`{"parts":[{"notifier":"pd","outcome":"done"}]}`), []byte(`{"parts":[{"notifier":"pd","outcome":"lost"}]}`), []byte(`{"parts":[]}`), []byte(nil))
	f.Fuzz(func(t *testing.T, rec1, rec2, rec3, rec4, openRec []byte) {
		st := newMemStore()
		for i, raw := range [][]byte{rec1, rec2, rec3, rec4} {
			if len(raw) > 0 { // empty: no such record
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
			if readable(key, raw) {
				t.Errorf("record %s %s was readable but is still stored after the outbox drained", key, raw)
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

// readable is load's test of a record, in either layout.
func readable(key string, raw []byte) bool {
	_, ok := readDelivery(key, raw)
	_, old := readLegacy(raw)
	return ok || old
}
