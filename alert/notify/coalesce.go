package notify

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Coalescing: a lane (one notifier, one dedup key) with several entries waiting
// behind a failing head needs only its last entry. What the receiver ends with is
// what the last entry says (open after a trigger, closed after a resolve); the entries
// before it would page for incidents already over, or send details already stale. So
// every waiting entry but the last is dropped unsent: queued updates keep only the
// latest, and a trigger never delivered whose resolve is queued behind it is never
// replayed. The last entry, a resolve, goes too when the receiver's last word on the
// key (heard by this process) was a resolve and nothing dropped may have reached it:
// then nothing of the incident ever arrived, and its resolve would tell nothing.
//
// Rules that keep the rest of the outbox right:
//   - an entry being sent is never touched (it may be arriving now);
//   - a lane is left alone while a group of it is falling back (sendFallback reads
//     the queued resolve of the key: resolveAfter);
//   - a dropped resolve closes its fallback_open records only when the whole lane
//     goes (then the receiver has nothing of the key open); else the kept last entry
//     does: a resolve enqueued later names the same records (tellOpenFallbacks reads
//     them), and after a trigger the key is open again until its next resolve;
//   - with other senders of the same keys (a fleet: Obsolete is set) the last resolve
//     always stays: another vantage's trigger may be open at the receiver;
//   - dropped primaries leave their group like delivered ones: an incident that is
//     over does not fall back.

// coalesce drops what the last entry of each lane makes moot, and reports it.
func (o *Outbox) coalesce() {
	o.recordMu.Lock() // before mu, as remove: a sibling rewrite must not bring a dropped entry back
	o.mu.Lock()
	var drops, closes []*entry
	for _, l := range o.lanes {
		moot, whole := o.moot(l)
		for _, e := range moot {
			if whole {
				o.detach(e, false) // nothing of the key is left for this receiver
			} else {
				o.dropUnsent(e) // a later entry carries it on
			}
		}
		drops = append(drops, moot...)
		if whole {
			closes = append(closes, moot...)
		}
	}
	if len(drops) > 0 {
		o.signal()
	}
	o.mu.Unlock()
	o.deleteStored(drops)
	o.recordMu.Unlock()
	for _, e := range closes {
		o.closeOpen(e)
	}
	o.reportDrops(drops, DropCoalesced)
}

// moot returns the entries of l to drop, and whether that is the whole lane. Held: mu.
func (o *Outbox) moot(l *lane) (drop []*entry, whole bool) {
	waiting := l.queue
	if waiting[0].sending {
		waiting = waiting[1:]
	}
	if len(waiting) < 2 || o.fallingBackIn(waiting) {
		return nil, false
	}
	last := waiting[len(waiting)-1]
	if last.rec.Notification.Action == ActionResolve && len(waiting) == len(l.queue) && !o.shared &&
		o.heardState(last.rec) == stateClosed && !slices.ContainsFunc(waiting, func(e *entry) bool { return e.maybeSent }) {
		return slices.Clone(waiting), true
	}
	return slices.Clone(waiting[:len(waiting)-1]), false
}

// fallingBackIn reports whether a group of es is being handed to its fallback now.
// Held: mu.
func (o *Outbox) fallingBackIn(es []*entry) bool {
	return slices.ContainsFunc(es, func(e *entry) bool {
		g := o.groups[e.rec.Group]
		return !e.rec.IsFallback && g != nil && g.fallingBack
	})
}

// detach takes e out of memory: its lane, the entries, its group (which may then be
// done). It does not touch the store or the send counts. Held: mu.
func (o *Outbox) detach(e *entry, delivered bool) {
	lk := laneOf(e.rec)
	l := o.lanes[lk]
	l.queue = slices.DeleteFunc(l.queue, func(x *entry) bool { return x == e })
	if delivered {
		l.failingSince = time.Time{}
	}
	if len(l.queue) == 0 {
		delete(o.lanes, lk)
	}
	delete(o.entries, e.key)
	if id := e.rec.Notification.ID; o.live[id] <= 1 {
		delete(o.live, id)
		delete(o.unsentPart, id)
	} else {
		o.live[id]--
	}
	if g := o.groups[e.rec.Group]; g != nil && !e.rec.IsFallback {
		delete(g.pending, memberOf(e.rec))
		o.forgetIfDone(g)
	}
}

// dropUnsent detaches an entry dropped unsent; if its notification has entries
// left, they can no longer make it complete (see accept). Held: mu.
func (o *Outbox) dropUnsent(e *entry) {
	o.detach(e, false)
	if id := e.rec.Notification.ID; o.live[id] > 0 {
		o.unsentPart[id] = true
	}
}

// deleteStored deletes dropped entries from the store. Held: recordMu. A failed
// delete brings the entry back once at the next start, where it is coalesced or
// shed again.
func (o *Outbox) deleteStored(es []*entry) {
	for _, e := range es {
		if err := o.store.Delete(OutboxBucket, e.key); err != nil {
			o.log.Error("outbox: deleting a dropped entry failed; it comes back after a restart",
				"key", e.key, "err", err)
		}
	}
}

// reportDrops logs the dropped entries, one line per lane, and tells OnDrop of each.
func (o *Outbox) reportDrops(es []*entry, reason string) {
	if len(es) == 0 {
		return
	}
	byLane := map[laneKey][]*entry{}
	for _, e := range es {
		byLane[laneOf(e.rec)] = append(byLane[laneOf(e.rec)], e)
	}
	lanes := make([]laneKey, 0, len(byLane))
	for lk := range byLane {
		lanes = append(lanes, lk)
	}
	slices.SortFunc(lanes, func(a, b laneKey) int {
		return cmp.Or(cmp.Compare(a.notifier, b.notifier), cmp.Compare(a.dedupKey, b.dedupKey))
	})
	for _, lk := range lanes {
		o.logDrops(lk, byLane[lk], reason)
	}
	if o.onDrop == nil {
		return
	}
	for _, e := range es {
		n := e.rec.Notification
		o.onDrop(Dropped{Notifier: e.rec.Notifier, NotificationID: n.ID, DedupKey: n.DedupKey, Action: n.Action,
			Scope: n.Scope, Fallback: e.rec.IsFallback, Reason: reason, Attempts: e.attempts})
	}
}

func (o *Outbox) logDrops(lk laneKey, es []*entry, reason string) {
	actions := make([]string, len(es))
	for i, e := range es {
		actions[i] = e.rec.Notification.Action
	}
	if reason == DropCoalesced {
		o.log.Info("outbox: dropped queued notifications unsent: the key's last queued one says it all",
			"notifier", lk.notifier, "dedup_key", lk.dedupKey, "dropped", strings.Join(actions, ","))
		return
	}
	o.log.Error("outbox: full: dropped a queued notification unsent", "notifier", lk.notifier,
		"dedup_key", lk.dedupKey, "scope", es[0].rec.Notification.Scope, "dropped", strings.Join(actions, ","))
}
