package fleet

import (
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/clock"
)

// fakeGossip is a gossip layer that says what the test sets: members and keys.
type fakeGossip struct {
	name    string
	members []GossipMember
	keys    map[string]map[string]bool // member -> keys it gossips
	pages   map[string]Page
}

func (g *fakeGossip) Name() string                  { return g.name }
func (g *fakeGossip) SetLocal(keys map[string]bool) { g.keys[g.name] = keys }
func (g *fakeGossip) Tally() map[string]int         { return nil }
func (g *fakeGossip) Members() []GossipMember       { return g.members }
func (g *fakeGossip) Generation() uint64            { return 0 }
func (g *fakeGossip) IsLive(string) bool            { return true }
func (g *fakeGossip) Reported(string) bool          { return true }
func (g *fakeGossip) Says(m, key string) bool       { return g.keys[m][key] }
func (g *fakeGossip) Views() map[string][]string    { return nil }
func (g *fakeGossip) Page(key string) (Page, bool)  { p, ok := g.pages[key]; return p, ok }
func (g *fakeGossip) RecordPage(key string, open bool) {
	g.pages[key] = Page{Open: open, By: g.name}
}
func (g *fakeGossip) ConfirmPage(string, bool) {}

func alive(name string, self bool) GossipMember {
	return GossipMember{Name: name, State: StateAlive, Self: self, Reported: true}
}

// Shards of one vantage keep it no company, and an abstaining vantage counts towards
// no quorum; alone, the isolation notice comes once alone_after has passed, once.
func TestGossipFleetCountsVantages(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	self, other := "a#0", "a#1" // the shard that ranks first for the isolation notice sends it
	if Rank("picket/isolated/a", self, []string{other}) != 0 {
		self, other = other, self
	}
	g := &fakeGossip{name: self, keys: map[string]map[string]bool{}, pages: map[string]Page{},
		members: []GossipMember{alive(self, true), alive(other, false)}}
	f := NewGossipFleet(g, "a", clk)
	if alone, _ := f.Alone(); !alone || f.LiveVantages() != 1 {
		t.Fatalf("two shards of one vantage: alone %v, live %d; want alone, 1", alone, f.LiveVantages())
	}
	if n := f.Notices(time.Minute); len(n) != 0 {
		t.Fatalf("alone for less than alone_after: %+v", n)
	}
	clk.Advance(time.Minute)
	n := f.Notices(time.Minute)
	if len(n) != 1 || n[0].Key != "picket/isolated/a" || !n[0].Open {
		t.Fatalf("alone for alone_after: %+v, want the isolation notice", n)
	}
	g.RecordPage(n[0].Key, true)
	if n := f.Notices(time.Minute); len(n) != 0 {
		t.Fatalf("the isolation notice again: %+v", n)
	}
	g.members = append(g.members, alive("b", false), alive("c", false))
	g.keys["c"] = map[string]bool{AbstainKey: true}
	if alone, _ := f.Alone(); alone || f.LiveVantages() != 2 {
		t.Fatalf("with b and an abstaining c: alone %v, live %d; want not alone, 2", alone, f.LiveVantages())
	}
	if n := f.Notices(time.Minute); len(n) != 1 || n[0].Open {
		t.Fatalf("back with the fleet: %+v, want the isolation notice resolved", n)
	}
}
