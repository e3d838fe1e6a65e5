package notify

import (
	"cmp"
	"slices"
	"strings"
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
//   - a dropped resolve closes its fallback_open records only when the whole lane
//     goes (then the receiver has nothing of the key open); else the kept last entry
//     does: a resolve enqueued later names the same records (tellOpenFallbacks reads
//     them), and after a trigger the key is open again until its next resolve;
//   - with other senders of the same keys (a fleet: Obsolete is set) the last resolve
//     always stays: another vantage's trigger may be open at the receiver;
//   - dropped primaries count for their delivery like delivered ones: an incident that
//     is over does not fall back.

// coalesce drops what the last entry of each lane makes moot, writes the deliveries
// it changed in one transaction, and reports the drops.
func (o *Outbox) coalesce() {
	o.mu.Lock()
	c := &change{}
	var drops []*entry
	for _, l := range o.lanes {
		moot, whole := o.moot(l)
		for _, e := range moot {
			if whole {
				o.detach(e, partDone) // nothing of the key is left for this receiver
				o.closeOpen(e, c)
			} else {
				o.dropUnsent(e) // a later entry carries it on
			}
			c.touch(e.d)
		}
		drops = append(drops, moot...)
	}
	if len(drops) > 0 {
		o.save(c, "dropped")
		o.signal()
	}
	o.mu.Unlock()
	o.reportDrops(drops, DropCoalesced)
}

// moot returns the entries of l to drop, and whether that is the whole lane. Held: mu.
func (o *Outbox) moot(l *lane) (drop []*entry, whole bool) {
	waiting := l.queue
	if waiting[0].sending {
		waiting = waiting[1:]
	}
	if len(waiting) < 2 {
		return nil, false
	}
	last := waiting[len(waiting)-1]
	if last.notification().Action == ActionResolve && len(waiting) == len(l.queue) && !o.shared &&
		o.heardState(last) == stateClosed && !slices.ContainsFunc(waiting, func(e *entry) bool { return e.maybeSent }) {
		return slices.Clone(waiting), true
	}
	return slices.Clone(waiting[:len(waiting)-1]), false
}

// dropUnsent detaches an entry dropped unsent; if its notification has entries
// left, they can no longer make it complete (see accept). Held: mu.
func (o *Outbox) dropUnsent(e *entry) {
	o.detach(e, partDone)
	if id := e.notification().ID; o.live[id] > 0 {
		o.unsentPart[id] = true
	}
}

// reportDrops logs the dropped entries, one line per lane, and tells OnDrop of each.
func (o *Outbox) reportDrops(es []*entry, reason string) {
	if len(es) == 0 {
		return
	}
	byLane := map[laneKey][]*entry{}
	for _, e := range es {
		byLane[laneOf(e)] = append(byLane[laneOf(e)], e)
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
		n := e.notification()
		o.onDrop(Dropped{Notifier: e.part.Notifier, NotificationID: n.ID, DedupKey: n.DedupKey, Action: n.Action,
			Scope: n.Scope, Fallback: e.part.Fallback, Reason: reason, Attempts: e.attempts})
	}
}

func (o *Outbox) logDrops(lk laneKey, es []*entry, reason string) {
	actions := make([]string, len(es))
	for i, e := range es {
		actions[i] = e.notification().Action
	}
	if reason == DropCoalesced {
		o.log.Info("outbox: dropped queued notifications unsent: the key's last queued one says it all",
			"notifier", lk.notifier, "dedup_key", lk.dedupKey, "dropped", strings.Join(actions, ","))
		return
	}
	o.log.Error("outbox: full: dropped a queued notification unsent", "notifier", lk.notifier,
		"dedup_key", lk.dedupKey, "scope", es[0].notification().Scope, "dropped", strings.Join(actions, ","))
}
