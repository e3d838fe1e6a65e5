package sim

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Scripted cases of known defects of the alerting core, written against the intended
// behaviour: they fail until the core is fixed (on main), and keep it fixed after.

// pagerOnly routes everything to the pager alone, with the webhook as fallback (chat
// would otherwise accept and keep the fallback from ever being due).
func pagerOnly(p Platform) Platform {
	p.Routes = []Route{{Notify: []string{"pd"}, Fallback: []string{"hook"}}}
	return p
}

// quiet heals everything, runs for a while and fails on any violation so far.
func quiet(t *testing.T, s *Sim) {
	t.Helper()
	if err := s.CheckQuiet(20 * time.Minute); err != nil {
		t.Fatal(err)
	}
}

// eventsOf lists a receiver's recorded events of a key and action.
func eventsOf(r *Receiver, key, action string) []Event {
	var out []Event
	for _, ev := range r.Events() {
		if ev.Recorded && ev.Key == key && (action == "" || ev.Action == action) {
			out = append(out, ev)
		}
	}
	return out
}

// openings counts how often key was opened at the receiver.
func openings(r *Receiver, key string) int {
	n := 0
	for _, ev := range r.Events() {
		if ev.Opened && ev.Key == key {
			n++
		}
	}
	return n
}

// firstQueued is when the engine first queued action for key (ok false: never).
func firstQueued(s *Sim, key, action string) (time.Duration, bool) {
	for _, sn := range s.Sent() {
		if sn.Key == key && sn.Action == action {
			return sn.At, true
		}
	}
	return 0, false
}

// A silence of one region must not mute a page about a wider outage that also covers
// a region nobody silenced: r1 and r3 fully down with {region: [r3]} silenced still
// pages the global outage (or at least something wider than the silence, with r1).
func TestCase01SilenceOnOneRegionDoesNotMuteGlobal(t *testing.T) {
	s := newSim(t, Options{Platform: basicPlatform(3, 2)})
	s.At(time.Minute).Silence(config.Match{Region: []string{"r3"}}, 2*time.Hour)
	s.At(2*time.Minute).Fail("r1", "*").Fail("r3", "*")
	err := s.RunFor(30 * time.Minute)
	var paged []string
	for _, ev := range s.Receiver("pager").Events() {
		if ev.Opened && (ev.Key == "picket/global" || ev.Key == "picket/region/r1") {
			paged = append(paged, ev.Key)
		}
	}
	if len(paged) == 0 {
		t.Fatalf("r1 and r3 down, only r3 silenced: want a page for the global outage (or r1), got none\n%s", s.trace("picket/global"))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Flapping pages once, not once per flap: down-down-up-up for 5 minutes at the default
// thresholds pages at most twice and is resolved once stable; a target failing every
// other run (never twice in a row) is paged once.
func TestCase02FlappingPagesOnce(t *testing.T) {
	// Seed 5815 (the step): a wall-clock step forward while a target flaps made its
	// recovery look old (a persisted wall time), so the next flap was not flapping and
	// paged a third time. Within a process the flap is judged by the monotonic clock.
	for name, step := range map[string]time.Duration{"DDUU": 0, "DDUU across a forward wall step": 9 * time.Minute} {
		t.Run(name, func(t *testing.T) {
			s := newSim(t, Options{Platform: basicPlatform(3, 2)})
			s.At(time.Minute).Flap("r1", "p1", "DDUU")
			if step != 0 {
				s.At(3*time.Minute + 30*time.Second).ClockStep(step)
			}
			s.At(6*time.Minute).Heal("r1", "p1")
			_ = s.RunFor(30 * time.Minute)
			key := "picket/target/p1/j@r1"
			if opens := openings(s.Receiver("pager"), key); opens > 2 {
				t.Errorf("DDUU for 5 minutes (wall clock stepped %s): %s opened %d times at the pager, want at most 2\n%s", step, key, opens, s.trace(key))
			}
			if s.Receiver("pager").IsOpen(key) {
				t.Errorf("%s still open 24 minutes after the flapping stopped", key)
			}
		})
	}
	t.Run("every other run", func(t *testing.T) {
		s := newSim(t, Options{Platform: basicPlatform(3, 2)})
		s.At(time.Minute).Flap("r1", "p1", "DU")
		_ = s.RunFor(20 * time.Minute)
		key := "picket/target/p1/j@r1"
		if n := len(eventsOf(s.Receiver("pager"), key, notify.ActionTrigger)); n == 0 {
			t.Errorf("failing every other run for 19 minutes: want %s paged once, got no page\n%s", key, s.trace(key))
		}
		if opens := openings(s.Receiver("pager"), key); opens > 1 {
			t.Errorf("failing every other run: %s opened %d times, want once", key, opens)
		}
	})
}

// Seeds 3434, 5772: different targets taking turns under one key (a product failing
// in two regions, then in two others) re-opened the key every turn: three pages of
// picket/product/p1 in five minutes, though no one target flapped. The key is paged at
// most twice within its flap window: the second page, once recovered, stays open until
// a window after the first, and a third failure joins it.
func TestKeyFlappingPagesAtMostTwicePerWindow(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "restarted between the turns"}[restart], func(t *testing.T) {
			keyFlaps(t, restart)
		})
	}
}

func keyFlaps(t *testing.T, restart bool) {
	p := basicPlatform(6, 2)
	p.SuccessThreshold, p.GroupWait = 1, -1 // quick turns: paged on firing, resolved on a pass
	s := newSim(t, Options{Platform: p})
	// Each turn other targets: no one target flaps.
	s.At(time.Minute).Fail("r1", "p1").Fail("r2", "p1")
	s.At(2*time.Minute).Heal("r1", "p1").Heal("r2", "p1")
	if restart { // the first page's opening must survive it
		s.At(2*time.Minute + 30*time.Second).Restart()
	}
	s.At(2*time.Minute+40*time.Second).Fail("r3", "p1").Fail("r4", "p1")
	s.At(3*time.Minute+40*time.Second).Heal("r3", "p1").Heal("r4", "p1")
	s.At(4*time.Minute+20*time.Second).Fail("r5", "p1").Fail("r6", "p1")
	s.At(5*time.Minute+30*time.Second).Heal("r5", "p1").Heal("r6", "p1")
	_ = s.RunFor(20 * time.Minute)
	key := "picket/product/p1"
	var opens []time.Duration
	for _, ev := range s.Receiver("pager").Events() {
		if ev.Opened && ev.Key == key {
			opens = append(opens, ev.At)
		}
	}
	if len(opens) < 2 {
		t.Fatalf("p1 down in two regions, three times: want %s paged, got %d openings\n%s", key, len(opens), s.trace(key))
	}
	if len(opens) > 2 && opens[2]-opens[0] < 5*time.Minute {
		t.Errorf("%s opened at %v: three times within its 5m flap window, want at most twice\n%s", key, opens, s.trace(key))
	}
	if s.Receiver("pager").IsOpen(key) {
		t.Errorf("%s still open 12 minutes after the last failure\n%s", key, s.trace(key))
	}
	quiet(t, s)
}

// A trigger that went to the fallback (the pager kept failing) must be resolved there
// too, even when the pager is back by the time of the resolve.
func TestCase03FallbackGetsResolve(t *testing.T) {
	s := newSim(t, Options{Platform: pagerOnly(basicPlatform(3, 2))})
	s.ReceiverFault("pager", FaultDown, 0, 8*time.Minute)
	s.At(time.Minute).Fail("r1", "*")
	s.At(15*time.Minute).Heal("r1", "*")
	_ = s.RunFor(30 * time.Minute)
	key := "picket/region/r1"
	hook := s.Receiver("hook")
	if len(eventsOf(hook, key, notify.ActionTrigger)) == 0 {
		t.Fatalf("the pager failed for 7 minutes: want the trigger at the fallback, got none\n%s", s.trace(key))
	}
	if hook.IsOpen(key) {
		t.Fatalf("the fallback got the trigger of %s but never its resolve\n%s", key, s.trace(key))
	}
	quiet(t, s)
}

// A closed incident keeps the extent it had at its peak: a 10-target outage over 4
// products and 3 regions, healed step by step, still lists every region, product and
// target it had, with their failure reasons, after it closed.
func TestCase04ClosedIncidentKeepsPeakExtent(t *testing.T) {
	s := newSim(t, Options{Platform: basicPlatform(3, 4)})
	s.At(time.Minute).Fail("r1", "*").Fail("r2", "*").Fail("r3", "p1").Fail("r3", "p2")
	s.At(10*time.Minute).Heal("r3", "*")
	s.At(14*time.Minute).Heal("r2", "*")
	s.At(18*time.Minute).Heal("r1", "p1").Heal("r1", "p2").Heal("r1", "p3")
	s.At(22*time.Minute).Heal("r1", "*")
	_ = s.RunFor(40 * time.Minute)
	inc, ok, err := s.Engine().FindIncident("picket/global")
	if err != nil || !ok {
		t.Fatalf("the global incident: found %v, err %v\n%s", ok, err, s.trace("picket/global"))
	}
	if inc.Open() {
		t.Fatalf("the global incident is still open after everything healed")
	}
	var peak []string
	for _, r := range []string{"r1", "r2"} {
		for _, p := range []string{"p1", "p2", "p3", "p4"} {
			peak = append(peak, p+"/j@"+r)
		}
	}
	peak = append(peak, "p1/j@r3", "p2/j@r3")
	var missing []string
	for _, id := range peak {
		if !slices.Contains(inc.Targets, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 || len(inc.Regions) != 3 || len(inc.Products) != 4 {
		t.Errorf("closed global incident: targets %v (missing %v), regions %v, products %v; want the peak: 10 targets, 3 regions, 4 products",
			inc.Targets, missing, inc.Regions, inc.Products)
	}
	raw, _ := json.Marshal(inc)
	if !strings.Contains(string(raw), "status 503, want 200") {
		t.Errorf("closed global incident carries no failure reason of its targets: %s", raw)
	}
}

// A resolve survives restarts: break, heal, break again while the pager is down (the
// first resolve still queued), SIGKILL, heal, SIGKILL again: the pager ends with no
// open key. What it is told is coalesced: the second incident opened and closed while
// it was down, so it gets neither the first resolve (the second trigger made it moot)
// nor the second trigger (over before the pager came back): one open, one close.
func TestCase05ResolveSurvivesRestart(t *testing.T) {
	s := newSim(t, Options{Platform: pagerOnly(basicPlatform(3, 2))})
	s.At(time.Minute).Fail("r1", "*")
	s.ReceiverFault("pager", FaultDown, 5*time.Minute, 20*time.Minute)
	s.At(6*time.Minute).Heal("r1", "*")
	s.At(10*time.Minute).Fail("r1", "*")
	s.At(13 * time.Minute).Restart()
	s.At(15*time.Minute).Heal("r1", "*")
	s.At(16 * time.Minute).Restart()
	key := "picket/region/r1"
	_ = s.RunFor(13*time.Minute + time.Second)
	// The restart must keep the second incident as it was: open, paged, not re-paged.
	inc, ok := s.Engine().Incident(key)
	if !ok || !inc.Triggered || s.monoOf(inc.Opened) >= 13*time.Minute {
		t.Errorf("after the restart %s: open %v, triggered %v, opened %s; want the incident of 0:10 still open and paged\n%s",
			key, ok, inc.Triggered, fmtDur(s.monoOf(inc.Opened)), s.trace(key))
	}
	_ = s.RunFor(40*time.Minute - s.Elapsed())
	want := []string{"OPEN " + key, "CLOSE " + key}
	if got := transitions(s.Receiver("pager")); !slices.Equal(got, want) {
		t.Fatalf("pager: got %v, want %v\n%s", got, want, s.trace(key))
	}
	if got := eventsOf(s.Receiver("pager"), key, notify.ActionTrigger); got[len(got)-1].At > 15*time.Minute {
		t.Errorf("a trigger of the incident healed at 0:15 reached the pager at %s\n%s", fmtDur(got[len(got)-1].At), s.trace(key))
	}
	quiet(t, s)
}

// A reload keeps pages: a notifier renamed (same destination) while its trigger is
// queued still delivers it; an edited journey that keeps failing is neither resolved
// nor paged again mid-outage.
func TestCase06ReloadKeepsPages(t *testing.T) {
	t.Run("renamed notifier", func(t *testing.T) {
		s := newSim(t, Options{Platform: pagerOnly(basicPlatform(3, 2))})
		s.ReceiverFault("pager", FaultDown, 0, 5*time.Minute)
		s.At(time.Minute).Fail("r1", "*")
		s.At(3*time.Minute).RenameNotifier("pd", "pd-renamed")
		_ = s.RunFor(15 * time.Minute)
		key := "picket/region/r1"
		if len(eventsOf(s.Receiver("pager"), key, notify.ActionTrigger)) == 0 {
			t.Fatalf("the trigger queued for pd, renamed pd-renamed (same pager), never reached the pager\n%s", s.trace(key))
		}
		quiet(t, s)
	})
	t.Run("edited journey", func(t *testing.T) {
		s := newSim(t, Options{Platform: pagerOnly(basicPlatform(3, 2))})
		s.At(time.Minute).Fail("r1", "p1")
		s.At(5*time.Minute).EditJourney("p1", "j")
		s.At(12*time.Minute).Heal("r1", "p1")
		_ = s.RunFor(25 * time.Minute)
		key := "picket/target/p1/j@r1"
		want := []string{"OPEN " + key, "CLOSE " + key}
		got := transitions(s.Receiver("pager"))
		if !slices.Equal(got, want) {
			t.Fatalf("an edited journey that kept failing: pager got %v, want %v (one page, resolved after the heal)\n%s", got, want, s.trace(key))
		}
		if closed := eventsOf(s.Receiver("pager"), key, notify.ActionResolve); closed[0].At < 12*time.Minute {
			t.Fatalf("resolved at %s, while it still failed (healed at 0:12:00)", fmtDur(closed[0].At))
		}
		quiet(t, s)
	})
}

// An impaired vantage (its own network checks fail) holds platform pages and sends
// them as soon as it recovers; while impaired it tells the on-call nothing new about
// what it paged before either (its failures say more about its own network).
func TestCase07ImpairedHoldsAndReleases(t *testing.T) {
	t.Run("holds and releases", func(t *testing.T) {
		s := newSim(t, Options{Platform: basicPlatform(3, 2)})
		s.At(time.Minute).SetImpaired("", true)
		s.At(2*time.Minute).Fail("r1", "*")
		s.At(10*time.Minute).SetImpaired("", false)
		s.At(20*time.Minute).Heal("r1", "*")
		_ = s.RunFor(35 * time.Minute)
		key := "picket/region/r1"
		at, ok := firstQueued(s, key, notify.ActionTrigger)
		switch {
		case !ok:
			t.Fatalf("no page for %s after the vantage recovered\n%s", key, s.trace(key))
		case at < 10*time.Minute:
			t.Fatalf("paged %s at %s while impaired", key, fmtDur(at))
		case at > 10*time.Minute+s.tick:
			t.Fatalf("paged %s at %s, want at once when the impairment ended at 0:10:00", key, fmtDur(at))
		}
		if got := transitions(s.Receiver("pager")); !slices.Equal(got, []string{"OPEN " + key, "CLOSE " + key}) {
			t.Fatalf("pager: %v", got)
		}
		quiet(t, s)
	})
	t.Run("no updates while impaired", func(t *testing.T) {
		s := newSim(t, Options{Platform: basicPlatform(3, 2)})
		s.At(time.Minute).Fail("r1", "p1").Fail("r2", "p1") // product p1 out: paged
		s.At(5*time.Minute).SetImpaired("", true)
		s.At(6*time.Minute).Fail("r3", "p1") // seen from an impaired vantage
		s.At(9*time.Minute).Heal("r3", "p1")
		s.At(10*time.Minute).SetImpaired("", false)
		s.At(20*time.Minute).Heal("*", "*")
		_ = s.RunFor(35 * time.Minute)
		for _, sn := range s.Sent() {
			if sn.Action == notify.ActionTrigger && sn.At >= 5*time.Minute && sn.At < 10*time.Minute {
				t.Fatalf("queued while impaired: %s\n%s", sn, s.trace(sn.Key))
			}
		}
		quiet(t, s)
	})
}

// A page held for the group wait survives a wall-clock step across a restart and
// leaves at its planned time (within a tick), whether the clock went back or forward.
func TestCase10ClockStepAcrossRestart(t *testing.T) {
	for _, step := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(step.String(), func(t *testing.T) {
			p := basicPlatform(3, 2)
			p.GroupWait = 2 * time.Minute
			s := newSim(t, Options{Platform: p})
			s.At(time.Minute).Fail("r1", "*")
			run(t, s, 2*time.Minute+10*time.Second) // opened at 0:01:30, held until 0:03:30
			key := "picket/region/r1"
			inc, ok := s.Engine().Incident(key)
			if !ok || inc.Triggered {
				t.Fatalf("want %s open and held, got open %v, triggered %v", key, ok, inc.Triggered)
			}
			planned := s.monoOf(inc.SendAfter)
			restarted := s.elapsed
			if err := s.RestartAcross(step); err != nil {
				t.Fatal(err)
			}
			_ = s.RunFor(15 * time.Minute)
			at, ok := firstQueued(s, key, notify.ActionTrigger)
			// The rule (clamping, as the issue allows): a held page waits at most
			// group_wait after the restart, whichever way the wall clock stepped; a step
			// forward only sends it sooner, never later than planned.
			latest := min(restarted+p.GroupWait, planned+p.GroupWait) + s.tick
			if step > 0 {
				latest = planned + s.tick
			}
			switch {
			case !ok:
				t.Fatalf("the held page of %s never left\n%s", key, s.trace(key))
			case at < restarted || at > latest:
				t.Fatalf("the held page of %s left at %s, planned for %s (wall clock stepped %s across a restart)\n%s",
					key, fmtDur(at), fmtDur(planned), step, s.trace(key))
			}
		})
	}
}
