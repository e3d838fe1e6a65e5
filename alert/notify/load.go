package notify

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// load reads the stored deliveries (and those of the old layout, see legacy.go) and
// queues their pending parts in number order. An unreadable record is logged and left
// in the store for a human; it must not stop the others. In one transaction it then
// rewrites the old records as one per delivery, deletes deliveries that were over but
// not deleted, and marks open the queued fallback triggers whose record a crash lost.
func (o *Outbox) load() error {
	if err := o.loadOpen(); err != nil {
		return err
	}
	var loaded []*delivery
	groups := map[string]*legacyGroup{}
	var order []string // the old groups in the order met
	err := o.store.ForEach(OutboxBucket, func(key string, raw []byte) error {
		if d, ok := readDelivery(key, raw); ok {
			loaded = append(loaded, d)
			return nil
		}
		rec, ok := readLegacy(raw)
		if !ok {
			o.log.Error("outbox: skipping an unreadable entry; it stays in the store", "key", key)
			return nil
		}
		id := cmp.Or(rec.Group, key)
		if groups[id] == nil {
			groups[id] = &legacyGroup{}
			order = append(order, id)
		}
		groups[id].keys = append(groups[id].keys, key)
		groups[id].recs = append(groups[id].recs, rec)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: load pending entries: %w", err)
	}
	for _, id := range order {
		loaded = append(loaded, fromLegacy(groups[id]))
	}
	c := o.restore(loaded)
	o.markQueuedOpen(c)
	if err := o.commit(c); err != nil {
		o.log.Error("outbox: rewriting the queue at start failed; it is read the same way at the next start",
			"err", err)
	}
	return nil
}

// readDelivery decodes raw as a delivery record; false if it is not one (every part
// names its notifier and an outcome this code knows).
func readDelivery(key string, raw []byte) (*delivery, bool) {
	var rec deliveryRecord
	if err := json.Unmarshal(raw, &rec); err != nil || len(rec.Parts) == 0 {
		return nil, false
	}
	if slices.ContainsFunc(rec.Parts, func(p partRecord) bool {
		return p.Notifier == "" || !slices.Contains([]string{partPending, partDone, partRefused}, p.Outcome)
	}) {
		return nil, false
	}
	d := &delivery{key: key, stored: true}
	for _, p := range rec.Parts {
		d.parts = append(d.parts, &entry{d: d, key: entryKey(p.Seq, p.Notifier), part: p})
	}
	rec.Parts = nil
	d.rec = rec
	return d, true
}

// restore queues the pending parts of the loaded deliveries in number order (a
// fallback part may be numbered after parts of later deliveries in its lane) and
// returns the change that writes what load found to write. Before anything runs.
func (o *Outbox) restore(loaded []*delivery) *change {
	c := &change{}
	var pending []*entry
	for _, d := range loaded {
		o.noteSeq(d.key)
		if d.done() || len(d.legacy) > 0 {
			c.touch(d) // done: deleted; old layout: rewritten
		}
		if d.done() {
			continue
		}
		o.deliveries[d] = struct{}{}
		for _, e := range d.parts {
			if e.part.Outcome == partPending {
				pending = append(pending, e)
			}
		}
	}
	slices.SortStableFunc(pending, func(a, b *entry) int { return cmp.Compare(a.key, b.key) })
	for _, e := range pending {
		o.noteSeq(e.key)
		e.maybeSent = true // a crash may have come mid-send
		o.queue(e)
	}
	return c
}
