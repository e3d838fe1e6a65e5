package cluster

import (
	"fmt"
	"testing"
	"time"
)

// benchTargets are 10,000 target ids of 28 characters, as a fleet probing 100 products in
// 100 regions would have.
func benchTargets() []string {
	ids := make([]string, 0, 10_000)
	for p := range 100 {
		for r := range 100 {
			ids = append(ids, fmt.Sprintf("product-%02d/journey@region-%02d", p, r))
		}
	}
	return ids
}

// verdictsFiring says the first n of ids fire and the rest are ok.
func verdictsFiring(ids []string, n int) map[string]bool {
	v := make(map[string]bool, len(ids))
	for i, id := range ids {
		v[id] = i < n
	}
	return v
}

func sentBytes(cs []*Cluster) uint64 {
	var n uint64
	for _, c := range cs {
		n += c.Stats().SentBytes
	}
	return n
}

func sentPackets(cs []*Cluster) uint64 {
	var n uint64
	for _, c := range cs {
		n += c.Stats().SentPackets
	}
	return n
}

// allTally reports whether every member tallies exactly the first n ids, each firing on
// every one of the len(cs) members.
func allTally(cs []*Cluster, ids []string, n int) bool {
	for _, c := range cs {
		votes, live := c.Tally()
		if live != len(cs) || len(votes) != n {
			return false
		}
		for _, id := range ids[:n] {
			if votes[id] != len(cs) {
				return false
			}
		}
	}
	return true
}

// waitUntil polls cond every 50ms for at most limit; it reports how long it took and
// whether cond came true.
func waitUntil(limit time.Duration, cond func() bool) (time.Duration, bool) {
	began := time.Now()
	for time.Since(began) < limit {
		if cond() {
			return time.Since(began), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return limit, false
}

// BenchmarkGossipBandwidth runs three members on loopback with memberlist's default LAN
// intervals (gossip 200ms, probe 1s, push-pull 30s), 10,000 targets each, and reports
// from Stats what one member sends:
//
//   - B/s/member: in the steady state, 1,000 targets firing on every member, over one
//     push-pull period (30s);
//   - burst-bytes/member and converge-ms: 2,500 more targets start firing on every member
//     at once; the bytes sent and the time until every member tallies all 3,500 on all
//     three members;
//   - drain-bytes/member and drain-ms: the same until every broadcast queue is empty, the
//     whole cost of the burst;
//   - state-bytes: one push-pull state (three members' verdicts), before memberlist
//     compresses it.
//
// memberlist compresses push-pull states (LZW), so their cost on the wire depends on how
// alike the ids are. It takes two to three minutes and measures once, whatever b.N.
func BenchmarkGossipBandwidth(b *testing.B) {
	ids := benchTargets()
	steady := verdictsFiring(ids, 1_000)

	// The members start alone, set the steady verdicts, then join: each join pulls the
	// state of the member joined, so they agree at once. The broadcasts of the steady
	// verdicts queued meanwhile are dropped: steady means no change in flight.
	var fleet []*Cluster
	for _, name := range []string{"fsn1", "hel1", "ash1"} {
		c, err := Start(Options{Name: name, Bind: "127.0.0.1:0"})
		if err != nil {
			b.Fatalf("start %s: %v", name, err)
		}
		b.Cleanup(func() { c.Close() })
		c.SetLocal(steady)
		fleet = append(fleet, c)
	}
	started := time.Now()
	for _, join := range [][2]int{{1, 0}, {2, 0}, {1, 2}} {
		if _, err := fleet[join[0]].ml.Join([]string{fleet[join[1]].Addr()}); err != nil {
			b.Fatalf("join %s to %s: %v", fleet[join[0]].name, fleet[join[1]].name, err)
		}
	}
	for _, c := range fleet {
		c.queue.Reset()
	}
	if _, ok := waitUntil(10*time.Second, func() bool { return allTally(fleet, ids, 1_000) }); !ok {
		b.Fatalf("the three members did not agree on the 1,000 steady verdicts within 10s")
	}
	state := len(fleet[0].encodeState())

	// memberlist's first push-pull comes a random stagger below one period after the
	// period itself: from one period after the start, every period-long window holds
	// exactly one push-pull started by each member.
	period := 30 * time.Second
	time.Sleep(time.Until(started.Add(period + 500*time.Millisecond)))
	b.ResetTimer()
	bytes0, packets0 := sentBytes(fleet), sentPackets(fleet)
	time.Sleep(period)
	steadyRate := float64(sentBytes(fleet)-bytes0) / 3 / period.Seconds()
	steadyPackets := float64(sentPackets(fleet)-packets0) / 3 / period.Seconds()

	burst := verdictsFiring(ids, 3_500)
	bytes0 = sentBytes(fleet)
	began := time.Now()
	for _, c := range fleet {
		c.SetLocal(burst)
	}
	converged, ok := waitUntil(120*time.Second, func() bool { return allTally(fleet, ids, 3_500) })
	if !ok {
		b.Fatalf("the burst of 2,500 did not converge within %s", converged)
	}
	burstBytes := float64(sentBytes(fleet)-bytes0) / 3
	_, ok = waitUntil(180*time.Second-time.Since(began), func() bool {
		for _, c := range fleet {
			if c.queue.NumQueued() > 0 {
				return false
			}
		}
		return true
	})
	drained := time.Since(began)
	drainBytes := float64(sentBytes(fleet)-bytes0) / 3
	b.StopTimer()

	b.ReportMetric(steadyRate, "B/s/member")
	b.ReportMetric(steadyPackets, "pkts/s/member")
	b.ReportMetric(burstBytes, "burst-bytes/member")
	b.ReportMetric(float64(converged.Milliseconds()), "converge-ms")
	b.ReportMetric(drainBytes, "drain-bytes/member")
	b.ReportMetric(float64(drained.Milliseconds()), "drain-ms")
	b.ReportMetric(float64(state), "state-bytes")
	if !ok {
		b.Logf("the broadcast queues were not empty after %s: drain figures are to then", drained)
	}
}
