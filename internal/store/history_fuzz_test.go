package store

import (
	"encoding/binary"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FuzzHistory: whatever the history holds (a slot as the disk has it, damaged or not,
// in a row of the current layout or in the first layout's per-target bucket) and
// whatever span is asked for, recording and reading neither panic nor answer garbage:
// an answer is at most maxHistorySlots consecutive slots of the step, and a result
// recorded inside the span shows in its slot.
func FuzzHistory(f *testing.F) {
	f.Add("logs/search@eu1", base.Unix(), base.Add(24*time.Hour).Unix(), false, false, slotKey(base), rowOf(3, 1, 2), int64(600))
	f.Add("logs/search@eu1", base.Unix(), base.Add(24*time.Hour).Unix(), false, true, slotKey(base), encodeCounts([3]uint32{3, 1, 2}), int64(600))
	f.Add("web/home@us1", base.Add(-90*24*time.Hour).Unix(), base.Add(time.Hour).Unix(), true, true, slotKey(base.Add(-time.Hour)), encodeCounts([3]uint32{1 << 31, 0, 1}), int64(-5))
	f.Add("web/home@us1", base.Add(-90*24*time.Hour).Unix(), base.Add(time.Hour).Unix(), true, false, slotKey(base.Add(-time.Hour)), rowOf(1<<15, 0, maxCount), int64(-5))
	f.Add("t", int64(0), int64(1), false, false, []byte{1, 2, 3}, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}, int64(0))
	f.Add("t", base.Unix(), base.Add(time.Hour).Unix(), false, false, slotKey(base), []byte{0, 1, 0, 2, 0}, int64(0))                              // a row cut inside a column
	f.Add("t", base.Unix(), int64(1<<62), true, false, slotKey(base), []byte{}, int64(3600))                                                       // a span of centuries
	f.Add("t", int64(1<<40), int64(1<<40+7200), true, true, []byte{0xff, 0, 0, 0, 0, 0, 0, 0}, []byte("x"), int64(1))                              // far future
	f.Add("t", base.Unix(), base.Add(time.Hour).Unix(), false, false, slotKey(base.Add(7*time.Second)), rowOf(0, 0, 9), int64(0))                  // a key off the step
	f.Add("t", base.Unix(), base.Add(time.Hour).Unix(), false, true, slotKey(base.Add(7*time.Second)), encodeCounts([3]uint32{0, 0, 9}), int64(0)) // the same, first layout
	s := open(f, f.TempDir(), Options{})
	if f, err := s.current(); err == nil {
		f.db.NoSync = true // thousands of writes a second; durability is not what is fuzzed
	}
	f.Fuzz(func(t *testing.T, target string, fromUnix, toUnix int64, coarse, legacy bool, rawKey, rawValue []byte, offset int64) {
		step := FineStep
		if coarse {
			step = CoarseStep
		}
		clearHistory(t, s) // each input on its own: a failure must replay from its input alone
		putSlot(t, s, target, step, legacy, rawKey, rawValue)
		from, to := time.Unix(fromUnix, 0).UTC(), time.Unix(toUnix, 0).UTC()
		at := from.Add(time.Duration(offset) * time.Second)
		before, beforeErr := s.History(target, from, to, step)
		recErr := s.RecordResult(target, at, StatusDown)
		after, err := s.History(target, from, to, step)
		if (err == nil) != (beforeErr == nil) {
			t.Fatalf("History failed once (%v) and once not (%v)", beforeErr, err)
		}
		if err != nil {
			return
		}
		checkSlots(t, after, from, step)
		i := slotOf(after, at, step)
		if recErr != nil || i < 0 || at.Sub(after[i].Start) >= step {
			return // not recorded, or outside the span answered
		}
		want := before[i].Down + 1 // (the slot of at is never pruned by its own record)
		if !legacy {
			want = min(want, maxCount) // the row held the slot's counts, and saturates
		}
		if after[i].Down != want {
			t.Fatalf("a down result at %s: slot %s went from %d to %d down, want %d", at, after[i].Start, before[i].Down, after[i].Down, want)
		}
	})
}

// rowOf is a row of one column (column 0).
func rowOf(up, degraded, down uint16) []byte {
	var b []byte
	for _, n := range []uint16{up, degraded, down} {
		b = binary.BigEndian.AppendUint16(b, n)
	}
	return b
}

func clearHistory(t *testing.T, s *Store) {
	t.Helper()
	err := s.Update(func(stx *Tx) error {
		for _, name := range []string{historyBucket, slotsBucket, columnsBucket} {
			if stx.tx.Bucket([]byte(name)) == nil {
				continue
			}
			if err := stx.tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("clear history: %v", err)
	}
}

// putSlot writes one raw slot as a damaged (or sound) disk would hold it: in the first
// layout, into target's resolution bucket; else as the row of that slot, with target
// given column 0. A name or key bbolt refuses is not written.
func putSlot(t *testing.T, s *Store, target string, step time.Duration, legacy bool, key, value []byte) {
	t.Helper()
	r, err := resolutionFor(step)
	if err != nil || target == "" || len(target) > bolt.MaxKeySize || len(key) == 0 || len(key) > bolt.MaxKeySize {
		return
	}
	err = s.Update(func(stx *Tx) error {
		names := [][]byte{[]byte(slotsBucket), []byte(r.name)}
		if legacy {
			names = [][]byte{[]byte(historyBucket), []byte(target), []byte(r.name)}
		} else if err := putRaw(stx.tx, [][]byte{[]byte(columnsBucket)}, []byte(target), encodeColumn(0, 0)); err != nil {
			return err
		}
		return putRaw(stx.tx, names, key, value)
	})
	if err != nil {
		t.Fatalf("put a raw slot: %v", err)
	}
}

// putRaw puts key=value into the bucket nested as names say, making the buckets.
func putRaw(tx *bolt.Tx, names [][]byte, key, value []byte) error {
	b, err := tx.CreateBucketIfNotExists(names[0])
	for _, name := range names[1:] {
		if err != nil {
			return err
		}
		b, err = b.CreateBucketIfNotExists(name)
	}
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

// checkSlots: consecutive slots of step, the first holding from, counts not negative.
func checkSlots(t *testing.T, slots []Bucket, from time.Time, step time.Duration) {
	t.Helper()
	if len(slots) == 0 || len(slots) > maxHistorySlots {
		t.Fatalf("%d slots, want 1 to %d", len(slots), maxHistorySlots)
	}
	if want := from.Truncate(step).UTC(); !slots[0].Start.Equal(want) {
		t.Fatalf("first slot starts %s, want %s", slots[0].Start, want)
	}
	for i, b := range slots {
		if i > 0 && b.Start.Sub(slots[i-1].Start) != step {
			t.Fatalf("slot %d starts %s, %s after the one before; want %s", i, b.Start, b.Start.Sub(slots[i-1].Start), step)
		}
		if b.Up < 0 || b.Degraded < 0 || b.Down < 0 {
			t.Fatalf("slot %s has negative counts %+v", b.Start, b)
		}
	}
}

// slotOf is the index of the slot holding at, or -1.
func slotOf(slots []Bucket, at time.Time, step time.Duration) int {
	for i, b := range slots {
		if !at.Before(b.Start) && at.Before(b.Start.Add(step)) {
			return i
		}
	}
	return -1
}
