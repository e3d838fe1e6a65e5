package fleet

import (
	"maps"
	"strings"
)

// Verdict is what a vantage says of a failing target (a target it says nothing of is ok).
type Verdict int

const (
	// Down: the target fails.
	Down Verdict = iota + 1
	// Degraded: the target answers, but too slowly.
	Degraded
	// Stale: this vantage last saw the target failing too long ago to say (its state
	// restored after a long stop, or its runs overdue). A stale verdict keeps a failure
	// the fleet already sees from being resolved for want of it, but never makes a new
	// one (fleet seed 392: a vantage back after 17 minutes voted healed targets down and
	// paged a recovered region).
	Stale
)

// Ballot is what one vantage tells the fleet: its verdicts, or that it abstains.
type Ballot struct {
	// Abstain: an impaired vantage gives no verdicts; it does not count towards the
	// quorum's base and does not send.
	Abstain  bool
	Verdicts map[string]Verdict // by target id; only failing targets
}

// Equal reports whether two ballots say the same.
func (b Ballot) Equal(o Ballot) bool {
	return b.Abstain == o.Abstain && maps.Equal(b.Verdicts, o.Verdicts)
}

// Count is how many of the counting vantages give each verdict on one target.
type Count struct{ Down, Degraded, Stale int }

// add counts one vantage's verdict.
func (c *Count) add(v Verdict, n int) {
	switch v {
	case Down:
		c.Down += n
	case Degraded:
		c.Degraded += n
	case Stale:
		c.Stale += n
	}
}

// Add counts a ballot into a tally (the simulator's in-memory gossip); an abstaining
// ballot counts for nothing.
func Add(tally map[string]Count, b Ballot) {
	if b.Abstain {
		return
	}
	for id, v := range b.Verdicts {
		c := tally[id]
		c.add(v, 1)
		tally[id] = c
	}
}

// The gossip carries a ballot as a set of keys: a target's id when down, with a suffix
// otherwise, or AbstainKey alone. Only the gossip's adapters and the status API (a
// member's failing targets) see these strings.
const (
	degradedSuffix = "#degraded"
	staleSuffix    = "#stale"
	// AbstainKey is what an impaired vantage gossips instead of verdicts.
	AbstainKey = "#abstain"
)

// Key is the gossip key of a verdict on a target.
func Key(id string, v Verdict) string {
	switch v {
	case Degraded:
		return id + degradedSuffix
	case Stale:
		return id + staleSuffix
	}
	return id
}

// ParseKey is Key's inverse; ok is false for AbstainKey.
func ParseKey(key string) (id string, v Verdict, ok bool) {
	if key == AbstainKey {
		return "", 0, false
	}
	if id, found := strings.CutSuffix(key, degradedSuffix); found {
		return id, Degraded, true
	}
	if id, found := strings.CutSuffix(key, staleSuffix); found {
		return id, Stale, true
	}
	return key, Down, true
}

// Keys is a ballot as the gossip carries it.
func (b Ballot) Keys() map[string]bool {
	keys := make(map[string]bool, len(b.Verdicts)+1)
	if b.Abstain {
		keys[AbstainKey] = true
	}
	for id, v := range b.Verdicts {
		keys[Key(id, v)] = true
	}
	return keys
}

// ParseTally is a tally of gossip keys (members per key) by target and verdict.
func ParseTally(votes map[string]int) map[string]Count {
	tally := make(map[string]Count, len(votes))
	for key, n := range votes {
		if id, v, ok := ParseKey(key); ok {
			c := tally[id]
			c.add(v, n)
			tally[id] = c
		}
	}
	return tally
}

// Shown is a member's gossiped keys as the status API lists its failing targets: ids,
// Key(id, Degraded) when only degraded; neither stale verdicts nor abstaining.
func Shown(keys []string) []string {
	out := []string{}
	for _, k := range keys {
		if _, v, ok := ParseKey(k); ok && v != Stale {
			out = append(out, k)
		}
	}
	return out
}
