package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Result statuses RecordResult counts.
const (
	StatusUp       = "up"
	StatusDegraded = "degraded"
	StatusDown     = "down"
)

// History resolutions: the uptime bars show 24 hours in 5-minute buckets (288) and
// 90 days in hour buckets (2160).
const (
	FineStep        = 5 * time.Minute
	FineRetention   = 24 * time.Hour
	CoarseStep      = time.Hour
	CoarseRetention = 90 * 24 * time.Hour
)

// maxHistorySlots bounds one History answer (a year of hours is 8760).
const maxHistorySlots = 10_000

// historyBucket holds one nested bucket per target, and in it one per resolution,
// keyed by the bucket's start (Unix seconds, 8 bytes big-endian, so bytewise order is
// time order) with three uint32 counts (up, degraded, down) as the value.
const historyBucket = reservedPrefix + "history"

// Bucket is one time slot of a target's history: how many results of each status
// started in [Start, Start+step). A slot with no result has all counts zero.
type Bucket struct {
	Start    time.Time `json:"start"`
	Up       int       `json:"up"`
	Degraded int       `json:"degraded"`
	Down     int       `json:"down"`
}

// Total is how many results the slot holds.
func (b Bucket) Total() int { return b.Up + b.Degraded + b.Down }

type resolution struct {
	name string // the nested bucket's name
	step time.Duration
	keep time.Duration
}

func resolutions() [2]resolution {
	return [2]resolution{
		{name: "5m", step: FineStep, keep: FineRetention},
		{name: "1h", step: CoarseStep, keep: CoarseRetention},
	}
}

func resolutionFor(step time.Duration) (resolution, error) {
	for _, r := range resolutions() {
		if r.step == step {
			return r, nil
		}
	}
	return resolution{}, fmt.Errorf("store: history: expected a step of %s or %s, got %s", FineStep, CoarseStep, step)
}

// RecordResult counts one result of target at time at in both resolutions, and drops
// that target's slots that fell out of each resolution's retention (measured from
// at), so each target keeps at most 288 fine and 2160 coarse slots. It costs one
// fsync; RecordResults (batch.go) shares one among many results.
func (s *Store) RecordResult(target string, at time.Time, status string) error {
	index, err := statusIndex(status)
	if err != nil {
		return err
	}
	if err := checkHistoryInput(target, at); err != nil {
		return err
	}
	return s.update("record result of "+target, func(tx *Tx) error {
		tb, err := targetBucket(tx.tx, target)
		if err != nil {
			return err
		}
		for _, r := range resolutions() {
			if err := record(tb, r, at, index); err != nil {
				return fmt.Errorf("store: record result of %s (%s): %w", target, r.name, err)
			}
		}
		return nil
	})
}

func statusIndex(status string) (int, error) {
	switch status {
	case StatusUp:
		return 0, nil
	case StatusDegraded:
		return 1, nil
	case StatusDown:
		return 2, nil
	}
	return 0, fmt.Errorf("store: history: expected status up, degraded or down, got %q", status)
}

func checkHistoryInput(target string, at time.Time) error {
	if target == "" || len(target) > bolt.MaxKeySize {
		return fmt.Errorf("store: history: expected a target id of 1 to %d bytes, got %d", bolt.MaxKeySize, len(target))
	}
	if at.Unix() < 0 {
		return fmt.Errorf("store: history of %s: expected a time after 1970, got %s", target, at)
	}
	return nil
}

func targetBucket(tx *bolt.Tx, target string) (*bolt.Bucket, error) {
	hb, err := tx.CreateBucketIfNotExists([]byte(historyBucket))
	if err != nil {
		return nil, fmt.Errorf("store: history bucket: %w", err)
	}
	tb, err := hb.CreateBucketIfNotExists([]byte(target))
	if err != nil {
		return nil, fmt.Errorf("store: history of %s: %w", target, err)
	}
	return tb, nil
}

// record adds one to a slot's count, then prunes what r no longer keeps.
func record(tb *bolt.Bucket, r resolution, at time.Time, index int) error {
	rb, err := tb.CreateBucketIfNotExists([]byte(r.name))
	if err != nil {
		return err
	}
	start := at.Truncate(r.step)
	key := slotKey(start)
	counts := decodeCounts(rb.Get(key))
	if counts[index] < math.MaxUint32 {
		counts[index]++
	}
	if err := rb.Put(key, encodeCounts(counts)); err != nil {
		return err
	}
	// Keep the keep/step slots ending with this one.
	return deleteBefore(rb, start.Add(-r.keep+r.step))
}

// deleteBefore removes the slots that start before cutoff. Keys are collected first:
// deleting under a moving bbolt cursor skips elements.
func deleteBefore(rb *bolt.Bucket, cutoff time.Time) error {
	if cutoff.Unix() <= 0 {
		return nil
	}
	limit := slotKey(cutoff)
	var old [][]byte
	c := rb.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := rb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// History returns target's slots of the given step (FineStep or CoarseStep) from the
// one holding from up to, not including, to: one Bucket per slot, in time order, all
// counts zero where nothing was recorded (or it was pruned). Starts are in UTC.
func (s *Store) History(target string, from, to time.Time, step time.Duration) ([]Bucket, error) {
	r, err := resolutionFor(step)
	if err != nil {
		return nil, err
	}
	if err := checkHistoryInput(target, from); err != nil {
		return nil, err
	}
	slots, err := emptySlots(from.Truncate(step), to, step)
	if err != nil {
		return nil, fmt.Errorf("store: history of %s: %w", target, err)
	}
	err = s.view(func(tx *Tx) error {
		rb := resolutionBucket(tx.tx, target, r)
		if rb == nil {
			return nil
		}
		fill(rb, slots, step, to)
		return nil
	})
	return slots, err
}

func emptySlots(first, to time.Time, step time.Duration) ([]Bucket, error) {
	if !to.After(first) {
		return nil, fmt.Errorf("expected to (%s) after from (%s)", to, first)
	}
	// Bounded before dividing: over about 292 years to.Sub saturates, and the rounding
	// up below would overflow to a negative count.
	if to.After(first.Add(maxHistorySlots * step)) {
		return nil, fmt.Errorf("expected at most %d slots of %s, got more (%s to %s)", maxHistorySlots, step, first, to)
	}
	n := int((to.Sub(first) + step - 1) / step)
	slots := make([]Bucket, n)
	for i := range slots {
		slots[i].Start = first.Add(time.Duration(i) * step).UTC()
	}
	return slots, nil
}

func resolutionBucket(tx *bolt.Tx, target string, r resolution) *bolt.Bucket {
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

// fill copies the stored counts of [slots[0].Start, to) into slots.
func fill(rb *bolt.Bucket, slots []Bucket, step time.Duration, to time.Time) {
	first := slots[0].Start
	end := slotKey(to)
	c := rb.Cursor()
	for k, v := c.Seek(slotKey(first)); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
		start := keyTime(k)
		i := int(start.Sub(first) / step)
		if i < 0 || i >= len(slots) || !start.Truncate(step).Equal(start) {
			continue // a damaged key: not the start of a slot, it would overwrite the real one
		}
		counts := decodeCounts(v)
		slots[i].Up, slots[i].Degraded, slots[i].Down = int(counts[0]), int(counts[1]), int(counts[2])
	}
}

// PruneHistory removes, for every target and both resolutions, the slots that start
// before before, and the history of targets left with none (targets removed from the
// config). RecordResult already bounds each recorded target; this is for the rest.
func (s *Store) PruneHistory(before time.Time) error {
	return s.update("prune history", func(tx *Tx) error {
		hb := tx.tx.Bucket([]byte(historyBucket))
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
	})
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

func slotKey(start time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(max(start.Unix(), 0)))
}

func keyTime(k []byte) time.Time {
	if len(k) != 8 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC()
}

func encodeCounts(c [3]uint32) []byte {
	out := make([]byte, 0, 12)
	for _, n := range c {
		out = binary.BigEndian.AppendUint32(out, n)
	}
	return out
}

// decodeCounts reads a slot's value; an absent or malformed one counts as empty.
func decodeCounts(v []byte) [3]uint32 {
	var c [3]uint32
	if len(v) != 12 {
		return c
	}
	for i := range c {
		c[i] = binary.BigEndian.Uint32(v[4*i:])
	}
	return c
}
