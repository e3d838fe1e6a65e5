package probetest

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"
)

// maxRecords bounds what one product of one region keeps, so a long benchmark
// does not grow memory without end; the oldest records go first.
const maxRecords = 1 << 16

// record is one written log line or event, as the client sent it.
type record struct {
	fields     map[string]json.RawMessage
	readableAt time.Time
}

// recordStore keeps the newest maxRecords records by id, in a ring for eviction.
type recordStore struct {
	mu    sync.Mutex
	byID  map[string]record
	order []string // ids in write order; a ring once full
	next  int      // where the next id goes once order is full
}

func newRecordStore() *recordStore {
	return &recordStore{byID: make(map[string]record)}
}

func (s *recordStore) put(id string, rec record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) < maxRecords {
		s.order = append(s.order, id)
	} else {
		delete(s.byID, s.order[s.next])
		s.order[s.next] = id
		s.next = (s.next + 1) % maxRecords
	}
	s.byID[id] = rec
}

// get returns the fields of id once it is readable at now.
func (s *recordStore) get(id string, now time.Time) (map[string]json.RawMessage, bool) {
	s.mu.Lock()
	rec, ok := s.byID[id]
	s.mu.Unlock()
	if !ok || now.Before(rec.readableAt) {
		return nil, false
	}
	return rec.fields, true
}

// newID is 16 random hex digits: unique enough for maxRecords, and cheap.
func newID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}
