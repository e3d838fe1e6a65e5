package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A row is one slot of one resolution for every target: the counts of the target with
// column c are at bytes [c*colWidth, (c+1)*colWidth), three uint16 (up, degraded, down)
// big-endian. A row is as long as the highest column recorded in it; a target beyond
// its end has nothing in that slot. Counts saturate: an hour's slot fills up only at
// intervals under 55 ms. 100,000 targets make rows of 600 KB, and a flush rewrites the
// two or four rows its results fall in, not a page per target.
const (
	colWidth = 6
	maxCount = math.MaxUint16
	// maxColumns bounds a column read from the file: a damaged record must not make
	// a row of gigabytes (4M targets: rows of 24 MiB).
	maxColumns = 1 << 22
)

// A column record (columnsBucket, keyed by target id) is the target's column (uint32)
// and the start of the last hour it was recorded in (int64 Unix seconds), so that
// PruneHistory can free the columns of targets gone for longer than the history keeps.
const columnRecordLen = 12

func encodeColumn(col uint32, lastHour int64) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, columnRecordLen), col)
	return binary.BigEndian.AppendUint64(b, uint64(lastHour))
}

// decodeColumn reads a column record; ok is false for one that is damaged.
func decodeColumn(v []byte) (col uint32, lastHour int64, ok bool) {
	if len(v) != columnRecordLen {
		return 0, 0, false
	}
	col = binary.BigEndian.Uint32(v)
	return col, int64(binary.BigEndian.Uint64(v[4:])), col < maxColumns
}

// columnOf is target's column, if it has one.
func columnOf(tx *bolt.Tx, target string) (int, bool) {
	cb := tx.Bucket([]byte(columnsBucket))
	if cb == nil {
		return 0, false
	}
	col, _, ok := decodeColumn(cb.Get([]byte(target)))
	return int(col), ok
}

func rowsBucket(tx *bolt.Tx, r resolution) *bolt.Bucket {
	sb := tx.Bucket([]byte(slotsBucket))
	if sb == nil {
		return nil
	}
	return sb.Bucket([]byte(r.name))
}

// rowCounts reads column col of a row; nothing there counts as empty.
func rowCounts(row []byte, col int) [3]uint32 {
	var c [3]uint32
	off := col * colWidth
	if off+colWidth > len(row) {
		return c
	}
	for i := range c {
		c[i] = uint32(binary.BigEndian.Uint16(row[off+2*i:]))
	}
	return c
}

// rowWriter gathers one transaction's results into the rows they fall in and writes
// each row once.
type rowWriter struct {
	tx     *bolt.Tx
	cols   *bolt.Bucket
	used   []bool // columns taken; nil until a new target needs one
	free   int    // no column below this one is free
	rows   [2]map[int64][]byte
	newest [2]int64 // the latest slot start written, per resolution
}

func newRowWriter(tx *bolt.Tx) *rowWriter {
	return &rowWriter{tx: tx, rows: [2]map[int64][]byte{{}, {}}, newest: [2]int64{math.MinInt64, math.MinInt64}}
}

// add counts one result (index: 0 up, 1 degraded, 2 down) in both resolutions.
func (w *rowWriter) add(target string, at time.Time, index int) error {
	col, err := w.column(target, at)
	if err != nil {
		return err
	}
	for i, r := range resolutions() {
		start := at.Truncate(r.step).Unix()
		row := w.row(i, r, start)
		if need := (col + 1) * colWidth; len(row) < need {
			row = append(row, make([]byte, need-len(row))...)
		}
		off := col*colWidth + 2*index
		if n := binary.BigEndian.Uint16(row[off:]); n < maxCount {
			binary.BigEndian.PutUint16(row[off:], n+1)
		}
		w.rows[i][start] = row
		w.newest[i] = max(w.newest[i], start)
	}
	return nil
}

// row is the row of slot start being written, read from the file the first time (a
// damaged tail, not a whole column, is dropped).
func (w *rowWriter) row(i int, r resolution, start int64) []byte {
	if row, ok := w.rows[i][start]; ok {
		return row
	}
	var row []byte
	if rb := rowsBucket(w.tx, r); rb != nil {
		v := rb.Get(slotKey(time.Unix(start, 0)))
		row = append(make([]byte, 0, len(v)), v[:len(v)-len(v)%colWidth]...)
	}
	return row
}

// column is target's column; a target new to the history (or whose record is damaged)
// takes the lowest free one. It notes the hour of at as the target's last.
func (w *rowWriter) column(target string, at time.Time) (int, error) {
	if w.cols == nil {
		cb, err := w.tx.CreateBucketIfNotExists([]byte(columnsBucket))
		if err != nil {
			return 0, fmt.Errorf("columns: %w", err)
		}
		w.cols = cb
	}
	hour := at.Truncate(CoarseStep).Unix()
	col, last, ok := decodeColumn(w.cols.Get([]byte(target)))
	if ok && hour <= last {
		return int(col), nil
	}
	if !ok {
		n, err := w.allocate()
		if err != nil {
			return 0, err
		}
		col = uint32(n)
	}
	return int(col), w.cols.Put([]byte(target), encodeColumn(col, max(hour, last)))
}

// allocate takes the lowest column no target holds.
func (w *rowWriter) allocate() (int, error) {
	if w.used == nil {
		w.used = []bool{}
		err := w.cols.ForEach(func(_, v []byte) error {
			if col, _, ok := decodeColumn(v); ok {
				w.mark(int(col))
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	for w.free < len(w.used) && w.used[w.free] {
		w.free++
	}
	if w.free >= maxColumns {
		return 0, fmt.Errorf("history: expected at most %d targets, got more", maxColumns)
	}
	w.mark(w.free)
	return w.free, nil
}

func (w *rowWriter) mark(col int) {
	if col >= len(w.used) {
		w.used = append(w.used, make([]bool, col+1-len(w.used))...)
	}
	w.used[col] = true
}

// commit writes the rows and drops the slots each resolution no longer keeps,
// measured from the latest slot written.
func (w *rowWriter) commit() error {
	for i, r := range resolutions() {
		if len(w.rows[i]) == 0 {
			continue
		}
		sb, err := w.tx.CreateBucketIfNotExists([]byte(slotsBucket))
		if err != nil {
			return err
		}
		rb, err := sb.CreateBucketIfNotExists([]byte(r.name))
		if err != nil {
			return err
		}
		for start, row := range w.rows[i] {
			if err := rb.Put(slotKey(time.Unix(start, 0)), row); err != nil {
				return fmt.Errorf("history (%s): %w", r.name, err)
			}
		}
		if err := deleteBefore(rb, time.Unix(w.newest[i], 0).Add(-r.keep+r.step)); err != nil {
			return fmt.Errorf("history (%s): %w", r.name, err)
		}
	}
	return nil
}

// pruneColumns frees the columns of targets last recorded in an hour that ended by
// before (their counts are in slots PruneHistory removes), and damaged records.
func pruneColumns(tx *bolt.Tx, before time.Time) error {
	cb := tx.Bucket([]byte(columnsBucket))
	if cb == nil {
		return nil
	}
	var gone [][]byte
	err := cb.ForEach(func(k, v []byte) error {
		if _, last, ok := decodeColumn(v); !ok || last+int64(CoarseStep/time.Second) <= before.Unix() {
			gone = append(gone, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range gone {
		if err := cb.Delete(k); err != nil {
			return fmt.Errorf("store: prune history columns: %w", err)
		}
	}
	return nil
}
