package fleet

// The fleet's two rules of membership, for every Fleet (GossipFleet over a gossip
// layer, the simulator's in-memory network): who sends for a key, and when a vantage is
// cut off from the fleet.

// Rank is self's place as sender for key among others (the live members that may send;
// self is ranked whether listed or not); 0 sends. Members are ordered by the FNV-1a 64
// hash of key + "\x00" + name, ascending, ties by name, so that members that see the
// same live members agree on the order, and different keys spread over different
// senders (rendezvous hashing).
func Rank(key, self string, others []string) int {
	mine := rendezvousHash(key, self)
	pos := 0
	for _, name := range others {
		if name == self {
			continue
		}
		h := rendezvousHash(key, name)
		if h < mine || (h == mine && name < self) {
			pos++
		}
	}
	return pos
}

// rendezvousHash is FNV-1a 64 of key + "\x00" + member, without building the string.
func rendezvousHash(key, member string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := range len(key) {
		h = (h ^ uint64(key[i])) * prime
	}
	h *= prime // xor with the 0 separator changes nothing
	for i := range len(member) {
		h = (h ^ uint64(member[i])) * prime
	}
	return h
}

// CutOff is the rule for being alone: a vantage that hears (itself included) heard of
// the known vantages is cut off from the fleet when it hears no other, or no more than
// half of them: the minority side of a partition must not judge for the fleet either.
func CutOff(heard, known int) bool { return heard < 2 || 2*heard <= known }
