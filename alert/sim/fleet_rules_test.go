package sim

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
)

// The fleet's rules, each as the scripted scenario of the daemon test of the same name
// (internal/daemon, real memberlist on loopback), asserting the same outcome on the
// simulated receivers and engines. A vantage's own broken path to a region (the daemon
// tests' per-member URLs) is FailFrom; a cut-off vantage is Partition.

// regionKey is the page of every scenario here: both products of r1 fail.
const regionKey = "picket/region/r1"

// fleetNames are the vantages of a fleet of n.
func fleetNames(n int) []string { return (&FleetSpec{Vantages: n}).names() }

// pdOnlyFleet is fleetSim with everything routed to the pager alone, no fallback: the
// daemon tests' route.
func pdOnlyFleet(t *testing.T, spec FleetSpec) *Sim {
	p := basicPlatform(3, 2)
	p.Routes = []Route{{Notify: []string{"pd"}}}
	return newSim(t, Options{Platform: p, Fleet: &spec, Slots: 1})
}

// resolveTimes lists when the receiver took resolves of key.
func resolveTimes(r *Receiver, key string) []time.Duration {
	var out []time.Duration
	for _, ev := range eventsOf(r, key, notify.ActionResolve) {
		out = append(out, ev.At)
	}
	return out
}

// hasNote reports whether the vantage's incident of key has a timeline entry of kind.
func hasNote(t *testing.T, s *Sim, vantage, key, kind string) bool {
	t.Helper()
	inc, ok, err := s.Vantage(vantage).FindIncident(key)
	if err != nil || !ok {
		t.Fatalf("%s has no incident %s (err %v)", vantage, key, err)
	}
	return slices.ContainsFunc(inc.Timeline, func(ev alert.Event) bool { return ev.Kind == kind })
}

// v1 and v3 see r1 down (their paths to it are broken), which would make quorum 2 of
// 3; but v3's own network checks fail, so it gives no verdicts and nothing is paged.
func TestImpairedVantageGivesNoVerdicts(t *testing.T) {
	s := fleetSim(t, FleetSpec{Vantages: 3, Quorum: 2})
	s.At(0).SetImpaired("v3", true)
	s.At(time.Minute).FailFrom("v1", "r1", "*").FailFrom("v3", "r1", "*")
	run(t, s, 15*time.Minute)
	if st := stateOf(s, "v3", "p1/j@r1"); st != "firing" {
		t.Fatalf("v3 sees p1/j@r1 %q itself, want firing", st)
	}
	if got := s.Vantage("v1").Snapshot().Votes["p1"]["r1"]; got != "down from 1 of 2" {
		t.Errorf("v1's votes for p1 in r1: %q, want %q (v3 abstains)", got, "down from 1 of 2")
	}
	if sent := s.Sent(); len(sent) > 0 {
		t.Fatalf("paged on the word of an impaired vantage: %v\n%s", sent, s.trace(regionKey))
	}
	quiet(t, s)
}

// stateOf is a target's own state on one vantage.
func stateOf(s *Sim, vantage, target string) string {
	for _, ts := range s.Vantage(vantage).Snapshot().Targets {
		if ts.Target == target {
			return string(ts.State)
		}
	}
	return ""
}

// Two vantages page r1 together; then one of them (the sender, or the other) is
// impaired. Its view must not resolve the fleet's page while the outage goes on.
func TestImpairedOfTwoDoesNotResolveFleetPage(t *testing.T) {
	sender := firstSender(regionKey, fleetNames(2))
	for _, impaired := range fleetNames(2) {
		t.Run(map[bool]string{true: "sender", false: "other"}[impaired == sender], func(t *testing.T) {
			s := fleetSim(t, FleetSpec{Vantages: 2})
			s.At(time.Minute).Fail("r1", "*")
			s.At(4*time.Minute).SetImpaired(impaired, true)
			s.At(20*time.Minute).Heal("r1", "*")
			run(t, s, 20*time.Minute)
			pager := s.Receiver("pager")
			if len(triggerSources(pager, regionKey)) == 0 {
				t.Fatalf("r1 was never paged\n%s", s.trace(regionKey))
			}
			if at := resolveTimes(pager, regionKey); len(at) > 0 {
				t.Fatalf("%s impaired at 0:04: the outage still goes on, yet it was resolved at %v\n%s", impaired, at, s.trace(regionKey))
			}
			quiet(t, s)
		})
	}
}

// A side cut off from the fleet's majority that sees r1 up changes nothing on that
// word: it does not resolve the page the majority still sees, neither while it holds
// (alone, for alone_after) nor after, isolated: a page made before the cut is the
// fleet's, whichever side its sender ended up on, and waits for the fleet. The fleet
// resolves it once, after the majority sees r1 up.
func cutOffSideKeepsFleetPage(t *testing.T, n, cutOff int) {
	names := fleetNames(n)
	sender := firstSender(regionKey, names)
	for _, senderCutOff := range []bool{false, true} {
		t.Run(map[bool]string{false: "sender in the majority", true: "sender cut off"}[senderCutOff], func(t *testing.T) {
			var minor, major []string
			if senderCutOff {
				minor = append(minor, sender)
			}
			for _, v := range names {
				switch {
				case v == sender && senderCutOff:
				case v != sender && len(minor) < cutOff:
					minor = append(minor, v)
				default:
					major = append(major, v)
				}
			}
			s := fleetSim(t, FleetSpec{Vantages: n, AloneAfter: 5 * time.Minute})
			for _, v := range names {
				s.At(time.Minute).FailFrom(v, "r1", "*")
			}
			s.At(5*time.Minute).Partition(minor, major)
			for _, v := range minor {
				s.At(6*time.Minute).HealFrom(v, "r1", "*")
			}
			s.At(25 * time.Minute).Partition()
			for _, v := range major {
				s.At(30*time.Minute).HealFrom(v, "r1", "*")
			}
			run(t, s, 25*time.Minute)
			pager := s.Receiver("pager")
			if src := triggerSources(pager, regionKey); len(src) != 1 || src[0] != sender {
				t.Fatalf("triggers from %v, want one from %s\n%s", src, sender, s.trace(regionKey))
			}
			if at := resolveTimes(pager, regionKey); len(at) > 0 {
				t.Fatalf("%v, cut off at 0:05 and seeing r1 up from 0:06 (alone_after 5m), resolved the page %v still see, at %v\n%s",
					minor, major, at, s.trace(regionKey))
			}
			run(t, s, 15*time.Minute)
			if at := resolveTimes(pager, regionKey); len(at) != 1 || at[0] < 30*time.Minute {
				t.Fatalf("resolves at %v, want one after the majority saw r1 up at 0:30\n%s", at, s.trace(regionKey))
			}
			quiet(t, s)
		})
	}
}

// One vantage of three cut off.
func TestAloneVantageDoesNotResolveFleetPage(t *testing.T) { cutOffSideKeepsFleetPage(t, 3, 1) }

// Two vantages of five cut off together (they hear each other: still no majority).
func TestMinorityPartitionDoesNotResolveFleetPage(t *testing.T) { cutOffSideKeepsFleetPage(t, 5, 2) }

// v3 is cut off and its own path to r1 breaks; r1 goes down for everyone and recovers:
// v1 and v2 page and resolve it. v3 pages alone after alone_after, after their resolve
// (isolated at 0:06, its incident opens within a minute of that resolve: no older than
// the records' clock skew). When the cut heals, the fleet's older resolve does not count
// as resolving v3's later page: v3's page is resolved.
func TestIsolatedPageIsResolvedAfterHeal(t *testing.T) {
	s := fleetSim(t, FleetSpec{Vantages: 3, AloneAfter: 5 * time.Minute})
	s.At(time.Minute).Partition([]string{"v3"}, []string{"v1", "v2"})
	s.At(2*time.Minute).Fail("r1", "*").FailFrom("v3", "r1", "*")
	s.At(5*time.Minute).Heal("r1", "*") // v3's path stays broken
	s.At(12 * time.Minute).Partition()
	run(t, s, 30*time.Minute)
	pager := s.Receiver("pager")
	var fromV3 time.Duration
	for _, ev := range eventsOf(pager, regionKey, notify.ActionTrigger) {
		if ev.Source == "v3" {
			fromV3 = ev.At
		}
	}
	fleetResolve := resolveTimes(pager, regionKey)
	switch {
	case fromV3 == 0:
		t.Fatalf("v3, isolated since 0:06, never paged r1 on its own evidence\n%s", s.trace(regionKey))
	case len(fleetResolve) == 0 || fleetResolve[0] > fromV3:
		t.Fatalf("resolves at %v: want the fleet's before v3's page at %s\n%s", fleetResolve, fmtDur(fromV3), s.trace(regionKey))
	case pager.IsOpen(regionKey):
		t.Fatalf("v3's page of %s at %s was never resolved after the cut healed at 0:12 (resolves at %v)\n%s",
			regionKey, fmtDur(fromV3), fleetResolve, s.trace(regionKey))
	case len(fleetResolve) > 2:
		t.Fatalf("resolves at %v, want at most 2 (the fleet's, one for v3's page)", fleetResolve)
	}
	quiet(t, s)
}

// The route has two notifiers; the first sender's path to the pager fails while chat
// accepts. That is not a confirmed page: the other vantage takes over, and the pager
// gets the page once, from it.
func TestOtherNotifierDoesNotConfirmFailingPager(t *testing.T) {
	names := fleetNames(2)
	first := firstSender(regionKey, names)
	second := names[0]
	if second == first {
		second = names[1]
	}
	s := fleetSim(t, FleetSpec{Vantages: 2})
	s.ReceiverFaultFrom("pager", FaultDown, first, 0, time.Hour)
	s.At(time.Minute).Fail("r1", "*")
	run(t, s, 10*time.Minute)
	if src := triggerSources(s.Receiver("chat"), regionKey); !slices.Contains(src, first) {
		t.Fatalf("chat got triggers from %v, want one from the first sender %s\n%s", src, first, s.trace(regionKey))
	}
	if src := triggerSources(s.Receiver("pager"), regionKey); !slices.Equal(src, []string{second}) {
		t.Fatalf("the pager got triggers from %v, want one from %s (chat's acceptance does not confirm a page)\n%s",
			src, second, s.trace(regionKey))
	}
	quiet(t, s)
}

// The first sender's paging service fails for it (its path answers 5xx); its page is
// never confirmed, so the other vantage sends after takeover_after, once, and the
// resolve likewise; its timeline records the takeover.
func TestSenderThatCannotDeliverIsTakenOver(t *testing.T) {
	names := fleetNames(2)
	first := firstSender(regionKey, names)
	second := names[0]
	if second == first {
		second = names[1]
	}
	s := pdOnlyFleet(t, FleetSpec{Vantages: 2})
	s.ReceiverFaultFrom("pager", FaultDown, first, 0, time.Hour)
	s.At(time.Minute).Fail("r1", "*")
	s.At(6*time.Minute).Heal("r1", "*")
	run(t, s, 15*time.Minute)
	pager := s.Receiver("pager")
	if src := triggerSources(pager, regionKey); !slices.Equal(src, []string{second}) {
		t.Fatalf("the pager got triggers from %v, want one from %s\n%s", src, second, s.trace(regionKey))
	}
	if at := resolveTimes(pager, regionKey); len(at) != 1 {
		t.Fatalf("resolves at %v, want one\n%s", at, s.trace(regionKey))
	}
	if !hasNote(t, s, second, regionKey, "takeover") {
		t.Errorf("%s's timeline does not record the takeover\n%s", second, s.trace(regionKey))
	}
	quiet(t, s)
}

// The first sender's path to the pager fails; another vantage takes over the trigger
// and the resolve. When the first sender's path comes back, or it comes back from a
// crash with the trigger still in its store, its queued trigger is dropped unsent
// instead of reopening the incident.
func TestStaleTriggerDroppedAfterTakeover(t *testing.T) {
	cases := []struct {
		name     string
		vantages int
		script   func(s *Sim, first string)
	}{
		// Its next retry finds the other vantage's trigger accepted: the incident is open.
		{"path back", 2, func(*Sim, string) {}},
		// Crashed between two retries, back after the resolve: it finds a resolve
		// accepted after its trigger was made. (Three vantages: two are still a
		// majority while it is down.)
		{"restarted", 3, func(s *Sim, first string) {
			s.At(125 * time.Second).Crash(first)
			s.At(8 * time.Minute).Start(first)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := firstSender(regionKey, fleetNames(tc.vantages))
			s := pdOnlyFleet(t, FleetSpec{Vantages: tc.vantages})
			s.ReceiverFaultFrom("pager", FaultDown, first, 0, 10*time.Minute)
			s.At(time.Minute).Fail("r1", "*")
			s.At(5*time.Minute).Heal("r1", "*")
			tc.script(s, first)
			run(t, s, 20*time.Minute)
			want := []string{"OPEN " + regionKey, "CLOSE " + regionKey}
			if got := transitions(s.Receiver("pager")); !slices.Equal(got, want) {
				t.Fatalf("pager: %v, want %v (%s's path came back at 0:10)\n%s", got, want, first, s.trace(regionKey))
			}
			for _, v := range s.vantages {
				if entries := v.outbox.Entries(); len(entries) > 0 {
					t.Errorf("%s's outbox still holds %v", v.name, entries)
				}
			}
			quiet(t, s)
		})
	}
}

// The engine's half of the daemon's partition test (its [VANTAGE x] and [ISOLATED x]
// notices are the daemon's): v3 is cut off; v1 and v2 page the region outage once; v3,
// alone for alone_after, pages on its own evidence, once, and says it is isolated.
// When the cut heals, the recovery is resolved once.
func TestPartitionedVantagePagesAlone(t *testing.T) {
	s := fleetSim(t, FleetSpec{Vantages: 3, AloneAfter: 2 * time.Minute})
	s.At(time.Minute).Partition([]string{"v3"}, []string{"v1", "v2"})
	s.At(2*time.Minute).Fail("r1", "*")
	s.At(12 * time.Minute).Partition()
	s.At(15*time.Minute).Heal("r1", "*")
	run(t, s, 30*time.Minute)
	pager := s.Receiver("pager")
	var fleet, alone int
	for _, ev := range eventsOf(pager, regionKey, notify.ActionTrigger) {
		isolated := strings.Contains(ev.Summary, "sent by an isolated vantage")
		switch {
		case ev.Source == "v3" && !isolated:
			t.Errorf("v3's page does not say it is isolated: %q", ev.Summary)
		case ev.Source != "v3" && strings.Contains(ev.Summary, "isolated"):
			t.Errorf("the fleet's page says isolated: %q", ev.Summary)
		}
		if ev.Source == "v3" {
			alone++
		} else {
			fleet++
		}
	}
	if fleet != 1 || alone != 1 {
		t.Fatalf("the fleet paged r1 %d times and v3 %d times, want 1 and 1\n%s", fleet, alone, s.trace(regionKey))
	}
	if at := resolveTimes(pager, regionKey); len(at) != 1 || at[0] < 15*time.Minute {
		t.Fatalf("resolves at %v, want one after the heal at 0:15\n%s", at, s.trace(regionKey))
	}
	quiet(t, s)
}

// r1 is paged; v3 is cut off (alone, holding for alone_after 10m). The majority sees r1
// recover and resolves it, then p1 fails in r1 again and the majority pages that
// target. When the cut heals, v3's region incident was resolved by the fleet while v3
// was away: v3 closes it and takes the fleet's page of the target, rather than keeping
// a "paged" region incident the pager has closed (fleet seed 411: its widening then
// reopened the closed key next to the fleet's new page).
func TestIncidentResolvedWhileAwayIsClosed(t *testing.T) {
	s := newSim(t, Options{Platform: basicPlatform(3, 2), Fleet: &FleetSpec{Vantages: 3, AloneAfter: 10 * time.Minute}, Slots: 1,
		Checks: Checks{Skip: []string{F3Majority}}})
	s.At(time.Minute).Fail("r1", "*")
	s.At(4*time.Minute).Partition([]string{"v3"}, []string{"v1", "v2"})
	s.At(4*time.Minute+30*time.Second).Heal("r1", "*")
	s.At(7*time.Minute).Fail("r1", "p1")
	s.At(12 * time.Minute).Partition()
	run(t, s, 13*time.Minute)
	target := "picket/target/p1/j@r1"
	pager := s.Receiver("pager")
	if !pager.IsOpen(target) || pager.IsOpen(regionKey) {
		t.Fatalf("at the pager: %v, want %s open and %s closed\n%s", transitions(pager), target, regionKey, s.trace(regionKey))
	}
	if inc := s.Vantage("v3").Snapshot(); !slices.ContainsFunc(inc.Incidents, func(i alert.Incident) bool { return i.Key == target && i.Triggered }) ||
		slices.ContainsFunc(inc.Incidents, func(i alert.Incident) bool { return i.Key == regionKey }) {
		var keys []string
		for _, i := range inc.Incidents {
			keys = append(keys, i.Key+" ("+incidentState(i)+")")
		}
		t.Fatalf("v3's open incidents after the heal: %v; want %s, paged, and no %s\n%s", keys, target, regionKey, s.trace(regionKey))
	}
	quiet(t, s)
}

// Fleet seed 392: a vantage started again after a long stop votes the states it saved
// before the crash. Healed targets it last saw down, with one vantage's real down vote
// (its own path to r1 is broken), made a quorum and paged a region that had recovered.
// A vote that old is stale: it keeps a failure the fleet sees standing, never makes one.
func TestRestoredStaleVotesDoNotMakeANewFailure(t *testing.T) {
	s := newSim(t, Options{Platform: basicPlatform(3, 2), Fleet: &FleetSpec{Vantages: 3}, Slots: 1})
	s.At(time.Minute).Fail("r1", "*")
	s.At(3 * time.Minute).Crash("v1")
	s.At(4*time.Minute).Heal("r1", "*").FailFrom("v2", "r1", "*")
	s.At(21 * time.Minute).Start("v1")
	run(t, s, 22*time.Minute)
	pager := s.Receiver("pager")
	opens := 0
	for _, ev := range pager.Events() {
		if ev.Opened && ev.Key == regionKey {
			opens++
		}
	}
	if opens != 1 || pager.IsOpen(regionKey) {
		t.Fatalf("%s opened %d times, open now %v: want it paged once and resolved, not paged again by v1's stale votes\n%s",
			regionKey, opens, pager.IsOpen(regionKey), s.trace(regionKey))
	}
}
