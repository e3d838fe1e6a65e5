package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// errNoFile is the error of a call while no file is open: the last one was lost and a
// fresh one could not be created yet (a full disk); Watch tries again.
var errNoFile = errors.New("no database file: the last one was lost and a fresh one could not be created yet")

// noFileError is errNoFile with what keeps the fresh file from being made.
type noFileError struct{ cause error }

func (e *noFileError) Error() string        { return errNoFile.Error() + ": " + e.cause.Error() }
func (e *noFileError) Is(target error) bool { return target == errNoFile }
func (e *noFileError) Unwrap() error        { return e.cause }

// diskTrouble tells a disk that refuses to hold the file (full, failing, read-only)
// from a mistake such as a wrong permission, which stays an error at Open.
func diskTrouble(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.EROFS)
}

// damageError says the file is damaged, as bbolt or the check at open found it.
type damageError struct{ why string }

func (e *damageError) Error() string { return "damaged database file: " + e.why }

// file is one open bbolt file, with what Watch compares it by.
type file struct {
	db       *bolt.DB
	fd       *os.File // bbolt's descriptor, from Options.OpenFile
	dev, ino uint64
	size     int64 // the largest size seen: bbolt never shrinks its file (Watch only)
	pageSize int

	// writer admits one writing transaction at a time, ahead of bbolt's own lock: a
	// panic in bbolt's rollback (a damaged freelist page: measured) leaves that lock
	// held for good, and the writers queued here are then let go by broken instead.
	writer chan struct{}

	mu        sync.Mutex
	brokenMsg string        // why this file must not be used again; empty while sound
	broken    chan struct{} // closed with brokenMsg set
}

// openBolt opens path with bbolt, turning a panic or a fault on a damaged file into
// a damageError. bbolt's own checks at open stop short of the freelist page, which it
// reads and panics on ("invalid freelist page"), and past the end of a truncated file
// its mapping faults (SIGBUS, fatal unless the goroutine asked for a panic).
//
// The options are bbolt's defaults on purpose: NoFreelistSync would rebuild the
// freelist at every open by walking the tree in a goroutine of bbolt's own, where a
// fault on a damaged page can be neither turned into a panic nor recovered.
func openBolt(path string, readOnly bool, timeout time.Duration) (f *file, err error) {
	f = &file{writer: make(chan struct{}, 1), broken: make(chan struct{})}
	defer func() {
		if p := recover(); p != nil {
			// bbolt's half-opened DB is out of reach: see abandon.
			f.abandon()
			f, err = nil, &damageError{why: fmt.Sprintf("bbolt panicked opening it: %v", p)}
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	f.db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			fd, err := os.OpenFile(name, flag, perm)
			f.fd = fd
			return fd, err
		}})
	if err != nil {
		return nil, err
	}
	f.pageSize = f.db.Info().PageSize
	info, err := f.fd.Stat()
	if err != nil {
		_ = f.db.Close()
		return nil, fmt.Errorf("stat the open file: %w", err)
	}
	f.size = info.Size()
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		f.dev, f.ino = uint64(st.Dev), st.Ino
	}
	return f, nil
}

// isDamage tells a damaged file from a file that could not be read or written: bbolt
// names what it finds invalid, and reports a too-short file as a plain error, while
// I/O and permission failures come as system errors.
func isDamage(err error) bool {
	if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) ||
		errors.Is(err, bolterrors.ErrChecksum) {
		return true
	}
	var pathErr *fs.PathError
	var errno syscall.Errno
	return !errors.As(err, &pathErr) && !errors.As(err, &errno) && !errors.Is(err, bolterrors.ErrTimeout)
}

// openFile opens the store's file and checks all of it; a damaged one is closed again
// and reported as a damageError.
func (s *Store) openFile() (*file, error) {
	if !s.readOnly && emptyFile(s.path) {
		return nil, &damageError{why: "the file is empty (truncated to 0 bytes?)"}
	}
	f, err := openBolt(s.path, s.readOnly, s.timeout)
	var damaged *damageError
	switch {
	case errors.As(err, &damaged):
		return nil, err
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, lockedError(s.path, s.timeout, s.readOnly)
	case err != nil && isDamage(err):
		return nil, &damageError{why: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", s.path, err)
	}
	seqs, err := f.verify()
	if err != nil {
		_ = f.close()
		return nil, err
	}
	for bucket, seq := range seqs {
		s.raiseSeqFloor(bucket, seq)
	}
	return f, nil
}

// emptyFile reports whether path exists and is empty. It asks under an exclusive flock,
// so that a file another process has just created, and is about to fill, is not taken
// for a truncated one (bbolt creates, then locks, then writes).
func emptyFile(path string) bool {
	fd, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fd.Close() // drops the lock
	if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false // held elsewhere: bbolt's open reports the lock
	}
	info, err := fd.Stat()
	return err == nil && info.Size() == 0
}

// verify reads every page the file's tree reaches, in this goroutine where a fault is a
// panic it can recover, then runs bbolt's consistency check, which touches no page the
// walk did not: its own goroutine could not survive a fault. It is for open only: on a
// read transaction the check must not run beside writers (it reads the freelist they
// change). It returns each top-level bucket's sequence.
func (f *file) verify() (seqs map[string]uint64, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			f.markBroken(fmt.Sprintf("checking it panicked: %v", p)) // bbolt's locks may be held: abandon it
			err = &damageError{why: f.brokenWhy()}
		}
	}()
	seqs = map[string]uint64{}
	err = f.db.View(func(tx *bolt.Tx) error {
		if info, err := f.fd.Stat(); err == nil && info.Size() < tx.Size() {
			return &damageError{why: fmt.Sprintf("truncated: %d bytes, but its pages reach %d", info.Size(), tx.Size())}
		}
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			seqs[string(name)] = b.Sequence()
			return walk(b)
		})
		if err != nil {
			return err
		}
		var problems []error
		for err := range tx.Check() {
			if len(problems) < 3 { // enough to say what is wrong; drain the rest
				problems = append(problems, err)
			}
		}
		if len(problems) > 0 {
			return &damageError{why: "bbolt's check: " + errors.Join(problems...).Error()}
		}
		return nil
	})
	return seqs, err
}

// walk reads every key and value of b and its nested buckets.
func walk(b *bolt.Bucket) error {
	var sum byte // read, so that the value's pages are touched
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if child := b.Bucket(k); child != nil {
				if err := walk(child); err != nil {
					return err
				}
			}
			continue
		}
		if len(v) > 0 {
			sum += v[0] + v[len(v)-1]
		}
	}
	_ = sum
	return nil
}

// guard runs fn on f with faults turned into panics, and a panic of bbolt's into an
// error: bbolt panics on corrupt pages it meets, and a read of its mapping past the end
// of a truncated file is a SIGBUS. Such a panic can leave bbolt's locks held (measured:
// a panic in beginTx keeps the mapping's read lock, and the next remap waits forever),
// so f is marked broken and never called into again; Watch, woken, opens the file anew.
// A panic of the caller's own function (callerPanic) left bbolt clean and goes on up.
//
// A writing fn is admitted one at a time (see file.writer), and after a panic of bbolt's
// its turn is never given back.
func (f *file) guard(s *Store, write bool, fn func() error) (err error) {
	if write {
		select {
		case f.writer <- struct{}{}:
		case <-f.broken:
			return &damageError{why: f.brokenWhy()}
		}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		p := recover()
		if p != nil {
			if cp, ok := p.(callerPanic); !ok {
				why := fmt.Sprintf("bbolt panicked or faulted: %v", unwrapPanic(p))
				f.markBroken(why)
				s.wake()
				err = &damageError{why: why}
				return
			} else {
				s.log.Error("store: a caller's function panicked inside a transaction", "panic", cp.value, "stack", string(cp.stack))
				p = cp.value
			}
		}
		if write {
			<-f.writer
		}
		if p != nil {
			panic(p)
		}
	}()
	return fn()
}

// callerPanic is a panic of a caller's function inside a transaction (see callerFn);
// storePanic one of bbolt's, met in a Tx method that function called (see storeCall).
type (
	callerPanic struct {
		value any
		stack []byte
	}
	storePanic struct{ value any }
)

// callerFn runs a caller's fn inside a transaction and marks its panics as its own,
// except those that came from the store under it.
func callerFn(fn func() error) error {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(storePanic); ok {
				panic(p)
			}
			panic(callerPanic{value: p, stack: debug.Stack()})
		}
	}()
	return fn()
}

// storeCall, deferred first in each Tx method, marks a panic from bbolt as the store's.
func storeCall() {
	if p := recover(); p != nil {
		switch p.(type) {
		case callerPanic, storePanic:
			panic(p)
		}
		panic(storePanic{value: p})
	}
}

func unwrapPanic(p any) any {
	if sp, ok := p.(storePanic); ok {
		return sp.value
	}
	return p
}

func (f *file) markBroken(why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.brokenMsg == "" {
		f.brokenMsg = why
		close(f.broken)
	}
}

func (f *file) brokenWhy() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.brokenMsg
}

// close closes a sound file, and abandons a broken one: bbolt's Close waits for locks
// a panic may have left held.
func (f *file) close() error {
	if f.brokenWhy() != "" {
		return f.abandon()
	}
	var err error
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("closing panicked: %v", p)
			}
		}()
		err = f.db.Close()
	}()
	return err
}

// abandon lets go of a file bbolt cannot be trusted with any more: it drops the flock
// (explicitly: bbolt's mapping still refers to the open file, which would keep the lock
// past the close) and closes the descriptor, so any call still inside bbolt fails on it.
// The mapping itself is out of reach and leaks, once per damaged file.
func (f *file) abandon() error {
	if f.fd == nil {
		return nil
	}
	_ = syscall.Flock(int(f.fd.Fd()), syscall.LOCK_UN)
	return f.fd.Close()
}

// startAfresh moves the file at the path aside (as picket.db.<kind>-<UTC time>), if
// there is one, and opens a fresh one, recording and logging the loss r.
func (s *Store) startAfresh(r Reset, kind string) (*file, error) {
	if _, err := os.Lstat(s.path); err == nil {
		moved, err := moveAside(s.path, kind, r.At)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", r.Reason, err)
		}
		r.MovedTo = moved
	}
	return s.openFresh(r)
}

// openFresh opens what is now at the path (nothing: a fresh file; or the copy put
// there) after the loss r, and records r.
func (s *Store) openFresh(r Reset) (*file, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil { // the directory may have gone too
		return nil, fmt.Errorf("store: re-create state directory %s: %w", s.dir, err)
	}
	f, err := s.openFile()
	if err != nil {
		return nil, fmt.Errorf("store: start a fresh file after the last was lost (%s): %w", r.Reason, err)
	}
	s.noteReset(r)
	return f, nil
}

// moveAside renames path to path.<kind>-<UTC time> (with a counter if that is taken)
// and makes the rename durable.
func moveAside(path, kind string, at time.Time) (string, error) {
	base := path + "." + kind + "-" + at.UTC().Format("20060102T150405Z")
	to := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("move the damaged file aside: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return to, nil
}

func (s *Store) seqFloor(bucket string) uint64 {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	return s.seqs[bucket]
}

func (s *Store) raiseSeqFloor(bucket string, seq uint64) {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	s.seqs[bucket] = max(s.seqs[bucket], seq)
}
