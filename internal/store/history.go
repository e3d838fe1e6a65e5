package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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

// History is kept in rows, one per time slot and resolution: a row holds the counts of
// every target in that slot, at the target's column (rows.go). A flush of results
// from every target rewrites only the rows of the slots they fall in, 6 bytes a target
// each (at most 60 pages for 5,000 targets: TestHistoryFlushWritesRowsNotPagesPerTarget),
// not a page per target. (The first layout kept a nested bucket per target:
// each flush copied and wrote a page or more per target, and the file's pages it
// touched stayed in the daemon's memory, 8 KB a target; it is still read and pruned,
// legacy.go, until it has aged out.)
const (
	slotsBucket   = reservedPrefix + "slots"   // per resolution: slot start -> row
	columnsBucket = reservedPrefix + "columns" // target id -> its column and last hour
)

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
// the slots that fell out of each resolution's retention (measured from at), so at
// most 288 fine and 2160 coarse slots are kept. It costs one fsync; RecordResults
// shares one among many results.
func (s *Store) RecordResult(target string, at time.Time, status string) error {
	return s.RecordResults([]Result{{Target: target, At: at, Status: status}})
}

// Result is one run for RecordResults.
type Result struct {
	Target string
	At     time.Time
	Status string // up | degraded | down
}

// RecordResults counts many results in one transaction: one fsync for a batch instead
// of one per probe, which is what lets the daemon keep history at thousands of probes
// per second. An invalid result is left out and reported; the others are recorded.
func (s *Store) RecordResults(results []Result) error {
	if len(results) == 0 {
		return nil
	}
	var bad []error
	err := s.update("record results", func(tx *Tx) error {
		w := newRowWriter(tx.tx)
		for _, res := range results {
			index, err := statusIndex(res.Status)
			if err == nil {
				err = checkHistoryInput(res.Target, res.At)
			}
			if err != nil {
				bad = append(bad, err)
				continue
			}
			if err := w.add(res.Target, res.At, index); err != nil {
				return fmt.Errorf("store: record result of %s: %w", res.Target, err)
			}
		}
		return w.commit()
	})
	return errors.Join(append(bad, err)...)
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
		if rb := legacyBucket(tx.tx, target, r); rb != nil {
			fill(rb, slots, step, to, legacyCounts)
		}
		if col, ok := columnOf(tx.tx, target); ok {
			if rb := rowsBucket(tx.tx, r); rb != nil {
				fill(rb, slots, step, to, func(v []byte) [3]uint32 { return rowCounts(v, col) })
			}
		}
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

// fill adds the stored counts of [slots[0].Start, to) to slots; decode reads a slot's
// value.
func fill(rb *bolt.Bucket, slots []Bucket, step time.Duration, to time.Time, decode func([]byte) [3]uint32) {
	first := slots[0].Start
	end := slotKey(to)
	c := rb.Cursor()
	for k, v := c.Seek(slotKey(first)); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
		start := keyTime(k)
		i := int(start.Sub(first) / step)
		if i < 0 || i >= len(slots) || !start.Truncate(step).Equal(start) {
			continue // a damaged key: not the start of a slot, it would overwrite the real one
		}
		counts := decode(v)
		slots[i].Up += int(counts[0])
		slots[i].Degraded += int(counts[1])
		slots[i].Down += int(counts[2])
	}
}

// PruneHistory removes, for both resolutions, the slots that start before before, and
// the columns of targets not recorded since (targets removed from the config), so that
// new targets take them. RecordResults already bounds what is kept; this is for the
// rest, and for the first layout's history (legacy.go).
func (s *Store) PruneHistory(before time.Time) error {
	return s.update("prune history", func(tx *Tx) error {
		if err := pruneLegacy(tx.tx, before); err != nil {
			return err
		}
		for _, r := range resolutions() {
			if rb := rowsBucket(tx.tx, r); rb != nil {
				if err := deleteBefore(rb, before); err != nil {
					return fmt.Errorf("store: prune history (%s): %w", r.name, err)
				}
			}
		}
		return pruneColumns(tx.tx, before)
	})
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
