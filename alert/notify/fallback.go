package notify

import (
	"cmp"
	"time"
)

// A delivery falls back once every primary was refused for good or has been failing
// (in its lane) for fallback_after: its notification goes to each fallback notifier, as
// parts added to the same record in one transaction with what made it due, so no crash
// point loses the notification or hands it over twice.

// fallbackDue says when d should fall back. ok is false when that cannot happen without
// some other change first. Held: mu.
func (o *Outbox) fallbackDue(d *delivery) (at time.Time, ok bool) {
	if d.rec.FellBack || d.succeeded() {
		return time.Time{}, false
	}
	after := cmp.Or(d.rec.FallbackAfter, DefaultFallbackAfter)
	for _, e := range d.parts {
		if e.part.Fallback || e.part.Outcome == partRefused {
			continue
		}
		l := o.lanes[laneOf(e)]
		if l == nil || l.failingSince.IsZero() {
			return time.Time{}, false // not tried yet, or delivering again
		}
		at = latest(at, l.failingSince.Add(after))
	}
	return at, true
}

// dueNow reports whether d's fallback is due at now. Held: mu.
func (o *Outbox) dueNow(d *delivery, now time.Time) bool {
	at, ok := o.fallbackDue(d)
	return ok && !at.After(now)
}

// fallBackDue hands each delivery whose fallback is due at now to its fallback, in key
// order, each in one transaction.
func (o *Outbox) fallBackDue(now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range o.sortedDeliveries() {
		if o.dueNow(d, now) {
			c := &change{}
			o.fallBack(d, c)
			o.save(c, "fallback")
		}
	}
}

// fallBack has c hand d's notification to each fallback notifier not yet told it (by
// the name each has now) and, for a trigger, the key's resolve queued after it. Held: mu.
func (o *Outbox) fallBack(d *delivery, c *change) {
	n := d.rec.Notification
	var primaries []string
	for _, e := range d.parts {
		if !e.part.Fallback {
			primaries = append(primaries, e.part.Notifier)
		}
	}
	o.log.Warn("outbox: every notifier failed; falling back", "dedup_key", n.DedupKey, "action", n.Action,
		"notification", n.ID, "notify", primaries, "fallback", d.rec.Fallback)
	if len(d.rec.Fallback) == 0 {
		o.log.Error("outbox: no fallback configured; the notification may never arrive",
			"dedup_key", n.DedupKey, "notification", n.ID)
	}
	var triggers []*entry
	for _, name := range d.rec.Fallback {
		label, id := o.set.label(name, d.rec.FallbackIdentity[name])
		if !d.told(name) && !d.told(label) {
			triggers = append(triggers, o.newPart(d, label, id, true))
		}
	}
	d.rec.FellBack = true
	c.add(d, triggers...)
	if n.Action == ActionTrigger {
		c.marks = append(c.marks, triggers...)
		o.resolveAfter(d, triggers, c)
	}
}

// resolveAfter handles a resolve of d's key that was enqueued while d's trigger still
// waited to fall back: it could not see the open record the fallback is about to
// write, so it is handed here to the fallback notifiers, behind their trigger, and its
// own fallback will not tell them again. Held: mu.
func (o *Outbox) resolveAfter(d *delivery, triggers []*entry, c *change) {
	dedup := d.rec.Notification.DedupKey
	var first *entry
	for e := range o.entries {
		n := e.notification()
		if e.part.Fallback || n.Action != ActionResolve || n.DedupKey != dedup || keySeq(e.key) <= keySeq(d.key) ||
			(first != nil && e.key > first.key) {
			continue
		}
		first = e
	}
	if first == nil || len(triggers) == 0 {
		return
	}
	rd := first.d
	parts := make([]*entry, 0, len(triggers))
	for _, t := range triggers {
		p := o.newPart(rd, t.part.Notifier, t.part.Identity, true)
		p.part.Closes = []string{openKey(dedup, t.part.Notifier)}
		parts = append(parts, p)
		if !rd.told(t.part.Notifier) {
			rd.rec.Told = append(rd.rec.Told, t.part.Notifier)
		}
	}
	c.add(rd, parts...)
}
