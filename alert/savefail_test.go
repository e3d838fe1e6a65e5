package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/probe"
)

// mapStore is an in-memory Store that can be made to refuse writes.
type mapStore struct {
	mu      sync.Mutex
	data    map[string]map[string][]byte
	refuse  error // set: every Put and Delete fails with it
	refused int
}

func (m *mapStore) Put(bucket, key string, v any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse != nil {
		m.refused++
		return m.refuse
	}
	if m.data == nil {
		m.data = map[string]map[string][]byte{}
	}
	if m.data[bucket] == nil {
		m.data[bucket] = map[string][]byte{}
	}
	m.data[bucket][key] = []byte(fmt.Sprint(v))
	return nil
}

func (m *mapStore) Delete(bucket, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse != nil {
		m.refused++
		return m.refuse
	}
	delete(m.data[bucket], key)
	return nil
}

func (m *mapStore) ForEach(string, func(key string, raw []byte) error) error { return nil }

func (m *mapStore) keys(bucket string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data[bucket])
}

// levelCounter counts log records per level.
type levelCounter struct {
	mu    sync.Mutex
	count map[slog.Level]int
	last  string
}

func (l *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *levelCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == nil {
		l.count = map[slog.Level]int{}
	}
	l.count[r.Level]++
	if r.Level >= slog.LevelError {
		l.last = r.Message
	}
	return nil
}
func (l *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levelCounter) WithGroup(string) slog.Handler      { return l }

func (l *levelCounter) errors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[slog.LevelError]
}

// TestFailingSavesNeitherStopPagingNorFloodTheLog: with every save refused (a full disk),
// the engine still pages, and says so at most once a minute with a count, not once per
// save (measured before: a line per result and tick).
func TestFailingSavesNeitherStopPagingNorFloodTheLog(t *testing.T) {
	c := &testClock{t: time.Unix(1000, 0)}
	ob := &recordingOutbox{}
	st := &mapStore{refuse: errors.New("write picket.db: no space left on device")}
	logs := &levelCounter{}
	e, err := NewEngine(EngineOptions{Config: engineConfig(t, "0s"), Store: st, Outbox: ob, Now: c.now, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1200 { // two minutes, a round of results every 100 ms
		status := "down"
		if i%50 >= 25 { // and flapping, so that states and incidents change
			status = "up"
		}
		e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", status), resultOf("metrics/q@eu1", status)})
		e.Tick()
		c.t = c.t.Add(100 * time.Millisecond)
	}
	triggers := 0
	for _, l := range ob.lines() {
		if strings.HasPrefix(l, "trigger picket/region/eu1") {
			triggers++
		}
	}
	if triggers == 0 {
		t.Fatalf("no page while saves fail: %v", ob.lines())
	}
	if n := logs.errors(); n > 3 || n == 0 {
		t.Errorf("%d ERROR lines for %d refused saves over two minutes, want 1 to 3 (one a minute)", n, st.refused)
	}
}

// TestPersistAgainWritesMemoryToAFreshStore: after the store started a fresh file, the
// engine writes its states and open incidents again.
func TestPersistAgainWritesMemoryToAFreshStore(t *testing.T) {
	c := &testClock{t: time.Unix(1000, 0)}
	st := &mapStore{}
	e, err := NewEngine(EngineOptions{Config: engineConfig(t, "0s"), Store: st, Outbox: &recordingOutbox{}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down")})
	st.mu.Lock()
	st.data = nil // the fresh file
	st.mu.Unlock()
	e.PersistAgain()
	if n := st.keys(BucketStates); n != 4 {
		t.Errorf("%d states written again, want 4", n)
	}
	if n := st.keys(BucketIncidents); n != 1 {
		t.Errorf("%d open incidents written again, want 1", n)
	}
}
