// Package store is Picket's embedded persistence: one bbolt file per state_dir that
// holds JSON records in named buckets (target states, incidents, the notification
// outbox, the timeline) and per-target result history for the uptime bars.
//
// Every write is one bbolt transaction with fsync (NoSync stays false): when a call
// returns nil, the data survives the process being killed, and the machine losing
// power as far as the disk honours fsync.
//
// One process at a time: bbolt takes an exclusive flock on the file, so a second
// daemon on the same state_dir gets ErrLocked after Options.Timeout. A read-only open
// takes a shared flock, which on Unix cannot coexist with the writer's exclusive one:
// `picket incidents export` against a running daemon gets ErrLocked too (quickly) and
// must ask the daemon's API instead. Readers do coexist with other readers.
//
// A damaged file never panics the process (bbolt panics on pages it finds corrupt, and
// a read of its mapping past the end of a truncated file is a SIGBUS): Open checks the
// whole file, and a file found damaged, deleted, replaced or truncated is moved aside
// as picket.db.damaged-<UTC time> and a fresh one started in its place (see file.go
// and watch.go). Callers learn of it from Health and write again what they hold in
// memory; what was only in the lost file is gone, and the store says so loudly.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/lograte"
)

// FileName is the database file inside the state directory.
const FileName = "picket.db"

// Lock waits when Options.Timeout is zero.
const (
	DefaultTimeout         = 2 * time.Second
	DefaultReadOnlyTimeout = 200 * time.Millisecond
)

// reservedPrefix starts the names of the store's own buckets (history); the generic
// record API refuses them so a caller cannot corrupt their binary layout.
const reservedPrefix = "_"

// ErrLocked means another process holds the database (a running daemon).
var ErrLocked = errors.New("store: database is locked by another process")

// ErrClosed is the error of every call after Close.
var ErrClosed = errors.New("store: closed")

// Options configure Open.
type Options struct {
	// Timeout is how long to wait for the file lock; 0 means DefaultTimeout
	// (DefaultReadOnlyTimeout with ReadOnly).
	Timeout time.Duration
	// ReadOnly opens an existing database for reading only (shared lock). It fails
	// with ErrLocked while a writer has it open (see the package comment). A damaged
	// file is an error then: only a writer moves it aside.
	ReadOnly bool
	// Logger hears of a damaged, deleted or replaced file and of failing writes, at
	// ERROR (failing writes at most once a minute, with a count); nil: discard.
	Logger *slog.Logger
	// Clock times Watch and the failing-write log; nil: the real clock.
	Clock clock.Clock
}

// Store is an open database. Its methods are safe for concurrent use; bbolt runs one
// writing transaction at a time and readers beside it. The file under it may be
// replaced by a fresh one (see Watch); the Store stays the same.
type Store struct {
	dir      string
	path     string
	readOnly bool
	timeout  time.Duration
	log      *slog.Logger
	clock    clock.Clock

	cur    atomic.Pointer[file]        // nil after Close, or while no fresh file could be made
	noFile atomic.Pointer[noFileError] // why cur is nil, while not closed
	closed atomic.Bool
	kick   chan struct{} // a call found the file damaged: Watch looks at once

	// resetMu makes the checks of Watch and Close take turns; lost is the loss a
	// fresh file is still owed for (it could not be created yet).
	resetMu sync.Mutex
	lost    *Reset

	// seqs is the highest number NextSeq handed out per bucket, or found in the file
	// at open: a fresh file continues above it, so a number is never handed out twice.
	seqMu sync.Mutex
	seqs  map[string]uint64

	health healthState
	errLog lograte.Limiter
}

// Open opens dir/picket.db, creating dir (0700) and the file (0600) unless ReadOnly.
// A writer checks the whole file first; a damaged one is moved aside and a fresh one
// started (Health().Resets says so). Only a lock held elsewhere, a directory or file
// that cannot be made, or (ReadOnly) a damaged file are errors.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("store: open: expected a state directory, got an empty path")
	}
	path := filepath.Join(dir, FileName)
	if err := prepare(dir, path, opts.ReadOnly); err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
		if opts.ReadOnly {
			timeout = DefaultReadOnlyTimeout
		}
	}
	s := &Store{dir: dir, path: path, readOnly: opts.ReadOnly, timeout: timeout, log: opts.Logger,
		clock: clock.Or(opts.Clock), kick: make(chan struct{}, 1), seqs: map[string]uint64{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	f, err := s.openFile()
	var damaged *damageError
	if errors.As(err, &damaged) && !opts.ReadOnly {
		f, err = s.startAfresh(Reset{At: s.clock.Now(), Reason: damaged.Error()}, "damaged")
	}
	if errors.As(err, &damaged) { // ReadOnly: left as it is for the writer to deal with
		return nil, fmt.Errorf("store: open %s read-only: %w", path, err)
	}
	if err != nil && !opts.ReadOnly && diskTrouble(err) {
		// Not even a fresh file fits: better a daemon that pages without its state than
		// none. Reads see an empty store, writes fail (counted, logged), and Watch makes
		// the file once it can; Health().Resets then says so.
		s.lost = &Reset{At: s.clock.Now(), Reason: "no state file could be made at start: " + err.Error()}
		s.noFile.Store(&noFileError{cause: err})
		s.noteWrite(err)
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	s.cur.Store(f)
	return s, nil
}

// prepare creates the directory for a writer, and checks the file exists for a
// reader (bbolt would otherwise report a bare "no such file").
func prepare(dir, path string, readOnly bool) error {
	if !readOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store: create state directory %s: %w", dir, err)
		}
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("store: open %s read-only: expected an existing database (is state_dir right?): %w", path, err)
	}
	return nil
}

func lockedError(path string, waited time.Duration, readOnly bool) error {
	if readOnly {
		return fmt.Errorf("store: open %s read-only: expected a shared lock within %s, but a writer "+
			"(a running picket daemon?) holds the exclusive lock, and flock lets no reader in beside it; "+
			"stop the daemon or ask its API: %w (%w)", path, waited, ErrLocked, bolterrors.ErrTimeout)
	}
	return fmt.Errorf("store: open %s: expected the exclusive lock within %s, but another process "+
		"(a second picket daemon on this state_dir?) holds it: %w (%w)", path, waited, ErrLocked, bolterrors.ErrTimeout)
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. Later calls fail with ErrClosed.
func (s *Store) Close() error {
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	s.closed.Store(true)
	f := s.cur.Swap(nil)
	if f == nil {
		return nil
	}
	if err := f.close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Put stores v as JSON under bucket/key, creating the bucket; durable on return.
func (s *Store) Put(bucket, key string, v any) error {
	raw, err := encode(bucket, key, v) // outside the transaction: keep the write lock short
	if err != nil {
		return err
	}
	return s.update("put "+bucket+"/"+key, func(tx *Tx) error { return tx.putRaw(bucket, key, raw) })
}

// Get decodes bucket/key into v; false (and no error) when it is absent.
func (s *Store) Get(bucket, key string, v any) (found bool, err error) {
	err = s.view(func(tx *Tx) error {
		found, err = tx.Get(bucket, key, v)
		return err
	})
	return found, err
}

// Delete removes bucket/key; absent keys and buckets are not an error.
func (s *Store) Delete(bucket, key string) error {
	return s.update("delete "+bucket+"/"+key, func(tx *Tx) error { return tx.Delete(bucket, key) })
}

// ForEach calls fn for every record of bucket in bytewise key order, over one
// consistent snapshot. Unlike Tx.ForEach, fn runs after the read transaction has
// ended, so it may write to the store and keep raw; the snapshot is copied, so use
// View for very large buckets. An error from fn stops the walk and is returned.
func (s *Store) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	type record struct {
		key string
		raw []byte
	}
	var records []record
	err := s.view(func(tx *Tx) error {
		return tx.ForEach(bucket, func(key string, raw []byte) error {
			records = append(records, record{key: key, raw: append([]byte(nil), raw...)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, r := range records {
		if err := fn(r.key, r.raw); err != nil {
			return err
		}
	}
	return nil
}

// Batch stores every value of puts as JSON under its key and removes the keys of
// deletes, in bucket, in one transaction: many changes cost one fsync. It is all or
// nothing: a key or value that cannot be stored fails the batch before anything is
// written. Durable on return; absent keys to delete are not an error.
func (s *Store) Batch(bucket string, puts map[string]any, deletes []string) error {
	writes := make([]Write, 0, len(puts)+len(deletes))
	for key, v := range puts {
		w, err := encodeWrite(bucket, key, v) // outside the transaction: keep the write lock short
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	for _, key := range deletes {
		writes = append(writes, Write{Bucket: bucket, Key: key, Delete: true})
	}
	return s.commitWrites(fmt.Sprintf("batch of %d records in %s", len(writes), bucket), writes)
}

// Write is one change of a commit: Raw, a JSON value (the caller's encoding: it is not
// checked again), stored under Bucket/Key, or with Delete the key removed. Batch,
// CommitWrites and Commit all end in the same apply of a list of them.
type Write struct {
	Bucket, Key string
	Raw         []byte
	Delete      bool
}

// CommitWrites makes every write, in order, in one transaction: many records of several
// buckets for one fsync (the engine's group commit, which encodes each record under its
// own lock). It is all or nothing: a name that cannot be stored fails it before anything
// is written. Durable on return. (Commit is the outbox's: numbered records and their
// writes in one transaction.)
func (s *Store) CommitWrites(writes []Write) error {
	return s.commitWrites(fmt.Sprintf("commit of %d records", len(writes)), writes)
}

func (s *Store) commitWrites(what string, writes []Write) error {
	if err := checkWrites(writes); err != nil {
		return err
	}
	return s.update(what, func(tx *Tx) error { return tx.apply(writes) })
}

// NextSeq returns the bucket's next sequence number (1, 2, ...), creating the bucket;
// durable on return, so a number is never handed out twice, even across a crash.
func (s *Store) NextSeq(bucket string) (seq uint64, err error) {
	err = s.update("next sequence of "+bucket, func(tx *Tx) error {
		seq, err = tx.NextSeq(bucket)
		return err
	})
	return seq, err
}

// Commit runs one durable transaction (one fsync): it takes the next n sequence numbers
// of bucket, each above after (numbers the caller handed out from memory while the store
// failed; the sequence catches up with them in one jump), and applies what fill makes of
// the first: per bucket and key, a value to store as JSON, or nil to delete the key. It
// returns the first number (0 when n is 0); nothing is written when fill or the store
// fails.
func (s *Store) Commit(bucket string, n int, after uint64, fill func(first uint64) (map[string]map[string]any, error)) (first uint64, err error) {
	err = s.update(fmt.Sprintf("commit of %d numbered records to %s", n, bucket), func(tx *Tx) error {
		if first, err = tx.takeSeqs(bucket, n, after); err != nil {
			return err
		}
		values, err := fill(first)
		if err != nil {
			return err
		}
		writes, err := encodeWrites(values)
		if err != nil {
			return err
		}
		return tx.apply(writes)
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}

// takeSeqs takes the next n sequence numbers of bucket above after, and returns the
// first (0 when n is 0).
func (t *Tx) takeSeqs(bucket string, n int, after uint64) (first uint64, err error) {
	b, err := t.createBucket(bucket)
	if err != nil {
		return 0, err
	}
	if b.Sequence() < after {
		if err := b.SetSequence(after); err != nil {
			return 0, fmt.Errorf("store: next sequence of %s: %w", bucket, err)
		}
	}
	for i := range n {
		seq, err := t.NextSeq(bucket)
		if err != nil {
			return 0, err
		}
		if i == 0 {
			first = seq
		}
	}
	return first, nil
}

// encodeWrites is Commit's values as writes: each non-nil one stored as JSON under its
// bucket and key, the keys whose value is nil deleted.
func encodeWrites(values map[string]map[string]any) ([]Write, error) {
	var writes []Write
	for bucket, records := range values {
		for key, v := range records {
			if v == nil {
				writes = append(writes, Write{Bucket: bucket, Key: key, Delete: true})
				continue
			}
			w, err := encodeWrite(bucket, key, v)
			if err != nil {
				return nil, err
			}
			writes = append(writes, w)
		}
	}
	return writes, nil
}

func encodeWrite(bucket, key string, v any) (Write, error) {
	raw, err := encode(bucket, key, v)
	return Write{Bucket: bucket, Key: key, Raw: raw}, err
}

func checkWrites(writes []Write) error {
	for _, w := range writes {
		if err := checkNames(w.Bucket, w.Key); err != nil {
			return err
		}
	}
	return nil
}

// apply makes every write, in order.
func (t *Tx) apply(writes []Write) error {
	for _, w := range writes {
		var err error
		if w.Delete {
			err = t.Delete(w.Bucket, w.Key)
		} else {
			err = t.putRaw(w.Bucket, w.Key, w.Raw)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Update runs fn in one writing transaction: every write of fn is committed (and
// fsynced) together if fn returns nil, and none is if it returns an error or panics.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.update("update", func(tx *Tx) error { return callerFn(func() error { return fn(tx) }) })
}

func (s *Store) update(what string, fn func(tx *Tx) error) error {
	f, err := s.current()
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			s.noteWrite(err)
		}
		return fmt.Errorf("store: %s: %w", what, err)
	}
	var fnErr error
	err = f.guard(s, true, func() error {
		return f.db.Update(func(btx *bolt.Tx) error {
			fnErr = fn(&Tx{tx: btx, s: s})
			return fnErr
		})
	})
	if errors.Is(err, bolterrors.ErrDatabaseReadOnly) {
		return fmt.Errorf("store: %s: expected a writable store, got one opened ReadOnly: %w", what, err)
	}
	if err != nil && err == fnErr {
		return err // the caller's own error (or a bad name): no sign of the disk
	}
	s.noteWrite(err)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// View runs fn in one read transaction, a consistent snapshot beside any writer.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.view(func(tx *Tx) error { return callerFn(func() error { return fn(tx) }) })
}

// view is View for the store's own functions: any panic in fn is bbolt's.
func (s *Store) view(fn func(tx *Tx) error) error {
	f, err := s.current()
	if errors.Is(err, errNoFile) {
		return nil // no file yet: an empty store, as the fresh file will be
	}
	if err != nil {
		return fmt.Errorf("store: read: %w", err)
	}
	return f.guard(s, false, func() error {
		return f.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, s: s}) })
	})
}

// current is the open file, or why there is none.
func (s *Store) current() (*file, error) {
	f := s.cur.Load()
	switch {
	case f != nil:
		if why := f.brokenWhy(); why != "" {
			return nil, &damageError{why: why}
		}
		return f, nil
	case s.closed.Load():
		return nil, ErrClosed
	case s.noFile.Load() != nil:
		return nil, s.noFile.Load()
	default:
		return nil, errNoFile
	}
}

// Tx is one transaction of Update or View; it is valid only inside fn.
type Tx struct {
	tx *bolt.Tx
	s  *Store
}

// Put stores v as JSON under bucket/key, creating the bucket.
func (t *Tx) Put(bucket, key string, v any) error {
	defer storeCall()
	raw, err := encode(bucket, key, v)
	if err != nil {
		return err
	}
	return t.putRaw(bucket, key, raw)
}

func (t *Tx) putRaw(bucket, key string, raw []byte) error {
	b, err := t.createBucket(bucket)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("store: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Get decodes bucket/key into v; false (and no error) when it is absent.
func (t *Tx) Get(bucket, key string, v any) (bool, error) {
	defer storeCall()
	if err := checkNames(bucket, key); err != nil {
		return false, err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return false, nil
	}
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("store: get %s/%s: expected JSON for a %T: %w", bucket, key, v, err)
	}
	return true, nil
}

// Delete removes bucket/key; absent keys and buckets are not an error.
func (t *Tx) Delete(bucket, key string) error {
	defer storeCall()
	if err := checkNames(bucket, key); err != nil {
		return err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ForEach calls fn for every record of bucket in bytewise key order. raw belongs to
// the transaction: copy it to keep it past fn. fn must not write to the bucket.
func (t *Tx) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	defer storeCall()
	if err := checkBucket(bucket); err != nil {
		return err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil // a nested bucket; the record API never makes one
		}
		return callerFn(func() error { return fn(string(k), v) })
	})
}

// NextSeq returns the bucket's next sequence number (1, 2, ...), creating the bucket.
// After a fresh file replaced a lost one, it continues above the numbers handed out
// before, so keys made of them (the outbox's) never collide with one held in memory.
func (t *Tx) NextSeq(bucket string) (uint64, error) {
	defer storeCall()
	b, err := t.createBucket(bucket)
	if err != nil {
		return 0, err
	}
	if floor := t.s.seqFloor(bucket); b.Sequence() < floor {
		if err := b.SetSequence(floor); err != nil {
			return 0, fmt.Errorf("store: next sequence of %s: %w", bucket, err)
		}
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("store: next sequence of %s: %w", bucket, err)
	}
	t.tx.OnCommit(func() { t.s.raiseSeqFloor(bucket, seq) }) // a rolled-back number may come again
	return seq, nil
}

func (t *Tx) createBucket(bucket string) (*bolt.Bucket, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return nil, fmt.Errorf("store: bucket %s: %w", bucket, err)
	}
	return b, nil
}

func encode(bucket, key string, v any) ([]byte, error) {
	if err := checkNames(bucket, key); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: put %s/%s: expected a value JSON can encode, got %T: %w", bucket, key, v, err)
	}
	return raw, nil
}

func checkNames(bucket, key string) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	if key == "" || len(key) > bolt.MaxKeySize {
		return fmt.Errorf("store: bucket %s: expected a key of 1 to %d bytes, got %d", bucket, bolt.MaxKeySize, len(key))
	}
	return nil
}

func checkBucket(bucket string) error {
	if bucket == "" || len(bucket) > bolt.MaxKeySize {
		return fmt.Errorf("store: expected a bucket name of 1 to %d bytes, got %d", bolt.MaxKeySize, len(bucket))
	}
	if strings.HasPrefix(bucket, reservedPrefix) {
		return fmt.Errorf("store: bucket %q: names starting with %q are the store's own", bucket, reservedPrefix)
	}
	return nil
}
