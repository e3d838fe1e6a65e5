package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/picket-dev/picket/internal/store"
)

// batchStore is a Store that writes many records in one transaction, one fsync for
// all (internal/store does).
type batchStore interface {
	CommitWrites(writes []store.Write) error
}

// journal is the engine's group commit. Each write is encoded when it is made, under
// the engine's lock (the value is then what the engine held), and kept with the
// latest write of its key; the writes of every caller waiting are committed together
// in one transaction, after the engine's lock is released (Engine.unlock).
//
// Before, each write was its own transaction and fsync, under the lock: with 1,000 to
// 2,000 targets failing at once every result waited for the fsyncs of all the results
// before it, and verdicts came tens of seconds late. The rules of what is durable when
// stay as they were: a method that changed the engine returns once its writes are on
// disk, and a notification is queued only once every write made before it is (flush:
// the states and incident a page stands on are never behind the page).
type journal struct {
	store  Store
	failed func(what, key string, n int, err error) // logs a write the store refused

	mu      sync.Mutex
	cond    *sync.Cond
	pending []store.Write
	what    []string       // per pending write: what it saves, for the log
	index   map[string]int // bucket+"\x00"+key -> its place in pending
	filling uint64         // the number of the batch pending writes go into
	done    uint64         // every batch up to this number is committed (or failed)
	busy    bool           // a batch is being committed
}

func newJournal(st Store, failed func(what, key string, n int, err error)) *journal {
	j := &journal{store: st, failed: failed, index: map[string]int{}, filling: 1}
	j.cond = sync.NewCond(&j.mu)
	return j
}

// put records v (encoded now) under bucket/key.
func (j *journal) put(what, bucket, key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		j.failed(what, key, 1, fmt.Errorf("encode: %w", err))
		return
	}
	j.add(what, store.Write{Bucket: bucket, Key: key, Raw: raw})
}

// del records the deletion of bucket/key.
func (j *journal) del(what, bucket, key string) {
	j.add(what, store.Write{Bucket: bucket, Key: key, Delete: true})
}

func (j *journal) add(what string, w store.Write) {
	j.mu.Lock()
	defer j.mu.Unlock()
	k := w.Bucket + "\x00" + w.Key
	if i, ok := j.index[k]; ok {
		j.pending[i], j.what[i] = w, what // the latest write of a key is the one that counts
		return
	}
	j.index[k] = len(j.pending)
	j.pending = append(j.pending, w)
	j.what = append(j.what, what)
}

// ticket is the batch that holds every write made so far.
func (j *journal) ticket() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.pending) > 0 {
		return j.filling
	}
	return j.filling - 1 // taken by a commit under way, or committed
}

// wait returns once batch t is committed. The first waiter to find no commit under way
// commits everything pending, for itself and every writer since.
func (j *journal) wait(t uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.done < t {
		if j.busy {
			j.cond.Wait()
			continue
		}
		j.commitPending()
	}
}

// flush commits every write made so far (called with the engine's lock held).
func (j *journal) flush() { j.wait(j.ticket()) }

// commitPending takes the pending batch and commits it, with j.mu released meanwhile.
func (j *journal) commitPending() {
	n, batch, what := j.filling, j.pending, j.what
	j.filling++
	j.pending, j.what, j.index = nil, nil, map[string]int{}
	j.busy = true
	j.mu.Unlock()
	err := j.write(batch)
	if err != nil && len(batch) > 0 {
		j.failed(what[0], batch[0].Key, len(batch), err)
	}
	j.mu.Lock()
	j.busy, j.done = false, n
	j.cond.Broadcast()
}

// write commits batch in one transaction, or, with a store that cannot, write by write.
func (j *journal) write(batch []store.Write) error {
	if len(batch) == 0 {
		return nil
	}
	if bs, ok := j.store.(batchStore); ok {
		return bs.CommitWrites(batch)
	}
	var errs []error
	for _, w := range batch {
		if w.Delete {
			errs = append(errs, j.store.Delete(w.Bucket, w.Key))
		} else {
			errs = append(errs, j.store.Put(w.Bucket, w.Key, json.RawMessage(w.Raw)))
		}
	}
	return errors.Join(errs...)
}
