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
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
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

// Options configure Open.
type Options struct {
	// Timeout is how long to wait for the file lock; 0 means DefaultTimeout
	// (DefaultReadOnlyTimeout with ReadOnly).
	Timeout time.Duration
	// ReadOnly opens an existing database for reading only (shared lock). It fails
	// with ErrLocked while a writer has it open (see the package comment).
	ReadOnly bool
}

// Store is an open database. Its methods are safe for concurrent use; bbolt runs one
// writing transaction at a time and readers beside it.
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool
}

// Open opens dir/picket.db, creating dir (0700) and the file (0600) unless ReadOnly.
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, lockedError(path, timeout, opts.ReadOnly)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &Store{db: db, path: path, readOnly: opts.ReadOnly}, nil
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

// Close releases the file and its lock. Later calls fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
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
	err = s.View(func(tx *Tx) error {
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
	err := s.View(func(tx *Tx) error {
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
	raws := make(map[string][]byte, len(puts))
	for key, v := range puts {
		raw, err := encode(bucket, key, v) // outside the transaction: keep the write lock short
		if err != nil {
			return err
		}
		raws[key] = raw
	}
	for _, key := range deletes {
		if err := checkNames(bucket, key); err != nil {
			return err
		}
	}
	return s.update(fmt.Sprintf("batch of %d records in %s", len(raws)+len(deletes), bucket), func(tx *Tx) error {
		for key, raw := range raws {
			if err := tx.putRaw(bucket, key, raw); err != nil {
				return err
			}
		}
		for _, key := range deletes {
			if err := tx.Delete(bucket, key); err != nil {
				return err
			}
		}
		return nil
	})
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

// Update runs fn in one writing transaction: every write of fn is committed (and
// fsynced) together if fn returns nil, and none is if it returns an error or panics.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.update("update", fn)
}

func (s *Store) update(what string, fn func(tx *Tx) error) error {
	err := s.db.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
	if errors.Is(err, bolterrors.ErrDatabaseReadOnly) {
		return fmt.Errorf("store: %s: expected a writable store, got one opened ReadOnly: %w", what, err)
	}
	return err
}

// View runs fn in one read transaction, a consistent snapshot beside any writer.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Tx is one transaction of Update or View; it is valid only inside fn.
type Tx struct{ tx *bolt.Tx }

// Put stores v as JSON under bucket/key, creating the bucket.
func (t *Tx) Put(bucket, key string, v any) error {
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
		return fn(string(k), v)
	})
}

// NextSeq returns the bucket's next sequence number (1, 2, ...), creating the bucket.
func (t *Tx) NextSeq(bucket string) (uint64, error) {
	b, err := t.createBucket(bucket)
	if err != nil {
		return 0, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("store: next sequence of %s: %w", bucket, err)
	}
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
