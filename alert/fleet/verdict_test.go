package fleet

import (
	"maps"
	"testing"
)

// The gossip's keys are the wire form of a ballot: a tally of them must read back as
// the ballots' verdicts, abstaining ones counting for nothing.
func TestBallotKeysTallyBack(t *testing.T) {
	a := Ballot{Verdicts: map[string]Verdict{"web@eu1": Down, "api@eu1": Degraded, "db@eu1": Stale}}
	b := Ballot{Verdicts: map[string]Verdict{"web@eu1": Degraded}}
	abstain := Ballot{Abstain: true}
	keys := map[string]int{}
	want := map[string]Count{}
	for _, ballot := range []Ballot{a, b, abstain} {
		for k := range ballot.Keys() {
			keys[k]++
		}
		Add(want, ballot)
	}
	if got := ParseTally(keys); !maps.Equal(got, want) {
		t.Fatalf("tally of the keys: %v, want %v", got, want)
	}
	if want["web@eu1"] != (Count{Down: 1, Degraded: 1}) {
		t.Fatalf("web@eu1: %+v", want["web@eu1"])
	}
	if got := Shown([]string{"web@eu1", Key("db@eu1", Stale), AbstainKey, Key("api@eu1", Degraded)}); len(got) != 2 || got[1] != "api@eu1#degraded" {
		t.Fatalf("shown: %q", got)
	}
}
