package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// historyBucket is the first layout of history: one nested bucket per target, and in
// it one per resolution, keyed by the slot's start (Unix seconds, 8 bytes big-endian)
// with three uint32 counts (up, degraded, down) as the value. Nothing writes it any
// more; History still reads it beside the rows and PruneHistory ages it out, so a
// daemon upgraded from it keeps its uptime bars.
const historyBucket = reservedPrefix + "history"

// legacyBucket is target's resolution bucket of the first layout, nil if none.
func legacyBucket(tx *bolt.Tx, target string, r resolution) *bolt.Bucket {
	hb := tx.Bucket([]byte(historyBucket))
	if hb == nil {
		return nil
	}
	tb := hb.Bucket([]byte(target))
	if tb == nil {
		return nil
	}
	return tb.Bucket([]byte(r.name))
}

// pruneLegacy removes the first layout's slots that start before before, and the
// targets left with none.
func pruneLegacy(tx *bolt.Tx, before time.Time) error {
	hb := tx.Bucket([]byte(historyBucket))
	if hb == nil {
		return nil
	}
	var emptied [][]byte
	err := hb.ForEachBucket(func(target []byte) error {
		empty, err := pruneTarget(hb.Bucket(target), before)
		if err != nil {
			return fmt.Errorf("store: prune history of %s: %w", target, err)
		}
		if empty {
			emptied = append(emptied, append([]byte(nil), target...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, target := range emptied {
		if err := hb.DeleteBucket(target); err != nil {
			return fmt.Errorf("store: prune history of %s: %w", target, err)
		}
	}
	return nil
}

// pruneTarget prunes one target's resolutions and reports whether nothing is left.
func pruneTarget(tb *bolt.Bucket, before time.Time) (bool, error) {
	empty := true
	for _, r := range resolutions() {
		rb := tb.Bucket([]byte(r.name))
		if rb == nil {
			continue
		}
		if err := deleteBefore(rb, before); err != nil {
			return false, err
		}
		if k, _ := rb.Cursor().First(); k != nil {
			empty = false
		}
	}
	return empty, nil
}

// legacyCounts reads a first-layout slot's value; an absent or malformed one counts as
// empty.
func legacyCounts(v []byte) [3]uint32 {
	var c [3]uint32
	if len(v) != 12 {
		return c
	}
	for i := range c {
		c[i] = binary.BigEndian.Uint32(v[4*i:])
	}
	return c
}
