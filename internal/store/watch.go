package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/picket-dev/picket/internal/clock"
)

// WatchEvery is how often Watch compares the path with the open file.
const WatchEvery = 2 * time.Second

// boltMagic opens each of bbolt's two meta pages (after the 16-byte page header), in the
// machine's byte order as bbolt writes it.
const boltMagic = 0xED0CDAED

// Watch looks at the file every WatchEvery (by the store's clock) until ctx ends, and
// at once when a call found it damaged. A file deleted or replaced under the process
// would take everything written since with it at the next start, and a file truncated
// or overwritten is damaged: in each case the file at the path is moved aside, a fresh
// one started (with a copy of the old contents where they are still readable), and the
// loss recorded in Health().Resets for the caller to write its memory again. A fresh
// file that cannot be created yet (a full disk) is tried again at each look.
func (s *Store) Watch(ctx context.Context) {
	if s.readOnly {
		return
	}
	clock.Every(ctx, s.clock, WatchEvery, s.kick, s.look)
}

// look is one turn of Watch.
func (s *Store) look() {
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	if s.closed.Load() {
		return
	}
	f := s.cur.Load()
	switch {
	case f == nil: // lost earlier, and no fresh file could be made then
		s.retryFresh()
	case f.brokenWhy() != "":
		s.reopen(f)
	default:
		if why, readable := f.lost(s.path); why != "" {
			s.replace(f, why, readable)
		}
	}
}

// lost says what is wrong with the path or the open file, if anything, and whether
// the file's contents can still be read (the path no longer leads to it, but the
// descriptor does).
func (f *file) lost(path string) (why string, readable bool) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "deleted", true
	case err != nil:
		return "", false // cannot tell (a permission problem): leave it be
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && (uint64(st.Dev) != f.dev || st.Ino != f.ino) {
		return "replaced by another file", true
	}
	open, err := f.fd.Stat()
	if err != nil {
		return "", false
	}
	if open.Size() < f.size {
		return fmt.Sprintf("truncated from %d to %d bytes", f.size, open.Size()), false
	}
	f.size = open.Size()
	if !f.metaReadable() {
		return "its header pages were overwritten", false
	}
	return "", false
}

// reopen gives up a broken handle and opens the file again: a panic of bbolt's need not
// mean the file is damaged, and if it checks sound nothing is lost. A damaged or
// missing file is replaced by a fresh one.
func (s *Store) reopen(f *file) {
	panicked := f.brokenWhy()
	_ = f.close() // abandons it: see file.close
	s.noFile.Store(&noFileError{cause: &damageError{why: panicked}})
	s.cur.Store(nil)
	r := Reset{At: s.clock.Now(), Reason: "damaged database file: " + panicked}
	if _, err := os.Lstat(s.path); errors.Is(err, fs.ErrNotExist) {
		r.Reason = "deleted (and " + panicked + ")"
	} else {
		again, err := s.openFile()
		if err == nil {
			s.log.Error("store: bbolt panicked or faulted on the state file, but it checks sound when opened again; going on with it",
				"path", s.path, "panic", panicked)
			s.cur.Store(again)
			s.noFile.Store(nil)
			return
		}
		var damaged *damageError
		if errors.As(err, &damaged) {
			r.Reason = damaged.Error() + " (first: " + panicked + ")"
		}
	}
	s.lost = &r
	s.retryFresh()
}

// metaReadable reads bbolt's two meta pages with pread (not through the mapping, which
// might fault) and reports whether either still starts with bbolt's magic number.
func (f *file) metaReadable() bool {
	buf := make([]byte, 20)
	for page := range 2 {
		if _, err := f.fd.ReadAt(buf, int64(page*f.pageSize)); err == nil && binary.NativeEndian.Uint32(buf[16:]) == boltMagic {
			return true
		}
	}
	return false
}

// replace gives up f: it copies what is still readable, moves the file at the path
// aside, and starts a fresh file there. The old file is used until the fresh one is in
// place, unless it is damaged.
func (s *Store) replace(f *file, why string, readable bool) {
	r := Reset{At: s.clock.Now(), Reason: why}
	kind := "damaged"
	if why == "replaced by another file" {
		kind = "replaced"
		if lockedElsewhere(s.path) {
			s.log.Error("store: another process holds the file now at the state path (a second daemon on this state_dir?); "+
				"this one goes on writing to its own file, which a restart will not find: stop one of them", "path", s.path)
			return
		}
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		s.log.Error("store: the state file was lost and its directory cannot be made again", "path", s.path, "reason", why, "err", err)
		return
	}
	copied := ""
	if readable {
		var err error
		if copied, err = f.copyTo(s.dir); err != nil {
			s.log.Error("store: copying the lost state file failed; starting an empty one", "path", s.path, "err", err)
		}
	}
	if _, err := os.Lstat(s.path); err == nil {
		if r.MovedTo, err = moveAside(s.path, kind, r.At); err != nil {
			s.log.Error("store: the state file is lost but cannot be moved aside", "path", s.path, "reason", why, "err", err)
			removeQuietly(copied)
			return
		}
	}
	if copied != "" {
		if err := os.Rename(copied, s.path); err != nil {
			s.log.Error("store: putting the copy of the state file in place failed", "path", s.path, "err", err)
			removeQuietly(copied)
		} else {
			r.Copied = true
		}
	}
	fresh, err := s.openFresh(r)
	if err != nil {
		s.log.Error("store: the state file was lost and no fresh one can be made yet; retrying", "path", s.path, "reason", why, "err", err)
		if f.brokenWhy() != "" || !readable {
			s.noFile.Store(&noFileError{cause: err})
			s.cur.Store(nil) // damaged: better no file than one that panics
			s.lost = &r
			_ = f.close()
		}
		return
	}
	s.cur.Store(fresh)
	_ = f.close()
}

// retryFresh tries again to put a file in place after the loss s.lost: what is at the
// path by now is opened if sound (a fresh file if there is none, or a good file someone
// put back), and moved aside if damaged.
func (s *Store) retryFresh() {
	if s.lost == nil {
		return
	}
	fresh, err := s.openFresh(*s.lost)
	var damaged *damageError
	if errors.As(err, &damaged) {
		fresh, err = s.startAfresh(*s.lost, "damaged")
	}
	if err != nil {
		s.noFile.Store(&noFileError{cause: err})
		if ok, _ := s.errLog.Allow(s.clock.Now()); ok {
			s.log.Error("store: no state file can be opened or made yet; writes fail until one can, retrying",
				"path", s.path, "reason", s.lost.Reason, "err", err)
		}
		return
	}
	s.lost = nil
	s.cur.Store(fresh)
	s.noFile.Store(nil)
}

// copyTo writes a consistent copy of f into a temporary file in dir and returns its
// path; a fault or panic while reading f is an error, not a crash.
func (f *file) copyTo(dir string) (path string, err error) {
	tmp, err := os.CreateTemp(dir, FileName+".copy-*")
	if err != nil {
		return "", fmt.Errorf("create the copy: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		if err != nil {
			removeQuietly(tmp.Name())
		}
	}()
	err = func() (err error) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("reading the old file panicked: %v", p)
			}
		}()
		return f.db.View(func(tx *bolt.Tx) error {
			_, err := tx.WriteTo(tmp)
			return err
		})
	}()
	if err != nil {
		return "", fmt.Errorf("copy the old file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("sync the copy: %w", err)
	}
	return tmp.Name(), nil
}

// lockedElsewhere reports whether another process holds path's flock.
func lockedElsewhere(path string) bool {
	fd, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fd.Close()
	err = syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

func removeQuietly(path string) {
	if path != "" {
		_ = os.Remove(path)
	}
}
