// Package tmpfs is a test kit for a state directory on a small, real file system: a
// tmpfs of a few hundred KiB that a test can fill up, so that "the disk is full" is
// the kernel's ENOSPC and not a mock's error.
package tmpfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a fresh directory and unmounts it when the
// test ends. It skips the test, saying why, where mounting is not permitted (not
// root, or in a container without CAP_SYS_ADMIN).
func Mount(t testing.TB, size int) string {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+strconv.Itoa(size)+",mode=0700")
	if err != nil {
		t.Skipf("needs a real small file system: mount -t tmpfs -o size=%d on %s: %v (run as root to test a full disk)", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a filler file into dir until the file system is full (ENOSPC) and
// returns a function that frees the space again.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	// Whole pages first, then single bytes, so no partial page is left.
	for _, n := range []int{4096, 1} {
		chunk := bytes.Repeat([]byte{0xf1}, n)
		for err == nil {
			_, err = f.Write(chunk)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			break
		}
		err = nil
	}
	_ = f.Close()
	if err != nil {
		t.Fatalf("fill %s: expected to write until ENOSPC, got %v", dir, err)
	}
	return func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("free %s: %v", dir, err)
		}
	}
}
