package cluster

// The verdicts of one member form a last-writer-wins map keyed by target id. Every change
// the owner makes carries the owner's sequence number at that moment; a snapshot says
// "as of sequence floor, these targets fire (each since its own version) and every other
// target is ok". Merging two views of the same member keeps, per target, the value with the
// higher version, so deltas and snapshots may arrive in any order, twice, or relayed by
// third members, and every member still ends with the same view.
//
// The owner's sequence starts at its start time in microseconds, so a restarted member
// (same name, fresh state) outranks everything its previous process said.

// verdict is one target's value in a member's view.
type verdict struct {
	version uint64
	firing  bool
}

// record is what this member knows of one member's verdicts.
type record struct {
	floor   uint64             // every target absent from entries is ok as of floor
	entries map[string]verdict // firing targets, and ok targets newer than floor
}

func newRecord(floor uint64) *record {
	return &record{floor: floor, entries: make(map[string]verdict)}
}

// lookup returns the target's verdict, explicit or implied by the floor.
func (r *record) lookup(target string) (v verdict, explicit bool) {
	if v, ok := r.entries[target]; ok {
		return v, true
	}
	return verdict{version: r.floor}, false
}

// apply merges one target's verdict and reports whether the view changed. At equal
// versions an explicit entry wins over the floor's implied "ok": the owner gave both the
// same version only when the snapshot listed that entry.
func (r *record) apply(target string, v verdict) bool {
	cur, explicit := r.lookup(target)
	if !newer(v, true, cur, explicit) {
		return false
	}
	if !v.firing && v.version <= r.floor {
		delete(r.entries, target) // implied by the floor already
		return explicit
	}
	r.entries[target] = v
	return true
}

// merge folds another view of the same member into r: per target, the higher version of
// the two views wins, each view's floor standing for the targets it does not list. It
// reports whether any target's firing verdict changed.
func (r *record) merge(o *record) (changed bool) {
	merged := make(map[string]verdict, len(r.entries)+len(o.entries))
	keep := func(t string) {
		if _, done := merged[t]; done {
			return
		}
		mine, myExplicit := r.lookup(t)
		theirs, theirExplicit := o.lookup(t)
		if newer(theirs, theirExplicit, mine, myExplicit) {
			changed = changed || theirs.firing != mine.firing
			mine, myExplicit = theirs, theirExplicit
		}
		if myExplicit {
			merged[t] = mine
		}
	}
	for t := range r.entries {
		keep(t)
	}
	for t := range o.entries {
		keep(t)
	}
	r.entries = merged
	r.floor = max(r.floor, o.floor)
	r.prune()
	return changed
}

// newer reports whether verdict a outranks b; at equal versions an explicit entry wins.
func newer(a verdict, aExplicit bool, b verdict, bExplicit bool) bool {
	return a.version > b.version || (a.version == b.version && aExplicit && !bExplicit)
}

// prune drops ok entries that the floor implies.
func (r *record) prune() {
	for t, v := range r.entries {
		if !v.firing && v.version <= r.floor {
			delete(r.entries, t)
		}
	}
}

// firing reports whether the member says the target fires.
func (r *record) firing(target string) bool {
	v, _ := r.lookup(target)
	return v.firing
}

// clone copies r, so that encoding can run without the cluster's lock.
func (r *record) clone() *record {
	c := newRecord(r.floor)
	for t, v := range r.entries {
		c.entries[t] = v
	}
	return c
}
