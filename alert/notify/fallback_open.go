package notify

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// FallbackOpenBucket is the store bucket that remembers, per dedup key and notifier,
// that the notifier was handed a trigger as a fallback and not yet that key's
// resolve. The primaries' routes do not name the fallback, so without this record a
// fallback's incident would never be resolved.
const FallbackOpenBucket = "fallback_open"

// openRecord is one FallbackOpenBucket value.
type openRecord struct {
	DedupKey string `json:"dedup_key"`
	Notifier string `json:"notifier"`
	Identity string `json:"identity,omitempty"` // the notifier's, to find it again if renamed
	// Trigger is the outbox key of the latest fallback trigger: a resolve enqueued
	// before it does not close the record (that trigger opened the incident again).
	Trigger string `json:"trigger"`
}

// openKey is the record's key: dedup key, then notifier. Notifier names never hold
// "|", so two keys never collide.
func openKey(dedupKey, notifier string) string { return dedupKey + "|" + notifier }

// loadOpen reads the open fallback records into memory. An unreadable one is logged
// and skipped: at worst a fallback is not told one resolve.
func (o *Outbox) loadOpen() error {
	err := o.store.ForEach(FallbackOpenBucket, func(key string, raw []byte) error {
		var rec openRecord
		if err := json.Unmarshal(raw, &rec); err != nil || rec.Notifier == "" {
			o.log.Error("outbox: skipping an unreadable open-fallback record; that fallback may not be told the resolve",
				"key", key, "err", err)
			return nil
		}
		o.open[key] = rec
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: load open fallbacks: %w", err)
	}
	return nil
}

// openMarks are the open records that c's fallback triggers make, once numbered: one
// per key and notifier, unless one of a trigger as late is there already. A crash can no
// longer come between a fallback trigger and its record (one transaction), but a file
// of the old layout may hold such a trigger: load marks every queued one again.
// Held: mu.
func (o *Outbox) openMarks(c *change) map[string]openRecord {
	out := map[string]openRecord{}
	for _, e := range c.marks {
		n := e.notification()
		k := openKey(n.DedupKey, e.part.Notifier)
		if old, ok := o.open[k]; ok && keySeq(old.Trigger) >= keySeq(e.key) {
			continue
		}
		if prev, ok := out[k]; ok && keySeq(prev.Trigger) >= keySeq(e.key) {
			continue
		}
		out[k] = openRecord{DedupKey: n.DedupKey, Notifier: e.part.Notifier, Identity: e.part.Identity, Trigger: e.key}
	}
	return out
}

// tellOpenFallbacks adds, to the parts of a resolve, the notifiers that were handed the
// key's trigger as a fallback: a primary among them closes its record when it
// delivers; any other gets a fallback part of its own, which queues in its lane after
// the trigger. Held: mu.
func (o *Outbox) tellOpenFallbacks(d *delivery) {
	dedup := d.rec.Notification.DedupKey
	keys := make([]string, 0, len(o.open))
	for k, open := range o.open {
		if open.DedupKey == dedup {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name, id := o.set.label(o.open[k].Notifier, o.open[k].Identity)
		i := slices.IndexFunc(d.parts, func(e *entry) bool { return e.part.Notifier == name })
		if i < 0 {
			o.newPart(d, name, id, true)
			i = len(d.parts) - 1
			d.rec.Told = append(d.rec.Told, name)
		}
		d.parts[i].part.Closes = append(d.parts[i].part.Closes, k)
	}
}

// closeOpen has c delete the open records that e, a resolve delivered or refused for
// good, was the answer to; a record a later fallback trigger wrote again stays.
// Held: mu.
func (o *Outbox) closeOpen(e *entry, c *change) {
	for _, k := range e.part.Closes {
		open, ok := o.open[k]
		if !ok || keySeq(open.Trigger) > keySeq(e.key) {
			continue
		}
		delete(o.open, k)
		c.setOpen(k, nil)
	}
}

// markQueuedOpen has c mark every queued fallback trigger open, in number order. At
// load, before anything runs.
func (o *Outbox) markQueuedOpen(c *change) {
	for _, l := range o.lanes {
		for _, e := range l.queue {
			if e.part.Fallback && e.notification().Action == ActionTrigger {
				c.marks = append(c.marks, e)
			}
		}
	}
	slices.SortFunc(c.marks, func(a, b *entry) int { return cmp.Compare(a.key, b.key) })
}
