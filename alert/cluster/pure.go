package cluster

// Pure forms of the fleet's rules, for callers that keep membership and page records
// themselves (the outage simulator's in-memory fleet), so that they rank senders and
// merge records exactly as a cluster does.

// RankAmong is Rank over a given list of eligible members: self's position as sender
// for key among members (self is ranked whether listed or not).
func RankAmong(key, self string, members []string) int {
	mine := rendezvousHash(key, self)
	pos := 0
	for _, name := range members {
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

// PageOutranks reports whether record a, written at version av, wins over record b at
// version bv for the same key (the last-writer-wins order of page records).
func PageOutranks(a Page, av uint64, b Page, bv uint64) bool {
	return pageRecord{Page: a, version: av}.outranks(pageRecord{Page: b, version: bv})
}
