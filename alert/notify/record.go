package notify

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Storage: one record per Delivery in OutboxBucket, keyed by its first part's number
// and notifier ("00000000000000000042-pd"), so that byte order is enqueue order. The
// record holds the notification and each notifier's part of the delivery: the
// primaries, and the fallbacks handed it later, each with its own number (its place in
// its lane) and its outcome. Every change of a delivery (enqueued, a part accepted,
// refused for good or dropped, fallen back, relabelled) is one transaction that writes
// its record whole, with the open-fallback records the change makes or closes. Once no
// part is pending and no fallback can come due, the record is deleted. Records of the
// layout before, one per notifier, are read and rewritten so at load (legacy.go).

// deliveryRecord is one delivery as stored.
type deliveryRecord struct {
	Notification Notification `json:"notification"`
	Parts        []partRecord `json:"parts"`
	Fallback     []string     `json:"fallback,omitempty"`
	// FallbackIdentity is each fallback notifier's identity at enqueue, so a fallback
	// renamed meanwhile is still found.
	FallbackIdentity map[string]string `json:"fallback_identity,omitempty"`
	FallbackAfter    time.Duration     `json:"fallback_after,omitempty"`
	// FellBack: the fallback was handed the notification (or there was none to hand it
	// to): it is never due again.
	FellBack bool `json:"fell_back,omitempty"`
	// Told names the notifiers handed this notification as an open fallback (see
	// FallbackOpenBucket): the delivery's own fallback need not tell them again.
	Told []string `json:"told,omitempty"`
}

// partRecord is one notifier's part of a delivery.
type partRecord struct {
	Seq      uint64 `json:"seq"`      // its place in enqueue order (so in its lane)
	Notifier string `json:"notifier"` // who sends it: the name at enqueue, or the one a rename gave it
	// Identity is the notifier's (see Identifier): a restart that finds the name gone
	// gives the part to the notifier with the same identity.
	Identity string `json:"identity,omitempty"`
	Fallback bool   `json:"fallback,omitempty"` // handed the notification as a fallback
	// Closes, on a resolve, names the FallbackOpenBucket records this part answers: once
	// it is delivered or refused for good, they are deleted.
	Closes   []string  `json:"closes,omitempty"`
	Outcome  string    `json:"outcome,omitempty"` // "" while pending; partDone or partRefused
	Enqueued time.Time `json:"enqueued"`
}

// Outcomes of a part.
const (
	partPending = ""
	// partDone: accepted, or dropped unsent (moot, shed, superseded): for the fallback it
	// counts as delivered, since an incident that is over does not fall back.
	partDone    = "done"
	partRefused = "refused" // refused for good
)

// delivery is one record in memory (guarded by Outbox.mu).
type delivery struct {
	key    string         // its store key; "" until numbered
	rec    deliveryRecord // its Parts are made from parts at each write
	parts  []*entry
	stored bool // some version of the record is in the store
	// legacy are keys of records of the old layout that this one replaces: deleted
	// with its next write.
	legacy []string
}

// entry is a part in memory with its delivery state (guarded by Outbox.mu).
type entry struct {
	d        *delivery
	key      string // entryKey of its number and notifier when it was made
	part     partRecord
	attempts int
	lastErr  string
	next     time.Time     // not before; zero: now
	wait     time.Duration // the backoff that set next
	sending  bool
	sendAs   string // the name counted in inFlightBy while sending: a rename may relabel e meanwhile
	accepted bool   // delivered, about to leave
	// unpersisted: the store refused the write that numbered it (see unpersisted.go);
	// sent all the same.
	unpersisted bool
	// maybeSent: an attempt may have reached the receiver (it timed out, or the entry
	// was loaded after a restart), so a trigger may be open there. Coalescing then
	// keeps the resolve.
	maybeSent bool
	pacedAt   time.Time // the slot of its destination's pace this send took
}

func (e *entry) notification() Notification { return e.d.rec.Notification }

// succeeded reports whether some primary is done (delivered, or dropped as moot).
func (d *delivery) succeeded() bool {
	return slices.ContainsFunc(d.parts, func(e *entry) bool { return !e.part.Fallback && e.part.Outcome == partDone })
}

// done reports whether d is over: no part pending, and its fallback can never come due.
func (d *delivery) done() bool {
	pending := slices.ContainsFunc(d.parts, func(e *entry) bool { return e.part.Outcome == partPending })
	return !pending && (d.rec.FellBack || d.succeeded())
}

func (d *delivery) told(name string) bool { return slices.Contains(d.rec.Told, name) }

// record is d as stored.
func (d *delivery) record() deliveryRecord {
	rec := d.rec
	rec.Parts = make([]partRecord, len(d.parts))
	for i, e := range d.parts {
		rec.Parts[i] = e.part
	}
	return rec
}

// newPart makes a part of d for notifier name (identity id), not yet numbered nor queued.
func (o *Outbox) newPart(d *delivery, name, id string, fallback bool) *entry {
	e := &entry{d: d, part: partRecord{Notifier: name, Identity: id, Fallback: fallback, Enqueued: o.now()}}
	d.parts = append(d.parts, e)
	return e
}

// seqDigits is the width of a key's sequence number, zero-padded so that byte order is
// enqueue order.
const seqDigits = 20

// entryKey names a part (and a delivery, by its first part): its number, then its
// notifier.
func entryKey(seq uint64, notifier string) string {
	return fmt.Sprintf("%0*d-%s", seqDigits, seq, notifier)
}

// keySeq is the sequence part of a key, comparable as a string.
func keySeq(key string) string { return key[:min(len(key), seqDigits)] }

// noteSeq keeps lastSeq at least the number of a loaded key.
func (o *Outbox) noteSeq(key string) {
	if seq, err := strconv.ParseUint(keySeq(key), 10, 64); err == nil {
		o.lastSeq = max(o.lastSeq, seq)
	}
}

// change is what one transaction writes: the new parts to number (in order), the
// deliveries whose records it writes (or deletes, once done), and the open-fallback
// records it writes (nil: deletes).
type change struct {
	fresh []*entry
	ds    []*delivery
	force map[*delivery]bool // written although not stored yet (new parts, the retry)
	open  map[string]any
	marks []*entry // fallback triggers to record as open once numbered
}

func (c *change) touch(d *delivery) {
	if !slices.Contains(c.ds, d) {
		c.ds = append(c.ds, d)
	}
}

// add has c number and queue the new parts es of d, and write d.
func (c *change) add(d *delivery, es ...*entry) {
	c.fresh = append(c.fresh, es...)
	c.write(d)
}

// write has c write d whether it was stored before or not.
func (c *change) write(d *delivery) {
	c.touch(d)
	if c.force == nil {
		c.force = map[*delivery]bool{}
	}
	c.force[d] = true
}

func (c *change) setOpen(key string, v any) {
	if c.open == nil {
		c.open = map[string]any{}
	}
	c.open[key] = v
}

// commit is the outbox's one way to the store: it numbers c's new parts (with the
// store's sequence, in the same transaction; else, if the store fails, from memory),
// writes c in one transaction, queues the new parts, and forgets the deliveries that
// are done. New parts the store refused are queued all the same, unpersisted: a page
// must leave even when the disk is full (measured before: no page until space was
// freed); the retry of unpersisted.go writes them later. Held: mu.
func (o *Outbox) commit(c *change) error {
	var err error
	if len(c.fresh) == 0 {
		if writes := o.writesOf(c); len(writes) > 0 {
			_, err = o.store.Commit(OutboxBucket, 0, o.lastSeq, func(uint64) (map[string]map[string]any, error) {
				return writes, nil
			})
		}
	} else {
		var first uint64
		first, err = o.store.Commit(OutboxBucket, len(c.fresh), o.lastSeq, func(first uint64) (map[string]map[string]any, error) {
			o.number(c, first)
			return o.writesOf(c), nil
		})
		if err != nil { // the store's numbers, if fill took any, were rolled back with the rest
			first = o.lastSeq + 1
			o.number(c, first)
		}
		o.lastSeq = max(o.lastSeq, first+uint64(len(c.fresh))-1)
	}
	o.committed(c, err)
	return err
}

// number gives c's new parts the numbers from first on, and a new delivery its key.
// Held: mu.
func (o *Outbox) number(c *change, first uint64) {
	for i, e := range c.fresh {
		e.part.Seq = first + uint64(i)
		e.key = entryKey(e.part.Seq, e.part.Notifier)
	}
	for _, e := range c.fresh {
		if e == e.d.parts[0] { // a new delivery: named by its first part
			e.d.key = e.key
		}
	}
}

// writesOf is what c stores: each delivery's record, or its deletion once done, and
// the open-fallback records. A delivery never stored is written only where c says
// so: otherwise the retry writes it. Held: mu.
func (o *Outbox) writesOf(c *change) map[string]map[string]any {
	outbox := map[string]any{}
	for _, d := range c.ds {
		switch {
		case d.done():
			if d.stored {
				outbox[d.key] = nil
			}
		case d.stored || c.force[d]:
			outbox[d.key] = d.record()
		default:
			continue
		}
		for _, k := range d.legacy {
			if k != d.key {
				outbox[k] = nil
			}
		}
	}
	open := map[string]any{}
	for k, v := range o.openMarks(c) {
		open[k] = v
	}
	for k, v := range c.open {
		open[k] = v
	}
	writes := map[string]map[string]any{}
	if len(outbox) > 0 {
		writes[OutboxBucket] = outbox
	}
	if len(open) > 0 {
		writes[FallbackOpenBucket] = open
	}
	return writes
}

// committed brings memory in line with c, written (err nil) or not: open records are
// kept in memory either way (this run still tells them), new parts are queued, and
// done deliveries forgotten. Held: mu.
func (o *Outbox) committed(c *change, err error) {
	for k, v := range o.openMarks(c) {
		if _, closed := c.open[k]; !closed {
			o.open[k] = v
		}
	}
	for _, e := range c.fresh {
		e.unpersisted = err != nil
		o.queue(e)
	}
	for _, d := range c.ds {
		if err == nil && !d.done() && (d.stored || c.force[d]) {
			d.stored, d.legacy = true, nil
			for _, e := range d.parts {
				e.unpersisted = false
			}
		}
		if d.done() {
			delete(o.deliveries, d)
		}
	}
	if len(c.fresh) > 0 {
		o.signal()
	}
}

// queue puts a new pending part in its lane (after every part numbered before it) and
// its delivery among the live ones. Held: mu.
func (o *Outbox) queue(e *entry) {
	o.entries[e] = struct{}{}
	o.deliveries[e.d] = struct{}{}
	o.live[e.notification().ID]++
	lk := laneOf(e)
	l := o.lanes[lk]
	if l == nil {
		l = &lane{}
		o.lanes[lk] = l
	}
	l.queue = append(l.queue, e)
}

// lane is the FIFO of one (notifier, dedup key): only its head is ever sent, so a
// resolve never overtakes its trigger.
type lane struct {
	queue        []*entry
	failingSince time.Time // first failure since the lane last delivered; zero if none
}

type laneKey struct{ notifier, dedupKey string }

func laneOf(e *entry) laneKey {
	return laneKey{notifier: e.part.Notifier, dedupKey: e.notification().DedupKey}
}

// detach takes e out of the queue with outcome: its lane, the pending entries, the
// count of its notification. Its delivery is written by the caller's change; the send
// counts are not touched. Held: mu.
func (o *Outbox) detach(e *entry, outcome string) {
	e.part.Outcome = outcome
	lk := laneOf(e)
	if l := o.lanes[lk]; l != nil {
		l.queue = slices.DeleteFunc(l.queue, func(x *entry) bool { return x == e })
		if e.accepted {
			l.failingSince = time.Time{}
		}
		if len(l.queue) == 0 {
			delete(o.lanes, lk)
		}
	}
	delete(o.entries, e)
	if id := e.notification().ID; o.live[id] <= 1 {
		delete(o.live, id)
		delete(o.unsentPart, id)
	} else {
		o.live[id]--
	}
}

// sortedDeliveries lists the live deliveries in key order. Held: mu.
func (o *Outbox) sortedDeliveries() []*delivery {
	out := make([]*delivery, 0, len(o.deliveries))
	for d := range o.deliveries {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *delivery) int { return cmp.Compare(a.key, b.key) })
	return out
}
