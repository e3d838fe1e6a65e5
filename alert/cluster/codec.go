package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Wire formats. Each starts with a kind byte so that a future format can be told apart.
//
//	state   = 'T' records pages     (written since page records; 'S' records is still read)
//	records = uvarint(n) { string(member) uvarint(floor) uvarint(entries)
//	          { string(target) byte(firing) varint(version-floor) } }
//	pages   = uvarint(n) { page }
//	page    = string(key) uvarint(version) byte(flags) string(by) varint(at, Unix ms)
//	flags   = 1 if open | 2 if confirmed
//	delta   = 'D' string(member) uvarint(version) byte(firing) string(target)
//	pagemsg = 'P' page
//	bye     = 'B' string(member) uvarint(version)
//	string  = uvarint(len) bytes
//
// Versions of entries are written relative to the floor: they are close to it, so a
// firing target costs its id plus about three bytes.
const (
	kindStateV1 byte = 'S'
	kindState   byte = 'T'
	kindDelta   byte = 'D'
	kindPage    byte = 'P'
	kindBye     byte = 'B'
)

// Page flags on the wire.
const (
	pageOpen      byte = 1
	pageConfirmed byte = 2
)

// minPageSize is the fewest bytes one encoded page takes (empty strings, one-byte
// numbers), for bounding a hostile count.
const minPageSize = 5

// maxString bounds any decoded string, so that a hostile length cannot allocate much.
const maxString = 4096

// delta is one changed verdict of one member, as broadcast.
type delta struct {
	member string
	target string
	verdict
}

// clusterState is what a push-pull carries: every live member's verdicts and every page
// record this member knows.
type clusterState struct {
	records map[string]*record
	pages   []pageRecord
}

func encodeState(st clusterState) []byte {
	names := make([]string, 0, len(st.records))
	for name := range st.records {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic output, for tests and for compression
	b := []byte{kindState}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = appendRecord(b, name, st.records[name])
	}
	b = binary.AppendUvarint(b, uint64(len(st.pages)))
	for _, p := range st.pages {
		b = appendPage(b, p)
	}
	return b
}

func appendPage(b []byte, p pageRecord) []byte {
	b = appendString(b, p.Key)
	b = binary.AppendUvarint(b, p.version)
	var flags byte
	if p.Open {
		flags |= pageOpen
	}
	if p.Confirmed {
		flags |= pageConfirmed
	}
	b = append(b, flags)
	b = appendString(b, p.By)
	return binary.AppendVarint(b, p.At.UnixMilli())
}

func encodePage(p pageRecord) []byte {
	b := make([]byte, 0, 24+len(p.Key)+len(p.By))
	return appendPage(append(b, kindPage), p)
}

func appendRecord(b []byte, name string, r *record) []byte {
	b = appendString(b, name)
	b = binary.AppendUvarint(b, r.floor)
	b = binary.AppendUvarint(b, uint64(len(r.entries)))
	for t, v := range r.entries {
		b = appendString(b, t)
		b = append(b, boolByte(v.firing))
		b = binary.AppendVarint(b, int64(v.version-r.floor))
	}
	return b
}

func encodeDelta(d delta) []byte {
	b := make([]byte, 0, 16+len(d.member)+len(d.target))
	b = append(b, kindDelta)
	b = appendString(b, d.member)
	b = binary.AppendUvarint(b, d.version)
	b = append(b, boolByte(d.firing))
	return appendString(b, d.target)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// reader decodes the formats above; the first error sticks and later reads return zero.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("message ends early")

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("expected a uvarint: %w", errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("expected a varint: %w", errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = fmt.Errorf("expected a byte: %w", errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bool() bool {
	c := r.byte()
	if c > 1 && r.err == nil {
		r.err = fmt.Errorf("expected a flag 0 or 1, got %d", c)
	}
	return c == 1
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > maxString || n > uint64(len(r.b)) {
		r.err = fmt.Errorf("expected a string of at most %d bytes (%d left), got length %d", maxString, len(r.b), n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a number of items, each at least minSize bytes, so that a hostile count
// cannot make us allocate more than the message could hold.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.err = fmt.Errorf("expected at most %d items in %d bytes, got %d", len(r.b)/minSize, len(r.b), n)
		return 0
	}
	return int(n)
}

func (r *reader) kind(want byte) {
	if got := r.byte(); r.err == nil && got != want {
		r.err = fmt.Errorf("expected message kind %q, got %q", want, got)
	}
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("expected the end of the message, got %d more bytes", len(r.b))
	}
	return r.err
}

// decodeState reads a state of either version; one of the first version has no pages.
func decodeState(b []byte) (clusterState, error) {
	r := &reader{b: b}
	kind := r.byte()
	if r.err == nil && kind != kindState && kind != kindStateV1 {
		r.err = fmt.Errorf("expected message kind %q or %q, got %q", kindState, kindStateV1, kind)
	}
	var st clusterState
	st.records = r.records()
	if kind == kindState {
		st.pages = r.pages()
	}
	if err := r.end(); err != nil {
		return clusterState{}, fmt.Errorf("decode cluster state: %w", err)
	}
	return st, nil
}

func (r *reader) records() map[string]*record {
	n := r.count(3)
	records := make(map[string]*record, n)
	for i := 0; i < n && r.err == nil; i++ {
		name := r.string()
		rec := newRecord(r.uvarint())
		entries := r.count(3)
		for j := 0; j < entries && r.err == nil; j++ {
			t := r.string()
			firing := r.bool()
			rec.entries[t] = verdict{version: rec.floor + uint64(r.varint()), firing: firing}
		}
		records[name] = rec
	}
	return records
}

// pages reads the page records of a state: at most maxPages, as many as a member keeps.
func (r *reader) pages() []pageRecord {
	n := r.count(minPageSize)
	if r.err == nil && n > maxPages {
		r.err = fmt.Errorf("expected at most %d page records, got %d", maxPages, n)
	}
	if r.err != nil {
		return nil
	}
	pages := make([]pageRecord, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		pages = append(pages, r.page())
	}
	return pages
}

func (r *reader) page() pageRecord {
	var p pageRecord
	p.Key = r.string()
	p.version = r.uvarint()
	flags := r.byte()
	if r.err == nil && flags&^(pageOpen|pageConfirmed) != 0 {
		r.err = fmt.Errorf("expected page flags within %#x, got %#x", pageOpen|pageConfirmed, flags)
	}
	p.Open, p.Confirmed = flags&pageOpen != 0, flags&pageConfirmed != 0
	p.By = r.string()
	p.At = time.UnixMilli(r.varint())
	return p
}

func decodePage(b []byte) (pageRecord, error) {
	r := &reader{b: b}
	r.kind(kindPage)
	p := r.page()
	if err := r.end(); err != nil {
		return pageRecord{}, fmt.Errorf("decode page record: %w", err)
	}
	return p, nil
}

func decodeDelta(b []byte) (delta, error) {
	r := &reader{b: b}
	r.kind(kindDelta)
	var d delta
	d.member = r.string()
	d.version = r.uvarint()
	d.firing = r.bool()
	d.target = r.string()
	if err := r.end(); err != nil {
		return delta{}, fmt.Errorf("decode verdict change: %w", err)
	}
	return d, nil
}

// bye is a member's word that it leaves on purpose; memberlist tells "left" from "dead"
// internally but its events do not say which.
type bye struct {
	member  string
	version uint64 // the member's sequence when it left, so a stale bye cannot hit a restart
}

func encodeBye(b bye) []byte {
	out := appendString([]byte{kindBye}, b.member)
	return binary.AppendUvarint(out, b.version)
}

func decodeBye(b []byte) (bye, error) {
	r := &reader{b: b}
	r.kind(kindBye)
	var out bye
	out.member = r.string()
	out.version = r.uvarint()
	if err := r.end(); err != nil {
		return bye{}, fmt.Errorf("decode leave notice: %w", err)
	}
	return out, nil
}
