package notify

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/picket-dev/picket/internal/lograte"
)

// An entry the store refuses (a full disk, a lost file) is delivered from memory, marked
// unpersisted, and written here in the background: soon at first, then every half
// minute. Once written it is an ordinary entry. If the process stops before, it is
// lost: that is the price of sending a page the disk cannot hold, rather than none.
const (
	persistMinBackoff = time.Second
	persistMaxBackoff = 30 * time.Second

	// maxSeqCatchUp bounds the numbers nextSeq skips: the store's sequence lags memory
	// by the numbers made up while it failed, a handful.
	maxSeqCatchUp = 1000
)

var errStoreSkipped = errors.New("not tried: the store refused an earlier entry of the same delivery")

// persistLater is the schedule of the writes of unpersisted entries.
type persistLater struct {
	mu      sync.Mutex
	pending bool          // something may be unpersisted: without it, nothing is looked at
	asked   uint64        // counts soon: a round clears pending only if none came meanwhile
	next    time.Time     // not before; zero: at once
	wait    time.Duration // the last backoff
	kick    chan struct{} // something new to write: the loop looks at once
	log     lograte.Limiter
}

// soon makes the next write due now and wakes the loop.
func (p *persistLater) soon() {
	p.mu.Lock()
	p.pending, p.next = true, time.Time{}
	p.asked++
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// refused says that the store refused entries (at most once a minute, with a count)
// and has the write retried.
func (o *Outbox) refused(err error) {
	if ok, held := o.later.log.Allow(o.now()); ok {
		o.log.Error("outbox: the store refused a notification; it is delivered from memory and written when the store "+
			"works again, but lost if the process stops first (logged at most once a minute)",
			"unpersisted", o.Unpersisted(), "refused_since_last_line", held+1, "err", err)
	}
	o.later.soon()
}

// persistLoop writes unpersisted entries when due, until ctx ends.
func (o *Outbox) persistLoop(ctx context.Context) {
	timer := o.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var due <-chan time.Time
		if next := o.persistDue(o.now()); !next.IsZero() {
			timer.Reset(max(next.Sub(o.now()), time.Millisecond))
			due = timer.C()
		}
		select {
		case <-ctx.Done():
			return
		case <-due:
		case <-o.later.kick:
		}
	}
}

// persistDue writes the unpersisted entries if a try is due, and returns when the next
// try is (zero: nothing is left to write).
func (o *Outbox) persistDue(now time.Time) time.Time {
	p := &o.later
	p.mu.Lock()
	pending, next, asked := p.pending, p.next, p.asked
	p.mu.Unlock()
	if !pending {
		return time.Time{}
	}
	if next.After(now) {
		return next
	}
	left, err := o.writeUnpersisted()
	p.mu.Lock()
	defer p.mu.Unlock()
	if left == 0 {
		p.pending = p.asked != asked
		p.next, p.wait = time.Time{}, 0
		return time.Time{}
	}
	p.wait = min(max(2*p.wait, persistMinBackoff), persistMaxBackoff)
	p.next = now.Add(p.wait)
	if ok, _ := p.log.Allow(now); ok {
		o.log.Warn("outbox: still cannot store notifications; they are delivered from memory meanwhile",
			"unpersisted", left, "retry_in", p.wait, "err", err)
	}
	return p.next
}

// writeUnpersisted stores the unpersisted entries, oldest first, until one fails. It
// holds recordMu, so an entry delivered and deleted meanwhile is not written back.
func (o *Outbox) writeUnpersisted() (left int, err error) {
	o.recordMu.Lock()
	defer o.recordMu.Unlock()
	type write struct {
		key string
		rec outboxRecord
	}
	var writes []write
	o.mu.Lock()
	for _, e := range o.entries {
		if e.unpersisted {
			writes = append(writes, write{key: e.key, rec: e.rec})
		}
	}
	o.mu.Unlock()
	slices.SortFunc(writes, func(a, b write) int { return strings.Compare(a.key, b.key) })
	for i, w := range writes {
		if err := o.store.Put(OutboxBucket, w.key, w.rec); err != nil {
			return len(writes) - i, err
		}
		o.mu.Lock()
		if e := o.entries[w.key]; e != nil {
			e.unpersisted = false
		}
		o.mu.Unlock()
	}
	return 0, nil
}

// nextSeq is the next entry number: the store's, which stays unique across restarts,
// taken above every number in use in memory (after a failure the store's sequence lags
// by the numbers made up meanwhile); or, when the store cannot give one (or is not to be
// asked again), the next number in memory, with the error. Held: enqueueMu.
func (o *Outbox) nextSeq(skipStore bool) (uint64, error) {
	err := errStoreSkipped
	if !skipStore {
		for range maxSeqCatchUp {
			var seq uint64
			if seq, err = o.store.NextSeq(OutboxBucket); err != nil {
				break
			}
			if seq > o.lastSeq {
				o.lastSeq = seq
				return seq, nil
			}
		}
	}
	o.lastSeq++
	return o.lastSeq, err
}

// noteSeq keeps lastSeq at least the number of a loaded entry key.
func (o *Outbox) noteSeq(key string) {
	if seq, err := strconv.ParseUint(keySeq(key), 10, 64); err == nil {
		o.lastSeq = max(o.lastSeq, seq)
	}
}

func (o *Outbox) isUnpersisted(e *entry) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return e.unpersisted
}

// Unpersisted is how many pending entries the store does not hold yet.
func (o *Outbox) Unpersisted() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.entries {
		if e.unpersisted {
			n++
		}
	}
	return n
}

// PersistAgain writes every pending entry, and the open-fallback records, to the store
// again: for when the store had to start a fresh file, which holds none of them. They
// are delivered meanwhile as ever.
func (o *Outbox) PersistAgain() {
	o.mu.Lock()
	for _, e := range o.entries {
		e.unpersisted = true
	}
	o.mu.Unlock()
	o.enqueueMu.Lock()
	for k, open := range o.open {
		if err := o.store.Put(FallbackOpenBucket, k, open); err != nil {
			o.log.Error("outbox: writing an open fallback again failed; after a restart it may not be told the resolve",
				"notifier", open.Notifier, "dedup_key", open.DedupKey, "err", err)
		}
	}
	o.enqueueMu.Unlock()
	o.later.soon()
}
