package sim

import (
	"slices"
	"testing"
	"time"
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
