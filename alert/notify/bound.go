package notify

import (
	"cmp"
	"slices"
)

// The outbox is bounded: a receiver down for long while the platform flaps must not
// grow it without end (every entry is stored, and all of it would be sent
// once the receiver is back). Coalescing keeps it at about one entry per key and
// notifier; the bound is for what is left, many keys at once. At 80 % it says so once
// (again after it fell below 70 %); past the limit it sheds the least important
// entries (shedOrder), loudly.

// nearFullPercent and clearPercent are the notice's threshold and re-arm level.
const (
	nearFullPercent = 80
	clearPercent    = 70
)

// enforceLimit notices a nearly full outbox and sheds what is over the limit, writing
// the deliveries it changed in one transaction.
func (o *Outbox) enforceLimit() {
	o.mu.Lock()
	depth, limit := len(o.entries), o.maxEntries
	notice := o.noticeDepth(depth)
	var shed []*entry
	if over := depth - limit; over > 0 {
		shed = o.leastImportant(over)
		c := &change{}
		for _, e := range shed {
			if e.notification().Action == ActionResolve {
				o.hear(e, false) // the key may stay open there
			}
			o.dropUnsent(e)
			c.touch(e.d)
		}
		if len(shed) > 0 {
			o.save(c, "dropped")
		}
	}
	left := len(o.entries)
	stuck := left > limit && !o.overLimit
	o.overLimit = left > limit
	o.mu.Unlock()
	if notice {
		o.log.Warn("outbox: 80 % full: the receivers are not keeping up; at the limit the least important entries are dropped",
			"entries", depth, "max_entries", limit)
	}
	if len(shed) > 0 {
		o.log.Error("outbox: full: dropped the least important queued notifications unsent",
			"dropped", len(shed), "max_entries", limit, "by_scope", countScopes(shed))
	}
	if stuck {
		o.log.Error("outbox: over its limit with entries it must not drop (first pages of global and regional outages, sends in flight); keeping them",
			"entries", left, "max_entries", limit)
	}
	o.reportDrops(shed, DropShed)
}

// SetMaxEntries changes the bound (a config reload); 0 means DefaultMaxEntries. The
// next delivery turn applies it.
func (o *Outbox) SetMaxEntries(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.maxEntries = cmp.Or(max(n, 0), DefaultMaxEntries)
	o.signal()
}

// MaxEntries is the bound in force.
func (o *Outbox) MaxEntries() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxEntries
}

// noticeDepth reports whether depth has just reached the notice threshold. Held: mu.
func (o *Outbox) noticeDepth(depth int) bool {
	switch {
	case depth*100 < o.maxEntries*clearPercent:
		o.nearFull = false
	case depth*100 >= o.maxEntries*nearFullPercent && !o.nearFull:
		o.nearFull = true
		return true
	}
	return false
}

// leastImportant picks up to n entries to shed: not being sent, not protected, in
// shedOrder. Held: mu.
func (o *Outbox) leastImportant(n int) []*entry {
	type ranked struct {
		e *entry
		r rank
	}
	var candidates []ranked
	for _, l := range o.lanes {
		for _, e := range l.queue {
			if r := o.rankOf(l, e); !e.sending && !r.protected() {
				candidates = append(candidates, ranked{e, r})
			}
		}
	}
	slices.SortFunc(candidates, func(a, b ranked) int { return shedOrder(a.r, b.r) })
	out := make([]*entry, 0, min(n, len(candidates)))
	for _, c := range candidates[:min(n, len(candidates))] {
		out = append(out, c.e)
	}
	return out
}

// countScopes counts es by scope, for the log.
func countScopes(es []*entry) map[string]int {
	out := map[string]int{}
	for _, e := range es {
		out[e.notification().Scope]++
	}
	return out
}
