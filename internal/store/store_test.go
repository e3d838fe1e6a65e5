package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(runCrashChild()) // see crash_test.go: this process is the one killed
	}
	goleak.VerifyTestMain(m)
}

type incident struct {
	Key    string    `json:"key"`
	Scope  string    `json:"scope"`
	Since  time.Time `json:"since"`
	Events int       `json:"events"`
}

// open opens a store in dir and closes it after the test, checking Close.
func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestOpenCreatesPrivateDirAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	s := open(t, dir, Options{})
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("state dir mode %o, want 700", perm)
	}
	info, err = os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %o, want 600", perm)
	}
	if s.Path() != filepath.Join(dir, FileName) {
		t.Errorf("Path() = %s", s.Path())
	}
}

func TestOpenRejectsEmptyDir(t *testing.T) {
	if _, err := Open("", Options{}); err == nil || !strings.Contains(err.Error(), "state directory") {
		t.Fatalf("Open(\"\") = %v, want an error naming the state directory", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	want := incident{Key: "global", Scope: "global", Since: since, Events: 3}
	if err := s.Put("incidents", "global", want); err != nil {
		t.Fatalf("Put: %v", err)
	}
	var got incident
	found, err := s.Get("incidents", "global", &got)
	if err != nil || !found {
		t.Fatalf("Get = %v, %v; want found", found, err)
	}
	if got != want {
		t.Errorf("Get = %+v, want %+v", got, want)
	}

	if err := s.Put("incidents", "global", incident{Key: "global", Events: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("incidents", "global", &got); err != nil || got.Events != 4 {
		t.Errorf("after overwrite Get = %+v, %v; want Events 4", got, err)
	}

	if err := s.Delete("incidents", "global"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if found, err := s.Get("incidents", "global", &got); found || err != nil {
		t.Errorf("Get after Delete = %v, %v; want not found", found, err)
	}
}

func TestAbsentIsNotAnError(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	var v incident
	if found, err := s.Get("nobucket", "k", &v); found || err != nil {
		t.Errorf("Get from a missing bucket = %v, %v", found, err)
	}
	if err := s.Delete("nobucket", "k"); err != nil {
		t.Errorf("Delete from a missing bucket: %v", err)
	}
	if err := s.Put("b", "k", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("b", "other"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if err := s.ForEach("nobucket", func(string, []byte) error { return errors.New("called") }); err != nil {
		t.Errorf("ForEach over a missing bucket: %v", err)
	}
}

func TestGetWrongShapeSaysWhat(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	if err := s.Put("b", "k", "a string"); err != nil {
		t.Fatal(err)
	}
	var v incident
	found, err := s.Get("b", "k", &v)
	if !found || err == nil || !strings.Contains(err.Error(), "b/k") || !strings.Contains(err.Error(), "*store.incident") {
		t.Errorf("Get into the wrong type = %v, %v; want found and an error naming key and type", found, err)
	}
}

func TestNamesAreChecked(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	cases := []struct {
		name   string
		bucket string
		key    string
		want   string
	}{
		{"empty bucket", "", "k", "bucket name"},
		{"empty key", "b", "", "key of 1 to"},
		{"huge key", "b", strings.Repeat("k", 40000), "key of 1 to"},
		{"reserved bucket", "_history", "k", "store's own"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Put(tc.bucket, tc.key, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Put = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := s.Put("b", "k", func() {}); err == nil || !strings.Contains(err.Error(), "JSON can encode") {
		t.Errorf("Put(func) = %v, want an encoding error", err)
	}
	if err := s.ForEach("_history", func(string, []byte) error { return nil }); err == nil {
		t.Error("ForEach over the reserved history bucket succeeded")
	}
}

func TestForEachOrderStopAndWriteInside(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	for _, k := range []string{"b", "a10", "a2", "c"} {
		if err := s.Put("o", k, k); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	err := s.ForEach("o", func(key string, raw []byte) error {
		keys = append(keys, key)
		if string(raw) != `"`+key+`"` {
			t.Errorf("raw of %s = %s", key, raw)
		}
		// Allowed: fn runs outside the read transaction.
		return s.Put("copy", key, key)
	})
	if err != nil {
		t.Fatalf("ForEach: %v", err)
	}
	if got := strings.Join(keys, ","); got != "a10,a2,b,c" {
		t.Errorf("order %s, want bytewise a10,a2,b,c", got)
	}
	n := 0
	if err := s.ForEach("copy", func(string, []byte) error { n++; return nil }); err != nil || n != 4 {
		t.Errorf("writes inside ForEach: %d records, %v", n, err)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.ForEach("o", func(string, []byte) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ForEach with a failing fn = %v after %d calls, want stop after 1", err, calls)
	}
}

func TestNextSeqIsMonotonicAndDurable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 3; want++ {
		if got, err := s.NextSeq("outbox"); err != nil || got != want {
			t.Fatalf("NextSeq = %d, %v; want %d", got, err, want)
		}
	}
	if got, _ := s.NextSeq("other"); got != 1 {
		t.Errorf("another bucket's first NextSeq = %d, want 1", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{})
	if got, err := s.NextSeq("outbox"); err != nil || got != 4 {
		t.Errorf("NextSeq after reopen = %d, %v; want 4 (never reused)", got, err)
	}
}

func TestReopenAfterCloseKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := s.Put("states", fmt.Sprintf("t%02d", i), incident{Events: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Put("states", "late", 1); err == nil {
		t.Error("Put after Close succeeded")
	}
	s = open(t, dir, Options{})
	var v incident
	if found, err := s.Get("states", "t42", &v); !found || err != nil || v.Events != 42 {
		t.Errorf("after reopen Get(t42) = %+v, %v, %v", v, found, err)
	}
	n := 0
	_ = s.ForEach("states", func(string, []byte) error { n++; return nil })
	if n != 50 {
		t.Errorf("after reopen %d records, want 50", n)
	}
}

func TestSecondOpenTimesOutClearly(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	const wait = 150 * time.Millisecond
	begin := time.Now()
	second, err := Open(dir, Options{Timeout: wait})
	took := time.Since(begin)
	if err == nil {
		second.Close()
		t.Fatal("a second Open on a held state dir succeeded")
	}
	if !errors.Is(err, ErrLocked) || !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("error %v, want ErrLocked wrapping bbolt's timeout", err)
	}
	for _, part := range []string{filepath.Join(dir, FileName), "another process", "150ms"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
	if took < wait-60*time.Millisecond || took > wait+2*time.Second {
		t.Errorf("gave up after %s, want about %s", took, wait)
	}
}

// TestReadOnlyBesideWriter records what bbolt does on Linux: the writer's exclusive
// flock keeps a read-only open out, and says so; once the writer is gone, readers
// get in, several at once, and cannot write.
func TestReadOnlyBesideWriter(t *testing.T) {
	dir := t.TempDir()
	writer, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Put("incidents", "global", incident{Key: "global"}); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	reader, err := Open(dir, Options{ReadOnly: true})
	if err == nil {
		reader.Close()
		t.Fatal("a read-only Open beside the writer succeeded; the package comment says it cannot")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), "daemon") {
		t.Errorf("read-only beside writer: %v, want ErrLocked explaining the daemon holds it", err)
	}
	if took := time.Since(begin); took > DefaultReadOnlyTimeout+time.Second {
		t.Errorf("read-only open waited %s, want about %s", took, DefaultReadOnlyTimeout)
	}

	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	r1 := open(t, dir, Options{ReadOnly: true})
	r2 := open(t, dir, Options{ReadOnly: true})
	var v incident
	if found, err := r2.Get("incidents", "global", &v); !found || err != nil || v.Key != "global" {
		t.Errorf("read-only Get = %+v, %v, %v", v, found, err)
	}
	if err := r1.Put("incidents", "x", 1); !errors.Is(err, bolterrors.ErrDatabaseReadOnly) || !strings.Contains(err.Error(), "ReadOnly") {
		t.Errorf("Put on a read-only store = %v, want ErrDatabaseReadOnly explained", err)
	}
	if _, err := Open(dir, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("a writer beside readers: %v, want ErrLocked", err)
	}
}

func TestReadOnlyNeedsAnExistingDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	_, err := Open(dir, Options{ReadOnly: true})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "existing database") {
		t.Fatalf("read-only Open of a missing db = %v, want a not-exist error saying so", err)
	}
	if _, statErr := os.Stat(dir); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a read-only Open created %s", dir)
	}
}

func TestUpdateIsAllOrNothing(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	if err := s.Put("states", "kept", 1); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if err := tx.Put("states", "a", 1); err != nil {
			return err
		}
		if err := tx.Delete("states", "kept"); err != nil {
			return err
		}
		if _, err := tx.NextSeq("states"); err != nil {
			return err
		}
		var v int
		if found, err := tx.Get("states", "a", &v); !found || err != nil || v != 1 {
			t.Errorf("inside the transaction Get(a) = %d, %v, %v; want its own write", v, found, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	var v int
	if found, _ := s.Get("states", "a", &v); found {
		t.Error("a write of a failed transaction is visible")
	}
	if found, _ := s.Get("states", "kept", &v); !found {
		t.Error("a delete of a failed transaction took effect")
	}
	if seq, _ := s.NextSeq("states"); seq != 1 {
		t.Errorf("NextSeq after a rolled-back NextSeq = %d, want 1", seq)
	}

	func() {
		defer func() { _ = recover() }()
		_ = s.Update(func(tx *Tx) error {
			_ = tx.Put("states", "panicked", 1)
			panic("fn panics")
		})
	}()
	if found, _ := s.Get("states", "panicked", &v); found {
		t.Error("a write of a panicking transaction is visible")
	}
}

func TestUpdateCommitsTogether(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	err := s.Update(func(tx *Tx) error {
		seq, err := tx.NextSeq("outbox")
		if err != nil {
			return err
		}
		if err := tx.Put("outbox", fmt.Sprintf("%020d", seq), "entry"); err != nil {
			return err
		}
		return tx.Put("incidents", "k", "open")
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	var got []string
	err = s.View(func(tx *Tx) error {
		return tx.ForEach("outbox", func(key string, raw []byte) error {
			got = append(got, key+"="+string(raw))
			return nil
		})
	})
	if err != nil || len(got) != 1 || got[0] != `00000000000000000001="entry"` {
		t.Errorf("outbox after Update = %v, %v", got, err)
	}
	if err := s.View(func(tx *Tx) error { return tx.Put("x", "y", 1) }); err == nil {
		t.Error("Put inside View succeeded")
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	var wg sync.WaitGroup
	const writers, each = 4, 10
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.Put("c", fmt.Sprintf("%d-%d", w, i), i); err != nil {
					t.Errorf("Put: %v", err)
				}
				if _, err := s.NextSeq("seq"); err != nil {
					t.Errorf("NextSeq: %v", err)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	_ = s.ForEach("c", func(string, []byte) error { n++; return nil })
	if seq, _ := s.NextSeq("seq"); n != writers*each || seq != writers*each+1 {
		t.Errorf("%d records and next seq %d, want %d and %d", n, seq, writers*each, writers*each+1)
	}
}

func BenchmarkPut(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	v := incident{Key: "logs/search@eu1", Scope: "target", Since: time.Now(), Events: 1}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put("bench", fmt.Sprintf("%08d", i%1000), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	if err := s.Put("pages", "gone", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Batch("pages", map[string]any{"a": 1, "b": "two"}, []string{"gone", "never-there"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	_ = s.ForEach("pages", func(key string, raw []byte) error { got[key] = string(raw); return nil })
	if len(got) != 2 || got["a"] != "1" || got["b"] != `"two"` {
		t.Fatalf("after a batch: %v, want a and b, gone deleted", got)
	}
	err := s.Batch("pages", map[string]any{"c": 3, "": 4}, []string{"a"})
	if err == nil || !strings.Contains(err.Error(), "key of 1 to") {
		t.Fatalf("a batch with an empty key: %v, want an error", err)
	}
	if ok, _ := s.Get("pages", "c", new(int)); ok {
		t.Errorf("a failed batch wrote c")
	}
	if ok, _ := s.Get("pages", "a", new(int)); !ok {
		t.Errorf("a failed batch deleted a")
	}
}

// TestCommitWritesSeveralBucketsInOrderAllOrNothing: the engine's group commit puts
// and deletes records of several buckets in one transaction, in order (a put then a
// delete of one key leaves it deleted); a bad name fails it before anything is
// written.
func TestCommitWritesSeveralBucketsInOrderAllOrNothing(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	if err := s.Put("incidents", "k", 1); err != nil {
		t.Fatal(err)
	}
	err := s.CommitWrites([]Write{
		{Bucket: "states", Key: "a", Raw: []byte(`{"state":"firing"}`)},
		{Bucket: "closed", Key: "t k", Raw: []byte(`2`)},
		{Bucket: "incidents", Key: "k", Delete: true},
		{Bucket: "states", Key: "b", Raw: []byte(`3`)},
		{Bucket: "states", Key: "b", Delete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		bucket, key string
		want        bool
	}{{"states", "a", true}, {"closed", "t k", true}, {"incidents", "k", false}, {"states", "b", false}} {
		if ok, _ := s.Get(c.bucket, c.key, new(any)); ok != c.want {
			t.Errorf("%s/%s present %v, want %v", c.bucket, c.key, ok, c.want)
		}
	}
	for name, bad := range map[string]Write{"empty key": {Bucket: "states", Raw: []byte("1")}, "empty bucket": {Key: "c", Raw: []byte("1")}} {
		err := s.CommitWrites([]Write{{Bucket: "states", Key: "d", Raw: []byte("4")}, bad})
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if ok, _ := s.Get("states", "d", new(int)); ok {
			t.Errorf("%s: a failed commit wrote d", name)
		}
	}
}

// TestCommitNumbersAndWritesInOneTransaction: n records get the next n numbers, above
// what memory numbered, and land together with the other writes (in any bucket, deletes
// too); a failing fill writes nothing and uses no number; n 0 numbers nothing.
func TestCommitNumbersAndWritesInOneTransaction(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fill := func(n int, more map[string]any) func(uint64) (map[string]map[string]any, error) {
		return func(first uint64) (map[string]map[string]any, error) {
			out := map[string]any{}
			for i := range n {
				out[fmt.Sprintf("%03d", first+uint64(i))] = i
			}
			return map[string]map[string]any{"b": out, "other": more}, nil
		}
	}
	if first, err := s.Commit("b", 3, 0, fill(3, map[string]any{"x": 1, "y": 2})); err != nil || first != 1 {
		t.Fatalf("first commit: %d, %v; want 1", first, err)
	}
	failing := func(uint64) (map[string]map[string]any, error) { return nil, errors.New("no") }
	if _, err := s.Commit("b", 2, 0, failing); err == nil {
		t.Fatal("a failing fill: want its error")
	}
	if first, err := s.Commit("b", 2, 10, fill(2, map[string]any{"x": nil})); err != nil || first != 11 {
		t.Fatalf("commit after 10 numbered in memory: %d, %v; want 11", first, err)
	}
	if first, err := s.Commit("b", 0, 0, fill(0, map[string]any{"z": 3})); err != nil || first != 0 {
		t.Fatalf("commit of nothing numbered: %d, %v; want 0", first, err)
	}
	keysOf := func(bucket string) string {
		var keys []string
		_ = s.ForEach(bucket, func(k string, _ []byte) error { keys = append(keys, k); return nil })
		return strings.Join(keys, ",")
	}
	if got := keysOf("b"); got != "001,002,003,011,012" {
		t.Errorf("stored %s; want 001,002,003,011,012", got)
	}
	if got := keysOf("other"); got != "y,z" {
		t.Errorf("other holds %s; want y,z (x deleted by the second commit)", got)
	}
	if seq, err := s.NextSeq("b"); err != nil || seq != 13 {
		t.Errorf("next sequence %d, %v; want 13", seq, err)
	}
}
