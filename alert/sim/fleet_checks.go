package sim

import (
	"time"

	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/alert/notify"
)

// checkFleet runs the fleet's invariants (F1-F3) and the receiver-side ones (I4).
func (c *checker) checkFleet() {
	n := c.s.net
	c.sides = max(c.sides, n.sides())
	c.checkMinority()
	c.checkOnePage()
	if leader := c.majorityLeader(); leader != nil {
		if w, ok := c.look(leader); ok {
			c.fleetView(&w, leader)
			c.track(w)
			c.checkCoverage(w, F3Majority)
		}
	}
	c.sentSeen = len(c.s.sent)
}

// checkMinority (F2): a vantage cut off from the fleet's majority queues no trigger
// until it has been alone for alone_after.
func (c *checker) checkMinority() {
	n := c.s.net
	for _, sn := range c.s.sent[c.sentSeen:] {
		m := n.members[sn.Vantage]
		if sn.Action != notify.ActionTrigger || m == nil || !m.alone {
			continue
		}
		if alone := c.s.elapsed - m.aloneSince; alone < n.spec.aloneAfter() {
			c.fail(F2Minority, sn.Key+" from "+sn.Vantage, "", "%s queued a trigger of %s %s after it was cut off from the majority (alone_after %s)",
				sn.Vantage, sn.Key, fmtDur(alone), n.spec.aloneAfter())
		}
	}
}

// checkOnePage (F1): within one opening of a key at a receiver (trigger to resolve),
// triggers come from at most one vantage, plus one more for a takeover, plus one per
// extra partition side that existed (an isolated side pages on its own evidence), plus
// one per vantage that crashed (its unconfirmed page is taken over again).
func (c *checker) checkOnePage() {
	limit := 2 + max(0, c.sides-1) + c.crashes
	for _, r := range c.s.Receivers() {
		sources := map[string]map[string]bool{} // key -> vantages that triggered it in this opening
		for _, ev := range r.Events() {
			if !ev.Recorded || ev.Action != notify.ActionTrigger {
				if ev.Closed {
					delete(sources, ev.Key)
				}
				continue
			}
			if sources[ev.Key] == nil {
				sources[ev.Key] = map[string]bool{}
			}
			sources[ev.Key][ev.Source] = true
			if len(sources[ev.Key]) > limit {
				c.fail(F1OnePage, ev.Key+" at "+r.name, c.s.cascadeHint(ev.At), "%s got triggers of %s from %d vantages in one opening (%v), at most %d expected",
					r.name, ev.Key, len(sources[ev.Key]), sortedKeys(sources[ev.Key]), limit)
			}
		}
	}
}

// fleetView turns the leader's view into its side's: a target fires when a majority of
// the fleet votes it firing there (the quorum, by the verdicts the vantages publish, as
// the engines count them), an incident is paged when any vantage on the
// side paged it (one vantage sends for the fleet), and a target is silenced when a
// silence of any running vantage on the side covers it. Run-time silences belong to the
// vantage they were made on (the fleet does not share them), and one made while a
// vantage was down is missing there after its start: whether the fleet then pages
// depends on which vantage ranks first for the key, so the rule asks a page only for
// what no vantage of the side silences.
func (c *checker) fleetView(w *view, leader *vantage) {
	n := c.s.net
	paged := map[string]bool{}
	votes := map[string]int{}
	for _, v := range c.s.vantages {
		if v.down || n.side[v.name] != n.side[leader.name] {
			continue
		}
		if v != leader {
			w.silences = append(w.silences, v.engine.Silences()...)
		}
		for _, inc := range v.engine.OpenIncidents() {
			paged[inc.Key] = paged[inc.Key] || inc.Triggered
		}
		for id, verdict := range n.members[v.name].local.Verdicts {
			if verdict != fleet.Stale { // a stale verdict never makes a failure
				votes[id]++
			}
		}
	}
	for id := range w.firing {
		if 2*votes[id] <= len(n.names) {
			delete(w.firing, id)
		}
	}
	for i := range w.incidents {
		w.incidents[i].Triggered = w.incidents[i].Triggered || paged[w.incidents[i].Key]
	}
}

// majorityLeader is the first running, unimpaired vantage on a side with a majority of
// the fleet, or nil when no side has one.
func (c *checker) majorityLeader() *vantage {
	n := c.s.net
	for _, v := range c.s.vantages {
		m := n.members[v.name]
		if v.down || m == nil || c.s.impaired[v.name] || m.alone {
			continue
		}
		return v
	}
	return nil
}

// sides counts the partition sides with a running member.
func (n *network) sides() int {
	seen := map[int]bool{}
	for name, m := range n.members {
		if m != nil {
			seen[n.side[name]] = true
		}
	}
	return len(seen)
}

// cascadeHint names the likely cause of too many senders: some receiver failed for
// every vantage around at, so each took over in turn.
func (s *Sim) cascadeHint(at time.Duration) string {
	for _, r := range s.Receivers() {
		for _, f := range r.Faults() {
			if f.Source == "" && f.From <= at && at < f.To+s.net.spec.takeoverAfter()*time.Duration(len(s.net.names)) {
				return HintCascade
			}
		}
	}
	return ""
}
