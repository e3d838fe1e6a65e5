package notify

import (
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

// markOpen records that the fallback triggers among recs (stored under keys) were
// handed to their notifiers. It runs under enqueueMu with the persist that stored
// them, so a resolve enqueued next sees it; a crash between the two is mended by
// load, which marks every queued fallback trigger again. Held: enqueueMu.
func (o *Outbox) markOpen(recs []outboxRecord, keys []string) {
	for i, rec := range recs[:len(keys)] {
		if !rec.IsFallback || rec.Notification.Action != ActionTrigger {
			continue
		}
		k := openKey(rec.Notification.DedupKey, rec.Notifier)
		if old, ok := o.open[k]; ok && keySeq(old.Trigger) >= keySeq(keys[i]) {
			continue
		}
		open := openRecord{DedupKey: rec.Notification.DedupKey, Notifier: rec.Notifier, Identity: rec.Identity,
			Trigger: keys[i]}
		o.open[k] = open // kept in memory even if the write fails: this run still tells it
		if err := o.store.Put(FallbackOpenBucket, k, open); err != nil {
			o.log.Error("outbox: recording an open fallback failed; after a restart it may not be told the resolve",
				"notifier", rec.Notifier, "dedup_key", open.DedupKey, "err", err)
		}
	}
}

// tellOpenFallbacks adds, to the records of a resolve, the notifiers that were handed
// the key's trigger as a fallback: a primary among them closes its record when it
// delivers; any other gets a fallback entry of its own, which queues in its lane
// after the trigger. Held: enqueueMu.
func (o *Outbox) tellOpenFallbacks(recs []outboxRecord) []outboxRecord {
	n := recs[0].Notification
	keys := make([]string, 0, len(o.open))
	for k, open := range o.open {
		if open.DedupKey == n.DedupKey {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	set := o.notifierSet()
	primaries := len(recs)
	var told []string
	for _, k := range keys {
		name, id := set.label(o.open[k].Notifier, o.open[k].Identity)
		i := slices.IndexFunc(recs, func(r outboxRecord) bool { return r.Notifier == name })
		if i < 0 {
			recs = append(recs, outboxRecord{Notifier: name, Identity: id, Notification: n, IsFallback: true,
				Enqueued: o.now()})
			i = len(recs) - 1
			told = append(told, name)
		}
		recs[i].Closes = append(recs[i].Closes, k)
	}
	for i := range recs[:primaries] {
		recs[i].Told = told
	}
	return recs
}

// fallbackRecords are g's notification for each of its fallback notifiers not yet
// told it (by the name each has now) and, for a trigger, the key's resolve queued
// after it. Held: enqueueMu.
func (o *Outbox) fallbackRecords(g *group) []outboxRecord {
	set := o.notifierSet()
	recs := make([]outboxRecord, 0, 2*len(g.fallback))
	o.mu.Lock()
	for _, name := range g.fallback {
		label, id := set.label(name, g.fallbackIDs[name])
		if !g.told[name] && !g.told[label] {
			recs = append(recs, outboxRecord{Notifier: label, Identity: id, Notification: g.notification,
				Group: g.id, IsFallback: true, Enqueued: o.now()})
		}
	}
	o.mu.Unlock()
	if g.notification.Action == ActionTrigger {
		recs = append(recs, o.resolveAfter(g, recs)...)
	}
	return recs
}

// resolveAfter handles a resolve of g's key that was enqueued while g's trigger still
// waited to fall back: it could not see the open record markOpen is about to write,
// so it is queued here to the fallback notifiers, behind their trigger, and its own
// fallback will not tell them again. Held: enqueueMu.
func (o *Outbox) resolveAfter(g *group, triggers []outboxRecord) []outboxRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first *entry
	for _, e := range o.entries {
		n := e.rec.Notification
		if e.rec.IsFallback || n.Action != ActionResolve || n.DedupKey != g.notification.DedupKey ||
			keySeq(e.key) <= keySeq(g.id) || (first != nil && e.key > first.key) {
			continue
		}
		first = e
	}
	if first == nil {
		return nil
	}
	recs := make([]outboxRecord, 0, len(triggers))
	for _, t := range triggers {
		recs = append(recs, outboxRecord{Notifier: t.Notifier, Identity: t.Identity, Notification: first.rec.Notification,
			Group: first.rec.Group, IsFallback: true, Closes: []string{openKey(g.notification.DedupKey, t.Notifier)},
			Enqueued: o.now()})
		if rg := o.groups[first.rec.Group]; rg != nil {
			rg.told[t.Notifier] = true // in memory: after a restart it may be told twice, harmlessly
		}
	}
	return recs
}

// closeOpen deletes the open records that e, a resolve delivered or refused for good,
// was the answer to; a record a later fallback trigger wrote again stays.
func (o *Outbox) closeOpen(e *entry) {
	if len(e.rec.Closes) == 0 {
		return
	}
	o.enqueueMu.Lock()
	defer o.enqueueMu.Unlock()
	for _, k := range e.rec.Closes {
		open, ok := o.open[k]
		if !ok || keySeq(open.Trigger) > keySeq(e.key) {
			continue
		}
		delete(o.open, k)
		if err := o.store.Delete(FallbackOpenBucket, k); err != nil {
			o.log.Error("outbox: clearing an open fallback failed; its next resolve is sent to it once more",
				"notifier", open.Notifier, "dedup_key", open.DedupKey, "err", err)
		}
	}
}

// markQueuedOpen marks every queued fallback trigger open, for a crash between its
// persist and its markOpen. At load, before anything runs.
func (o *Outbox) markQueuedOpen() {
	keys := make([]string, 0, len(o.entries))
	for k := range o.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	o.enqueueMu.Lock()
	defer o.enqueueMu.Unlock()
	for _, k := range keys {
		o.markOpen([]outboxRecord{o.entries[k].rec}, []string{k})
	}
}
