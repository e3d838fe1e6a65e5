package fleet

import (
	"fmt"
	"hash/fnv"
	"slices"
	"testing"
)

func TestRendezvousHashIsFNV1a(t *testing.T) {
	for _, tc := range [][2]string{{"", ""}, {"p/j@eu1", "fsn1"}, {"k", "a\x00b"}} {
		h := fnv.New64a()
		h.Write([]byte(tc[0] + "\x00" + tc[1]))
		if got, want := rendezvousHash(tc[0], tc[1]), h.Sum64(); got != want {
			t.Errorf("%q, %q: expected %x, got %x", tc[0], tc[1], want, got)
		}
	}
}

// ranksAgree checks that, for each key, the members' ranks among each other are 0..n-1
// in some order (they agree who is which), and counts for how many keys each sends.
func ranksAgree(t *testing.T, keys, members []string) map[string]int {
	t.Helper()
	senders := map[string]int{}
	for _, k := range keys {
		var got []int
		for _, m := range members {
			pos := Rank(k, m, members) // self in the list is skipped
			got = append(got, pos)
			if pos == 0 {
				senders[m]++
			}
		}
		if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, []int{0, 1, 2}[:len(members)]) {
			t.Fatalf("key %q: expected ranks 0..%d, one each, got %v", k, len(members)-1, got)
		}
	}
	return senders
}

func TestRankAgreesAndSpreadsSenders(t *testing.T) {
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("product-%02d/journey@region-%02d", i%7, i))
	}
	senders := ranksAgree(t, keys, []string{"a", "b", "c"})
	for _, m := range []string{"a", "b", "c"} {
		if senders[m] == 0 {
			t.Errorf("expected %s to send for some of 100 keys, got senders %v", m, senders)
		}
	}
	senders = ranksAgree(t, keys, []string{"a", "b"}) // c is gone
	if senders["a"] == 0 || senders["b"] == 0 {
		t.Errorf("expected a and b to share the keys, got senders %v", senders)
	}
}

func TestCutOff(t *testing.T) {
	for _, tc := range []struct {
		heard, known int
		want         bool
	}{
		{1, 1, true},  // a fleet of one is alone
		{1, 3, true},  // no other vantage heard
		{2, 2, false}, // both of two
		{2, 3, false}, // the majority side
		{2, 4, true},  // half is no majority
		{3, 5, false},
		{2, 5, true},
	} {
		if got := CutOff(tc.heard, tc.known); got != tc.want {
			t.Errorf("CutOff(%d heard of %d) = %v, want %v", tc.heard, tc.known, got, tc.want)
		}
	}
}
