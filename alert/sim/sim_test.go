package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
)

// A region outage pages the region once and resolves it once it heals.
func TestRegionOutagePagesAndResolves(t *testing.T) {
	s := newSim(t, Options{Platform: basicPlatform(3, 2)})
	s.At(2*time.Minute).Fail("r1", "*")
	s.At(20*time.Minute).Heal("r1", "*")
	run(t, s, 40*time.Minute)
	if err := s.CheckQuiet(15 * time.Minute); err != nil {
		t.Fatal(err)
	}
	want := []string{"OPEN picket/region/r1", "CLOSE picket/region/r1"}
	if got := transitions(s.Receiver("pager")); !slices.Equal(got, want) {
		t.Fatalf("pager: got %v, want %v\n%s", got, want, s.trace("picket/region/r1"))
	}
}

// I3 judges a page by the targets it was about when it left (seed 7782). With no group
// wait, the first result of r2's outage joins p1/j@r2 to silenced p1/j@r1 as product
// p1, which pages at once (p1/j@r2 is silenced by nobody); the next result of the same
// round makes region r2, which takes p1/j@r2, and leaves p1 with only silenced r1.
func TestSilenceRuleJudgesThePageWhenQueued(t *testing.T) {
	p := basicPlatform(2, 2)
	p.GroupWait = -1 // group_wait: 0s
	s := newSim(t, Options{Platform: p, Slots: 1})
	s.At(time.Minute).Silence(config.Match{Region: []string{"r1"}}, time.Hour)
	s.At(2*time.Minute).Fail("r1", "p1")
	s.At(5*time.Minute).Fail("r2", "*")
	run(t, s, 10*time.Minute)
	key := "picket/product/p1"
	inc, ok := s.Engine().Incident(key)
	if !ok || !inc.Triggered || !slices.Equal(inc.Targets, []string{"p1/j@r1"}) {
		t.Fatalf("want %s paged and narrowed to the silenced p1/j@r1 (the scenario this rule is about), got open %v, triggered %v, targets %v\n%s",
			key, ok, inc.Triggered, inc.Targets, s.trace(key))
	}
}

// I5 lets one run lack an incident that its receiver never heard of (seed 8952): the
// pager is down while p1/j@r1 fails and heals, so the outbox coalesces the trigger
// with its resolve; in the other run the pager is back a little sooner and sees it
// open and close. Which one happens is retry timing, and a restart changes that timing.
// A run that lacks the incident for no such reason still breaks I5.
func TestRestartRuleAllowsUnseenIncident(t *testing.T) {
	p := basicPlatform(3, 2)
	p.Routes = []Route{{Notify: []string{"pd"}}}
	outage := func(pagerDown time.Duration, fails bool) *Sim {
		s := newSim(t, Options{Platform: p, Slots: 1})
		s.ReceiverFault("pager", FaultDown, 0, pagerDown)
		if fails {
			s.At(time.Minute).Fail("r1", "p1")
			s.At(8*time.Minute).Heal("r1", "p1")
		}
		run(t, s, 30*time.Minute)
		return s
	}
	unseen, seen := outage(20*time.Minute, true), outage(5*time.Minute, true)
	key := "picket/target/p1/j@r1"
	if got := transitions(seen.Receiver("pager")); !slices.Equal(got, []string{"OPEN " + key, "CLOSE " + key}) {
		t.Fatalf("pager back at 0:05: got %v, want %s opened and closed\n%s", got, key, seen.trace(key))
	}
	if got := transitions(unseen.Receiver("pager")); len(got) > 0 {
		t.Fatalf("pager down until 0:20: got %v, want nothing (trigger coalesced with its resolve)\n%s", got, unseen.trace(key))
	}
	for _, pair := range [][2]*Sim{{unseen, seen}, {seen, unseen}} {
		if v := CompareRestart(pair[0], pair[1]); v != nil {
			t.Errorf("an incident the pager never heard of (coalesced) counted against I5: %v", v)
		}
	}
	if v := CompareRestart(outage(20*time.Minute, false), seen); v == nil {
		t.Errorf("a run without the incident at all passed I5")
	}
}
