package cluster

// The pure form of the page records' merge order, for callers that keep page records
// themselves (the outage simulator's in-memory fleet), so that they merge records
// exactly as a cluster does. (Ranking senders and being alone are the fleet's rules:
// alert/fleet's Rank and CutOff.)

// PageOutranks reports whether record a, written at version av, wins over record b at
// version bv for the same key (the last-writer-wins order of page records).
func PageOutranks(a Page, av uint64, b Page, bv uint64) bool {
	return pageRecord{Page: a, version: av}.outranks(pageRecord{Page: b, version: bv})
}
