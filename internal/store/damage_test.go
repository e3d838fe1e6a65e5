package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// seedFile writes a database with enough records to span many pages (a bucket of 200
// records of 700 bytes) and returns its bytes.
func seedFile(t *testing.T, dir string) []byte {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx *Tx) error {
		for i := range 200 {
			if err := tx.Put("incidents", fmt.Sprintf("inc-%04d", i), strings.Repeat("x", 700)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// usedPage is a leaf or branch page in the middle of those the file's tree uses: zeroing
// it damages records, not free space.
func usedPage(t *testing.T, path string) (id, pageSize int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil) // writable: a read-only open loads no freelist, and Page needs it
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var used []int
	err = db.View(func(tx *bolt.Tx) error {
		for i := 2; i < int(tx.Size())/db.Info().PageSize; i++ {
			if p, err := tx.Page(i); err == nil && p != nil && (p.Type == "leaf" || p.Type == "branch") {
				used = append(used, i)
			}
		}
		return nil
	})
	if err != nil || len(used) < 3 {
		t.Fatalf("pages in use: %v, %v", used, err)
	}
	return used[len(used)/2], db.Info().PageSize
}

func zeroPage(t *testing.T, raw []byte, path string) []byte {
	t.Helper()
	id, size := usedPage(t, path)
	out := bytes.Clone(raw)
	clear(out[id*size : (id+1)*size])
	return out
}

// TestOpenMovesADamagedFileAside: each way a file was found damaged (measured before:
// "invalid database" errors, panics in bbolt's open, panics at the first read) is
// moved aside as picket.db.damaged-<UTC time>, and the store starts on a fresh file
// that works, without a panic.
func TestOpenMovesADamagedFileAside(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, raw []byte, path string) []byte
	}{
		{"random bytes", func(_ *testing.T, raw []byte, _ string) []byte {
			out := make([]byte, len(raw))
			r := rand.New(rand.NewPCG(1, 2))
			for i := range out {
				out[i] = byte(r.Uint32())
			}
			return out
		}},
		{"truncated to half", func(_ *testing.T, raw []byte, _ string) []byte { return raw[:len(raw)/2] }},
		{"truncated to three pages", func(_ *testing.T, raw []byte, _ string) []byte { return raw[:3*4096] }},
		{"truncated to one page", func(_ *testing.T, raw []byte, _ string) []byte { return raw[:4096] }},
		{"truncated to zero", func(_ *testing.T, _ []byte, _ string) []byte { return nil }},
		{"a zeroed page in the middle", zeroPage},
		{"zeroed meta pages", func(_ *testing.T, raw []byte, _ string) []byte {
			out := bytes.Clone(raw)
			clear(out[:2*4096])
			return out
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := seedFile(t, dir)
			path := filepath.Join(dir, FileName)
			damaged := c.damage(t, raw, path)
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			s := openNoPanic(t, dir)
			var v string
			if found, err := s.Get("incidents", "inc-0000", &v); found || err != nil {
				t.Errorf("fresh store: Get = %v, %v; want nothing there and no error", found, err)
			}
			if err := s.Put("incidents", "after", "x"); err != nil {
				t.Errorf("fresh store: Put: %v", err)
			}
			aside, err := filepath.Glob(filepath.Join(dir, FileName+".damaged-*"))
			if err != nil || len(aside) != 1 {
				t.Fatalf("damaged files kept: %v, %v; want one picket.db.damaged-<time>", aside, err)
			}
			if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, damaged) {
				t.Errorf("%s holds %d bytes, want the %d damaged bytes as they were", aside[0], len(kept), len(damaged))
			}
		})
	}
}

// TestOpenKeepsAGoodFile: a sound file is opened as it is, nothing is moved aside.
func TestOpenKeepsAGoodFile(t *testing.T) {
	dir := t.TempDir()
	seedFile(t, dir)
	s := openNoPanic(t, dir)
	var v string
	if found, err := s.Get("incidents", "inc-0199", &v); !found || err != nil {
		t.Errorf("Get after reopen = %v, %v", found, err)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, FileName+".*")); len(aside) != 0 {
		t.Errorf("a sound file was moved aside: %v", aside)
	}
}

// openNoPanic opens dir, failing (not crashing) the test on a panic or an error.
func openNoPanic(t *testing.T, dir string) (s *Store) {
	t.Helper()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Open panicked: %v", p)
			}
		}()
		var err error
		if s, err = Open(dir, Options{}); err != nil {
			t.Fatalf("Open: %v", err)
		}
	}()
	t.Cleanup(func() { _ = s.Close() })
	return s
}
