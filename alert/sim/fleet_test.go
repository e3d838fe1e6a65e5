package sim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/alert/notify"
)

// fleetSim is a fleet of n vantages over basicPlatform(3, 2). Every target runs in the
// same slot of its interval, so that a region's targets fail together and the fleet's
// pages are not also delayed by a second group wait (knownSeeds: seed 3).
func fleetSim(t *testing.T, spec FleetSpec) *Sim {
	return newSim(t, Options{Platform: basicPlatform(3, 2), Fleet: &spec, Slots: 1})
}

// triggerSources lists, in order, the vantages whose triggers of key the receiver took.
func triggerSources(r *Receiver, key string) []string {
	var out []string
	for _, ev := range eventsOf(r, key, notify.ActionTrigger) {
		out = append(out, ev.Source)
	}
	return out
}

// firstSender is the vantage that ranks first for key among names.
func firstSender(key string, names []string) string {
	for _, n := range names {
		if fleet.Rank(key, n, names) == 0 {
			return n
		}
	}
	return ""
}

// A healthy fleet pages an outage once, from one vantage, and resolves it.
func TestFleetPagesOnce(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := fleetSim(t, FleetSpec{Vantages: n})
			s.At(time.Minute).Fail("r1", "*")
			s.At(15*time.Minute).Heal("r1", "*")
			run(t, s, 30*time.Minute)
			quiet(t, s)
			key := "picket/region/r1"
			pager := s.Receiver("pager")
			if got := transitions(pager); !slices.Equal(got, []string{"OPEN " + key, "CLOSE " + key}) {
				t.Fatalf("pager: %v\n%s", got, s.trace(key))
			}
			if src := triggerSources(pager, key); len(src) != 1 {
				t.Fatalf("triggers from %v, want one\n%s", src, s.trace(key))
			}
		})
	}
}

// Cut off from the majority, a vantage holds its pages for alone_after (then pages on
// its own evidence); the majority still pages at once.
func TestFleetPartition(t *testing.T) {
	cases := []struct {
		n              int
		minor, major   []string
		aloneAfter     time.Duration
		wantFromMinors bool // the minority pages once alone_after has passed
	}{
		{3, []string{"v1"}, []string{"v2", "v3"}, 2 * time.Minute, true},
		{5, []string{"v1", "v2"}, []string{"v3", "v4", "v5"}, 2 * time.Minute, true},
		{5, []string{"v1", "v2"}, []string{"v3", "v4", "v5"}, time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%v/%s", tc.n, tc.minor, tc.aloneAfter), func(t *testing.T) {
			s := fleetSim(t, FleetSpec{Vantages: tc.n, AloneAfter: tc.aloneAfter})
			s.At(time.Minute).Partition(tc.minor, tc.major)
			s.At(2*time.Minute).Fail("r1", "*")
			s.At(20*time.Minute).Heal("r1", "*")
			s.At(25 * time.Minute).Partition()
			run(t, s, 40*time.Minute)
			quiet(t, s)
			key := "picket/region/r1"
			src := triggerSources(s.Receiver("pager"), key)
			if len(src) == 0 || !slices.Contains(tc.major, src[0]) {
				t.Fatalf("triggers from %v, want the majority %v first\n%s", src, tc.major, s.trace(key))
			}
			fromMinor := slices.ContainsFunc(src, func(v string) bool { return slices.Contains(tc.minor, v) })
			if fromMinor != tc.wantFromMinors {
				t.Fatalf("triggers from %v: a trigger from the minority %v: %v, want %v\n%s", src, tc.minor, fromMinor, tc.wantFromMinors, s.trace(key))
			}
		})
	}
}

// When the first sender cannot reach the pager, another vantage takes over after
// takeover_after: the page arrives once (at most one duplicate when the first one's
// path heals).
func TestFleetTakeover(t *testing.T) {
	s := fleetSim(t, FleetSpec{Vantages: 3})
	key := "picket/region/r1"
	first := firstSender(key, []string{"v1", "v2", "v3"})
	s.ReceiverFaultFrom("pager", FaultDown, first, 0, 10*time.Minute)
	s.ReceiverFaultFrom("chat", FaultDown, first, 0, 10*time.Minute)
	s.At(time.Minute).Fail("r1", "*")
	s.At(20*time.Minute).Heal("r1", "*")
	run(t, s, 30*time.Minute)
	quiet(t, s)
	src := triggerSources(s.Receiver("pager"), key)
	if len(src) == 0 || src[0] == first || len(src) > 2 {
		t.Fatalf("the first sender %s could not reach the pager: triggers from %v, want one from another vantage (at most one duplicate)\n%s",
			first, src, s.trace(key))
	}
}

// A crashed vantage's peers page without it; when it is back it repeats nothing.
func TestFleetCrashAndReturn(t *testing.T) {
	s := fleetSim(t, FleetSpec{Vantages: 3})
	key := "picket/region/r1"
	first := firstSender(key, []string{"v1", "v2", "v3"})
	s.At(30 * time.Second).Crash(first)
	s.At(time.Minute).Fail("r1", "*")
	s.At(8 * time.Minute).Start(first)
	s.At(20*time.Minute).Heal("r1", "*")
	run(t, s, 30*time.Minute)
	quiet(t, s)
	if got := transitions(s.Receiver("pager")); !slices.Equal(got, []string{"OPEN " + key, "CLOSE " + key}) {
		t.Fatalf("pager: %v\n%s", got, s.trace(key))
	}
	if src := triggerSources(s.Receiver("pager"), key); len(src) > 2 {
		t.Fatalf("triggers from %v, want one (a duplicate at most)", src)
	}
}
