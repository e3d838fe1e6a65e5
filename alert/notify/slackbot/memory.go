package slackbot

import (
	"encoding/json"
	"sync"
)

// maxMemoryThreads bounds the in-memory records (a long run without a store).
const maxMemoryThreads = 10000

// memory is the ThreadStore of a bot without a state store (`picket page test`, a
// test): the same JSON records, in a map, for the life of the process.
type memory struct {
	mu      sync.Mutex
	records map[string][]byte
}

func newMemory() *memory { return &memory{records: map[string][]byte{}} }

func (m *memory) Get(bucket, key string, v any) (bool, error) {
	m.mu.Lock()
	raw, ok := m.records[bucket+"/"+key]
	m.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func (m *memory) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[bucket+"/"+key]; !ok && len(m.records) >= maxMemoryThreads {
		for k := range m.records { // full: one old incident's follow-ups will not thread
			delete(m.records, k)
			break
		}
	}
	m.records[bucket+"/"+key] = raw
	return nil
}

func (m *memory) Delete(bucket, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, bucket+"/"+key)
	return nil
}
