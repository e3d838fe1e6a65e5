package notify

import (
	"cmp"
	"math"
)

// Order: when more is due than the destinations' pace and the send slots allow, what
// describes a live problem goes before what is over, and a wider, more important
// problem before a narrower one: first triggers, then updates of open incidents, then
// resolves; within each, global, region, product, target, then anything else
// (notices); then priority 1 first; then enqueue order. Only lane heads are ever
// candidates, so a lane's FIFO holds whatever the order: a resolve never overtakes its
// trigger.
//
// When the outbox is full, entries are shed in about the reverse order: updates first
// (they only refresh what the on-call already has), then the narrowest scope, and
// within one scope resolves before first triggers (a page left open is a nuisance, a
// page never sent is a missed outage), low priority first, newest first. The first
// trigger of a global or regional page is never shed.

// class is what an entry does at its receiver.
type class int

const (
	classFirst   class = iota // a trigger of a key the receiver does not have open
	classUpdate               // a trigger of a key the receiver has open already
	classResolve              // a resolve
)

// keyState is what the outbox knows of a key at a receiver.
type keyState int

const (
	stateUnknown keyState = iota // nothing since the start: it may be open
	stateOpen
	stateClosed
)

// heardKey is one key at one destination.
type heardKey struct{ dest, dedupKey string }

// rank is an entry's place in the order.
type rank struct {
	class    class
	scope    int // 0 global ... 3 target, 4 anything else
	priority int // 1 first; unknown last
	key      string
}

func scopeRank(scope string) int {
	switch scope {
	case "global":
		return 0
	case "region":
		return 1
	case "product":
		return 2
	case "target":
		return 3
	}
	return 4
}

func priorityRank(p int) int {
	if p <= 0 {
		return math.MaxInt32
	}
	return p
}

// sendOrder is -1 when a goes before b.
func sendOrder(a, b rank) int {
	return cmp.Or(cmp.Compare(a.class, b.class), cmp.Compare(a.scope, b.scope),
		cmp.Compare(a.priority, b.priority), cmp.Compare(a.key, b.key))
}

// shedOrder is -1 when a is shed before b.
func shedOrder(a, b rank) int {
	return cmp.Or(-compareBool(a.class == classUpdate, b.class == classUpdate), -cmp.Compare(a.scope, b.scope),
		-cmp.Compare(a.class, b.class), -cmp.Compare(a.priority, b.priority), -cmp.Compare(a.key, b.key))
}

// protected reports whether r may never be shed: the first page of a global or
// regional outage.
func (r rank) protected() bool { return r.class == classFirst && r.scope <= 1 }

// rankOf is e's rank, knowing what is queued ahead of it in l. Held: mu.
func (o *Outbox) rankOf(l *lane, e *entry) rank {
	n := e.notification()
	r := rank{class: classResolve, scope: scopeRank(n.Scope), priority: priorityRank(n.Priority), key: e.key}
	if n.Action == ActionTrigger {
		r.class = classFirst
		if o.stateBefore(l, e) == stateOpen {
			r.class = classUpdate
		}
	}
	return r
}

// stateBefore is the key's state at the receiver when e arrives: what was last heard
// accepted, then each entry queued ahead of e. Held: mu.
func (o *Outbox) stateBefore(l *lane, e *entry) keyState {
	st := o.heardState(e)
	for _, x := range l.queue {
		if x == e {
			break
		}
		st = stateClosed
		if x.notification().Action == ActionTrigger {
			st = stateOpen
		}
	}
	return st
}

// heardState is what the receiver last accepted for e's key. Held: mu.
func (o *Outbox) heardState(e *entry) keyState {
	open, ok := o.heard[heardKey{destOf(e), e.notification().DedupKey}]
	switch {
	case !ok:
		return stateUnknown
	case open:
		return stateOpen
	}
	return stateClosed
}

// hear records that the receiver accepted e (open after a trigger, closed after a
// resolve), or, with known false, that the key's state there is no longer known.
// Held: mu.
func (o *Outbox) hear(e *entry, known bool) {
	k := heardKey{destOf(e), e.notification().DedupKey}
	if !known {
		delete(o.heard, k)
		return
	}
	o.heard[k] = e.notification().Action == ActionTrigger
}
