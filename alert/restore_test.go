package alert

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
)

// memStore is the engine's Store in memory: restarts by the thousand for fuzzing.
type memStore struct {
	mu      sync.Mutex
	buckets map[string]map[string][]byte
}

func newMemStore() *memStore { return &memStore{buckets: map[string]map[string][]byte{}} }

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

func (m *memStore) get(bucket, key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buckets[bucket][key]
}

func restoreConfig(tb testing.TB) *config.Config {
	tb.Helper()
	cfg, err := config.Parse("restore.yaml", []byte(`
vantage: v
defaults: {interval: 10s, timeout: 5s, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 10s}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}, us1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: logs, priority: 1, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: metrics, priority: 2, journeys: [{name: q, steps: [{http: {url: "{{.region.api}}/"}}]}]}
notifiers: {pd: {webhook: {url: "http://127.0.0.1:1/hook"}}}
routes: [{notify: [pd]}]
silences: [{comment: "planned", start: 2026-03-01T00:00:00Z, end: 2026-03-01T01:00:00Z, match: {region: [us1]}}]
`))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// The keys under which a running engine saved the records of restoreSeeds.
const (
	seedRegionKey = "picket/region/eu1"
	seedTargetA   = "logs/a@eu1"
	seedTargetQ   = "metrics/q@eu1"
)

// restoreSeeds runs an engine until eu1 is paged as a region and a silence was made,
// and returns its store: real records to restore. closed is that incident's record once
// eu1 recovered.
func restoreSeeds(tb testing.TB) (st *memStore, closed []byte) {
	tb.Helper()
	st = newMemStore()
	c := &testClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	e, err := NewEngine(EngineOptions{Config: restoreConfig(tb), Store: st, Outbox: &recordingOutbox{}, Now: c.now})
	if err != nil {
		tb.Fatal(err)
	}
	e.Observe(resultOf(seedTargetA, "down"))
	e.Observe(resultOf(seedTargetQ, "down"))
	c.t = c.t.Add(11 * time.Second)
	e.Tick()
	if _, err := e.AddSilence(Silence{Comment: "db migration", Creator: "ops", Start: c.t, End: c.t.Add(time.Hour),
		Match: config.Match{Region: []string{"us1"}}}); err != nil {
		tb.Fatal(err)
	}
	if st.get(BucketIncidents, seedRegionKey) == nil || len(st.buckets[BucketSilences]) != 1 {
		tb.Fatalf("seed engine stored %v, want the eu1 region incident and a silence", st.buckets)
	}
	// The same run goes on in a copy until eu1 recovers, for a closed record.
	after := newMemStore()
	for bucket, recs := range st.buckets {
		for k, v := range recs {
			after.putRaw(bucket, k, v)
		}
	}
	e.store, e.j = after, newJournal(after, e.savesFailed) // (the engine writes through its journal)
	e.Observe(resultOf(seedTargetA, "up"))
	e.Observe(resultOf(seedTargetQ, "up"))
	for k, raw := range after.buckets[BucketClosed] {
		if strings.HasSuffix(k, " "+seedRegionKey) { // (the absorbed target incident closes too)
			closed = raw
		}
	}
	if closed == nil {
		tb.Fatalf("seed engine closed nothing once eu1 recovered: %v", after.buckets)
	}
	return st, closed
}

// TestDamagedRecordsAreSkippedOnRestore: one damaged state, incident or silence is
// logged and skipped; the engine starts and restores the others.
func TestDamagedRecordsAreSkippedOnRestore(t *testing.T) {
	seeds, _ := restoreSeeds(t)
	cases := map[string]struct{ bucket, key string }{
		"state":    {BucketStates, seedTargetQ},
		"incident": {BucketIncidents, "picket/target/metrics/q@us1"},
		"silence":  {BucketSilences, "0123456789abcdef"},
		// Readable, but not the record of its key: saving it back would overwrite another.
		"state of another target": {BucketStates, "logs/a@us1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := newMemStore()
			for bucket, recs := range seeds.buckets {
				for k, v := range recs {
					st.putRaw(bucket, k, v)
				}
			}
			damaged := []byte(`{"target": 12`)
			if name == "state of another target" {
				damaged = seeds.get(BucketStates, seedTargetA)
			}
			st.putRaw(tc.bucket, tc.key, damaged)
			var logs bytes.Buffer
			c := &testClock{t: time.Date(2026, 3, 2, 10, 1, 0, 0, time.UTC)}
			e, err := NewEngine(EngineOptions{Config: restoreConfig(t), Store: st, Outbox: &recordingOutbox{}, Now: c.now,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("NewEngine with a damaged %s: %v, want it skipped", tc.bucket, err)
			}
			if !strings.Contains(logs.String(), "skipping a damaged") || !strings.Contains(logs.String(), tc.key) {
				t.Errorf("want a log line naming the damaged record %s, got:\n%s", tc.key, logs.String())
			}
			if inc, ok := e.Incident(seedRegionKey); !ok || !inc.Triggered {
				t.Errorf("the paged eu1 incident was not restored beside the damaged record: %+v, %v", inc, ok)
			}
			if n := len(e.Silences()); n != 1 { // the run-time one (the config's has ended)
				t.Errorf("restored %d silences, want 1", n)
			}
			e.Observe(resultOf("logs/a@us1", "up"))
			if !bytes.Equal(st.get(BucketStates, seedTargetA), seeds.get(BucketStates, seedTargetA)) {
				t.Errorf("the state of %s changed on a restart and a result of logs/a@us1: %s", seedTargetA, st.get(BucketStates, seedTargetA))
			}
		})
	}
}

// FuzzEngineRestore: an engine restarts on whatever its store holds (real records of a
// paged region, a silence and a closed incident, or damaged ones), then runs: it neither
// panics nor fails to start, and whatever it writes back restores cleanly.
func FuzzEngineRestore(f *testing.F) {
	seeds, closedRaw := restoreSeeds(f)
	var silenceID string
	for id := range seeds.buckets[BucketSilences] {
		silenceID = id
	}
	var closedInc Incident
	if err := json.Unmarshal(closedRaw, &closedInc); err != nil {
		f.Fatal(err)
	}
	closedKey := closedInc.Opened.UTC().Format("20060102T150405.000000000Z") + " " + closedInc.Key
	stateA, stateQ := seeds.get(BucketStates, seedTargetA), seeds.get(BucketStates, seedTargetQ)
	incident, silence := seeds.get(BucketIncidents, seedRegionKey), seeds.get(BucketSilences, silenceID)
	f.Add(stateA, stateQ, incident, silence, closedRaw)
	f.Add(stateQ, stateA, closedRaw, []byte(`{"id":"`+silenceID+`","match":{"scope":["global"]}}`), incident)
	f.Add([]byte(`{"target":"`+seedTargetA+`","state":"firing","condition":"degraded","recent_len":-5,"failures":-1}`),
		[]byte(`{"target":"`+seedTargetQ+`","state":"pending","cert":{}}`),
		[]byte(`{"key":"`+seedRegionKey+`","scope":"global","targets":["x","logs/a@eu1","@","/"],"absorbed_into":"`+seedRegionKey+`","timeline":[]}`),
		[]byte(`null`), []byte(`{"key":""}`))
	f.Add([]byte(`{`), []byte(nil), []byte(`[]`), []byte(`{"id":1}`), []byte(`"closed"`))
	cfg := restoreConfig(f) // immutable: shared by every run
	f.Fuzz(func(t *testing.T, stA, stQ, inc, sil, closed []byte) {
		st := newMemStore()
		put := func(bucket, key string, raw []byte) {
			if len(raw) > 0 { // empty: no such record
				st.putRaw(bucket, key, raw)
			}
		}
		put(BucketStates, seedTargetA, stA)
		put(BucketStates, seedTargetQ, stQ)
		put(BucketIncidents, seedRegionKey, inc)
		put(BucketSilences, silenceID, sil)
		put(BucketClosed, closedKey, closed)
		before := snapshotStore(st)
		c := &testClock{t: time.Date(2026, 3, 2, 10, 5, 0, 0, time.UTC)}
		e, err := NewEngine(EngineOptions{Config: cfg, Store: st, Outbox: &recordingOutbox{}, Now: c.now,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("restart on damaged records failed: %v", err)
		}
		runRestored(t, e, c)
		checkWrittenBack(t, st, before)
	})
}

// runRestored drives a restored engine through what a daemon does next: results,
// ticks past the group wait, reads of the status page and the API.
func runRestored(t *testing.T, e *Engine, c *testClock) {
	t.Helper()
	_ = e.Snapshot()
	for _, round := range [][2]string{{"down", "up"}, {"down", "down"}, {"up", "up"}} {
		e.Observe(resultOf(seedTargetA, round[0]))
		e.Observe(resultOf("logs/a@us1", round[1]))
		e.Observe(resultOf(seedTargetQ, round[1]))
		c.t = c.t.Add(11 * time.Second)
		e.Tick()
		_ = e.Snapshot()
	}
	if _, err := e.Closed(0); err != nil {
		t.Errorf("closed incidents: %v", err)
	}
	if _, _, err := e.FindIncident(seedRegionKey); err != nil {
		t.Errorf("find incident: %v", err)
	}
	_ = e.Silences()
}

func snapshotStore(st *memStore) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for bucket, recs := range st.buckets {
		out[bucket] = maps.Clone(recs)
	}
	return out
}

// checkWrittenBack: every record the engine wrote is one the next restart reads as the
// record of its key.
func checkWrittenBack(t *testing.T, st *memStore, before map[string]map[string][]byte) {
	t.Helper()
	for bucket, recs := range st.buckets {
		for key, raw := range recs {
			if bytes.Equal(before[bucket][key], raw) {
				continue // not written by this run
			}
			var own string
			var err error
			switch bucket {
			case BucketStates:
				var s TargetState
				err, own = json.Unmarshal(raw, &s), s.Target
			case BucketIncidents:
				var inc Incident
				err, own = json.Unmarshal(raw, &inc), inc.Key
			case BucketSilences:
				var s Silence
				err, own = json.Unmarshal(raw, &s), s.ID
			case BucketClosed:
				var inc Incident
				err = json.Unmarshal(raw, &inc)
				own = inc.Opened.UTC().Format("20060102T150405.000000000Z") + " " + inc.Key
			case BucketOpenings:
				var o opening
				err, own = json.Unmarshal(raw, &o), o.Key
			}
			if err != nil || own != key {
				t.Errorf("wrote %s/%s that the next start cannot restore (own key %q, %v): %s", bucket, key, own, err, raw)
			}
		}
	}
}

// TestDamagedClosedIncidentIsSkipped: the API's list of closed incidents (and the page's)
// goes on without a damaged record rather than failing for good.
func TestDamagedClosedIncidentIsSkipped(t *testing.T) {
	st, closed := restoreSeeds(t)
	st.putRaw(BucketClosed, "20260302T100000.000000000Z picket/region/eu1", closed)
	st.putRaw(BucketClosed, "20260302T100001.000000000Z picket/region/us1", []byte(`"half a rec`))
	var logs bytes.Buffer
	e, err := NewEngine(EngineOptions{Config: restoreConfig(t), Store: st, Outbox: &recordingOutbox{},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Closed(0)
	if err != nil || len(got) != 1 || got[0].Key != seedRegionKey {
		t.Fatalf("Closed = %d incidents, %v; want the one readable record", len(got), err)
	}
	if !strings.Contains(logs.String(), "skipping a damaged") || !strings.Contains(logs.String(), "picket/region/us1") {
		t.Errorf("want a log line naming the damaged record, got:\n%s", logs.String())
	}
	if inc, ok, err := LoadIncident(st, seedRegionKey); err != nil || !ok || inc.Key != seedRegionKey {
		t.Errorf("LoadIncident = %v, %v, %v; want the closed incident", inc.Key, ok, err)
	}
}
