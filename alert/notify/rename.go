package notify

import (
	"cmp"
	"maps"
	"slices"
)

// notifierSet is the notifiers of one config, indexed. It is never changed once
// built (a reload builds another), so a reader may keep it past mu.
type notifierSet struct {
	byName     map[string]Notifier
	identity   map[string]string   // name → identity; absent when it cannot say
	byIdentity map[string]string   // identity → the least name that has it
	retired    map[string]Notifier // removed by a reload of this process, still named by entries
}

func newNotifierSet(notifiers, retired map[string]Notifier) notifierSet {
	s := notifierSet{byName: map[string]Notifier{}, identity: map[string]string{},
		byIdentity: map[string]string{}, retired: map[string]Notifier{}}
	for name, n := range notifiers {
		if n == nil {
			continue
		}
		s.byName[name] = n // a copy: the caller's map may change later
		id := identityOf(n)
		if id == "" {
			continue
		}
		s.identity[name] = id
		if other, ok := s.byIdentity[id]; !ok || name < other {
			s.byIdentity[id] = name // two names, one destination: either will do; be stable
		}
	}
	for name, n := range retired {
		if s.byName[name] == nil {
			s.retired[name] = n
		}
	}
	return s
}

// find returns who delivers an entry for notifier name whose identity was id: the
// notifier of that name; else the one with that identity (the name was changed);
// else the instance a reload retired (the notifier left the config, but pages
// queued for it are still sent, with its last settings).
func (s notifierSet) find(name, id string) (Notifier, bool) {
	if n, ok := s.byName[name]; ok {
		return n, true
	}
	if as, ok := s.byIdentity[id]; ok && id != "" {
		return s.byName[as], true
	}
	n, ok := s.retired[name]
	return n, ok
}

// label is the name, and identity, a new entry for notifier name (identity id when it
// was recorded) should carry: the name while it exists, else the name with the same
// identity, else name itself (a retired notifier, or none: the send will say).
func (s notifierSet) label(name, id string) (string, string) {
	if _, ok := s.byName[name]; ok {
		return name, s.identity[name]
	}
	if as, ok := s.byIdentity[id]; ok && id != "" {
		return as, id
	}
	return name, id
}

// SetNotifiers replaces the notifiers (a config reload). A pending entry keeps its
// notifier while that name exists. When the name is gone, the entry moves to the
// notifier with the same identity (a rename: same kind and destination), in memory
// and in the store, keeping its order; with none, the old instance goes on sending
// it. An entry nobody can deliver fails permanently, as at start.
func (o *Outbox) SetNotifiers(notifiers map[string]Notifier) {
	o.mu.Lock()
	defer o.mu.Unlock()
	retired := make(map[string]Notifier, len(o.set.retired)+len(o.set.byName))
	for _, m := range []map[string]Notifier{o.set.retired, o.set.byName} {
		for name, n := range m {
			retired[name] = n
		}
	}
	o.set = newNotifierSet(notifiers, retired)
	o.relabel()
}

// relabel moves the entries whose notifier name is gone to the notifier with their
// identity and writes their deliveries so (one transaction), drops the retired
// notifiers nothing names any more, and says what it did. Held: mu.
func (o *Outbox) relabel() {
	c, moves := o.relabelEntries()
	orphans := o.orphans()
	o.pruneRetired()
	o.signal()
	o.logRelabel(moves, orphans)
	if len(c.ds) > 0 {
		o.save(c, "relabelled")
	}
}

// rename counts the entries moved from one notifier name to another.
type rename struct{ from, to string }

// relabelEntries moves, oldest first so that lanes stay FIFO, each entry whose name
// is gone to the name with its identity, and refreshes the stored identity of the
// others (records from before identities, or a destination changed under the same
// name). It returns the change that writes their deliveries. Held: mu.
func (o *Outbox) relabelEntries() (*change, map[rename]int) {
	es := make([]*entry, 0, len(o.entries))
	for e := range o.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.key, b.key) })
	c := &change{}
	moves := map[rename]int{}
	blocked := map[laneKey]bool{} // a lane whose head could not move: the rest waits too
	for _, e := range es {
		name, id := e.part.Notifier, e.part.Identity
		if _, ok := o.set.byName[name]; ok {
			if now := o.set.identity[name]; now != "" && now != id {
				e.part.Identity = now
				c.touch(e.d)
			}
			continue
		}
		to, ok := o.set.byIdentity[id]
		if id == "" || !ok || blocked[laneOf(e)] {
			continue
		}
		if !o.move(e, to) {
			blocked[laneOf(e)] = true
			continue
		}
		moves[rename{from: name, to: to}]++
		c.touch(e.d)
	}
	return c, moves
}

// move puts e in the lane of notifier to, in key order, and labels it so. Only a
// lane's head is ever sent: an entry being sent must land at the head, and a head
// being sent keeps its place; if that cannot be, e stays. Held: mu.
func (o *Outbox) move(e *entry, to string) bool {
	from := laneOf(e)
	dst := laneKey{notifier: to, dedupKey: from.dedupKey}
	nl := o.lanes[dst]
	if nl == nil {
		nl = &lane{}
	}
	at, ok := nl.slot(e)
	if !ok {
		return false
	}
	ol := o.lanes[from]
	ol.queue = slices.DeleteFunc(ol.queue, func(x *entry) bool { return x == e })
	if len(ol.queue) == 0 {
		delete(o.lanes, from)
	}
	if !ol.failingSince.IsZero() { // the same destination: it has been failing as long
		nl.failingSince = earliest(nl.failingSince, ol.failingSince)
	}
	nl.queue = slices.Insert(nl.queue, at, e)
	o.lanes[dst] = nl
	e.part.Notifier = to
	return true
}

// slot is where e goes in l's queue: before the first entry enqueued after it, but
// never before a head being sent; false if e is being sent and would not be the head.
func (l *lane) slot(e *entry) (int, bool) {
	start := 0
	if len(l.queue) > 0 && l.queue[0].sending {
		start = 1
	}
	at := start
	for at < len(l.queue) && l.queue[at].key < e.key {
		at++
	}
	if e.sending && (at > 0 || start > 0) {
		return 0, false
	}
	return at, true
}

// orphans counts, by name, the entries whose notifier is not in the config by name
// nor by identity: the retired instance sends them, or nobody can. Held: mu.
func (o *Outbox) orphans() map[string]int {
	out := map[string]int{}
	for e := range o.entries {
		name, id := e.part.Notifier, e.part.Identity
		if _, ok := o.set.byName[name]; ok {
			continue
		}
		if _, ok := o.set.byIdentity[id]; ok && id != "" {
			continue
		}
		out[name]++
	}
	return out
}

// pruneRetired forgets the retired notifiers that no entry and no open fallback
// names any more. Held: mu.
func (o *Outbox) pruneRetired() {
	used := map[string]bool{}
	for e := range o.entries {
		used[e.part.Notifier] = true
	}
	for _, open := range o.open {
		used[open.Notifier] = true
	}
	keep := map[string]Notifier{}
	for name, n := range o.set.retired {
		if used[name] {
			keep[name] = n
		}
	}
	o.set.retired = keep // a new map: readers of the old set keep theirs
}

// logRelabel says what relabel did, naming notifiers only: an identity is not logged.
func (o *Outbox) logRelabel(moves map[rename]int, orphans map[string]int) {
	renames := slices.SortedFunc(maps.Keys(moves), func(a, b rename) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to))
	})
	for _, r := range renames {
		o.log.Warn("outbox: a notifier was renamed (same kind and destination); its queued entries go to the new name",
			"from", r.from, "to", r.to, "entries", moves[r])
	}
	for _, name := range slices.Sorted(maps.Keys(orphans)) {
		if _, ok := o.set.retired[name]; ok {
			o.log.Warn("outbox: a notifier left the config; its queued entries are still sent with its last settings",
				"notifier", name, "entries", orphans[name])
			continue
		}
		o.log.Error("outbox: no notifier of that name, nor of its kind and destination, is in the config; its queued entries will be refused for good",
			"notifier", name, "entries", orphans[name])
	}
}
