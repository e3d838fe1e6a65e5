package cluster

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/internal/store"
)

var _ PageStore = (*store.Store)(nil)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPageRecordsSurviveARestart: a member records pages, stops, and its next process
// (same store) knows them before any peer is heard, skips a damaged record with a log
// line, outranks its old records with its next ones, and a fresh member that joins
// learns them by gossip as before.
func TestPageRecordsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	first := startTuned(t, "a", nil, func(o *Options) { o.Store = st })
	first.RecordPage("picket/region/eu1", true)
	first.ConfirmPage("picket/region/eu1", true)
	first.RecordPage("picket/vantage/c", false)
	paged, _ := first.Page("picket/region/eu1")
	oldVersion := first.pages["picket/region/eu1"].version
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(PagesBucket, "picket/region/us1", "not a page record"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	t.Cleanup(func() { _ = st.Close() }) // after the members: cleanups run last first
	logs := &testkit.Buffer{}
	a := startTuned(t, "a", nil, func(o *Options) {
		o.Store = st
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	if got, ok := a.Page("picket/region/eu1"); !ok || got != paged {
		t.Fatalf("after a restart: %+v, %v; want %+v", got, ok, paged)
	}
	if got, ok := a.Page("picket/vantage/c"); !ok || got.Open || got.Confirmed {
		t.Errorf("after a restart the unconfirmed resolve is %+v, %v", got, ok)
	}
	if !strings.Contains(logs.String(), "skipping a damaged page record") || !strings.Contains(logs.String(), "picket/region/us1") {
		t.Errorf("want a log line naming the damaged record, got:\n%s", logs.String())
	}
	a.RecordPage("picket/region/eu1", false)
	if v := a.pages["picket/region/eu1"].version; v <= oldVersion {
		t.Errorf("a record made after the restart has version %d, not above the loaded %d", v, oldVersion)
	}
	b := start(t, "b", nil, a)
	testkit.WaitFor(t, 5*time.Second, "b to learn the page records by gossip", func() bool {
		p, ok := b.Page("picket/vantage/c")
		q, _ := b.Page("picket/region/eu1")
		return ok && p.By == "a" && !q.Open
	})
}

// countingStore is a PageStore in memory that counts writes.
type countingStore struct {
	mu      sync.Mutex
	records map[string][]byte
	writes  []string // keys put or deleted, in order
}

func (s *countingStore) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	s.mu.Lock()
	recs := maps.Clone(s.records)
	s.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		if err := fn(k, recs[k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *countingStore) Batch(bucket string, puts map[string]any, deletes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records == nil {
		s.records = map[string][]byte{}
	}
	for k, v := range puts {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		s.records[k] = raw
		s.writes = append(s.writes, k)
	}
	for _, k := range deletes {
		delete(s.records, k)
		s.writes = append(s.writes, "-"+k)
	}
	return nil
}

func (s *countingStore) written() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.writes)
	s.writes = nil
	slices.Sort(out)
	return out
}

// bareWithStore is bare with a page store; tests call flushPages themselves.
func bareWithStore(name string, st PageStore) *Cluster {
	c := bare(name)
	c.logger = slog.New(slog.DiscardHandler)
	c.pageStore, c.unsaved, c.saveWake = st, map[string]bool{}, make(chan struct{}, 1)
	return c
}

func flush(t *testing.T, c *Cluster) {
	t.Helper()
	if err := c.flushPages(); err != nil {
		t.Fatal(err)
	}
}

// TestPageRecordsAreWrittenOnChangeOnly: the same record heard again, an older one, or
// a push-pull with nothing new writes nothing.
func TestPageRecordsAreWrittenOnChangeOnly(t *testing.T) {
	st := &countingStore{}
	c := bareWithStore("m", st)
	p := pageRecord{Page: Page{Key: "k", Open: true, By: "x", At: time.UnixMilli(1000)}, version: 3}
	c.applyPage(p)
	flush(t, c)
	if got := st.written(); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("a new record wrote %v, want k", got)
	}
	older := p
	older.version = 2
	c.applyPage(p)
	c.applyPage(older)
	c.mergeState(clusterState{pages: []pageRecord{p, older}})
	flush(t, c)
	if got := st.written(); len(got) != 0 {
		t.Fatalf("nothing new wrote %v", got)
	}
	c.RecordPage("k2", true)
	c.ConfirmPage("k2", true)
	flush(t, c)
	if got := st.written(); !slices.Equal(got, []string{"k2"}) {
		t.Fatalf("a recorded and confirmed page wrote %v, want k2 once", got)
	}
}

// TestStoredPagesKeepTheBound: the store holds what memory holds: past the limit the
// dropped records (closed first, oldest first) are deleted there too, and a store with
// more records than the limit is trimmed when it loads.
func TestStoredPagesKeepTheBound(t *testing.T) {
	st := &countingStore{}
	c := bareWithStore("m", st)
	c.pageLimit = 10
	at := time.UnixMilli(1_764_000_000_000)
	for i := range 10 {
		open := i >= 3 // three closed records, the oldest
		c.applyPage(pageRecord{Page: Page{Key: fmt.Sprintf("k%02d", i), Open: open, By: "x", At: at.Add(time.Duration(i) * time.Second)}, version: 1})
	}
	flush(t, c)
	_ = st.written()
	c.applyPage(pageRecord{Page: Page{Key: "k10", Open: true, By: "x", At: at.Add(time.Minute)}, version: 1})
	flush(t, c)
	if got, want := st.written(), []string{"-k00", "-k01", "k10"}; !slices.Equal(got, want) {
		t.Fatalf("the 11th record of 10 wrote %v, want %v (the two oldest closed dropped)", got, want)
	}
	if n := len(st.records); n != 9 {
		t.Fatalf("the store holds %d records, want 9", n)
	}

	// A store from a member with a higher bound: trimmed on load, closed first.
	restarted := bareWithStore("m", st)
	restarted.pageLimit = 5
	if err := restarted.loadPages(); err != nil {
		t.Fatal(err)
	}
	flush(t, restarted)
	if got := slices.Sorted(maps.Keys(st.records)); !slices.Equal(got, []string{"k06", "k07", "k08", "k09", "k10"}) {
		t.Fatalf("after loading 9 records with a bound of 5 the store holds %v", got)
	}
}
