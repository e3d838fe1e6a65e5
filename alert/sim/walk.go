package sim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/config"
)

// Scenario is a generated run: a platform and timed steps. Steps are data so that the
// same scenario can run again without its restarts (I5).
type Scenario struct {
	Seed     uint64
	Platform Platform
	Fleet    *FleetSpec // nil: one vantage
	Steps    []Step
	Duration time.Duration // how long to run before the quiet period
	Quiet    time.Duration // the quiet period before I2 is checked
}

// Step is one timed action of a scenario.
type Step struct {
	At      time.Duration
	Name    string
	Restart bool // a restart (left out of I5's twin run)
	Apply   func(*Cue)
}

// Walk generates the scenario of a seed: a random platform (2-5 regions, 1-4 products
// of 1-2 journeys), then for 1-3 virtual hours random region, product and journey
// outages, flaps and slowness, silences, reloads (the same config, a renamed notifier,
// an edited journey), restarts, receiver faults and wall-clock steps. The same seed
// always gives the same scenario.
func Walk(seed uint64) Scenario {
	g := &walker{rng: rand.New(rand.NewPCG(seed, 0x3a11c))}
	sc := Scenario{Seed: seed, Platform: g.platform(), Quiet: 25 * time.Minute}
	sc.Duration = time.Duration(60+g.rng.IntN(121)) * time.Minute
	g.p = sc.Platform
	n := 4 + g.rng.IntN(10)
	for range n {
		at := time.Duration(g.rng.Int64N(int64(sc.Duration - 5*time.Minute)))
		at = at.Truncate(time.Second)
		sc.Steps = append(sc.Steps, g.step(at, sc.Duration)...)
	}
	slices.SortStableFunc(sc.Steps, func(a, b Step) int { return cmp.Compare(a.At, b.At) })
	return sc
}

// FleetWalk is Walk for a fleet of 3 or 5 vantages: the same kinds of steps, plus
// partitions (a minority cut off, then healed) and crashes of one vantage.
func FleetWalk(seed uint64) Scenario {
	sc := Walk(seed)
	g := &walker{rng: rand.New(rand.NewPCG(seed, 0xf1ee7)), p: sc.Platform}
	sc.Fleet = &FleetSpec{Vantages: []int{3, 5}[g.rng.IntN(2)]}
	names := sc.Fleet.names()
	for range 1 + g.rng.IntN(4) {
		at := time.Duration(g.rng.Int64N(int64(sc.Duration - 5*time.Minute))).Truncate(time.Second)
		back := min(at+time.Duration(1+g.rng.IntN(30))*time.Minute, sc.Duration)
		perm := slices.Clone(names)
		g.rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if g.rng.IntN(3) == 0 {
			v := perm[0]
			sc.Steps = append(sc.Steps,
				Step{At: at, Name: "crash", Apply: func(c *Cue) { c.Crash(v) }},
				Step{At: back, Name: "start", Apply: func(c *Cue) { c.Start(v) }})
			continue
		}
		minority := perm[:(len(perm)-1)/2]
		majority := perm[(len(perm)-1)/2:]
		sc.Steps = append(sc.Steps,
			Step{At: at, Name: "partition", Apply: func(c *Cue) { c.Partition(minority, majority) }},
			Step{At: back, Name: "heal partition", Apply: func(c *Cue) { c.Partition() }})
	}
	slices.SortStableFunc(sc.Steps, func(a, b Step) int { return cmp.Compare(a.At, b.At) })
	return sc
}

// walker holds the random source and what the steps can refer to.
type walker struct {
	rng     *rand.Rand
	p       Platform
	renames int
}

// Names and patterns a walk picks from.
func regionPool() []string  { return []string{"eu1", "us1", "us3", "ap1", "sa1"} }
func productPool() []string { return []string{"logs", "metrics", "events", "web"} }
func journeyPool() []string { return []string{"read", "write"} }
func flapPool() []string    { return []string{"DDUU", "DU", "DDDUUU", "DUUU", "DDUUUU"} }

func (g *walker) platform() Platform {
	r := g.rng
	p := Platform{
		Interval:         []time.Duration{30 * time.Second, 30 * time.Second, time.Minute}[r.IntN(3)],
		FailureThreshold: 1 + r.IntN(3),
		SuccessThreshold: 1 + r.IntN(2),
		Degraded:         []string{"notify", "notify", "page", "ignore"}[r.IntN(4)],
	}
	switch r.IntN(4) {
	case 0:
		p.GroupWait = -1 // no group wait
	case 1:
		p.GroupWait = time.Minute
	}
	if r.IntN(4) == 0 {
		p.BlastRadius = config.BlastRadius{RegionMinProducts: 1 + r.IntN(3), ProductMinRegions: 1 + r.IntN(3), GlobalMinRegions: 2 + r.IntN(2)}
	}
	p.Regions = regionPool()[:2+r.IntN(4)]
	for i := range 1 + r.IntN(4) {
		pr := Product{Name: productPool()[i], Priority: 1 + r.IntN(3)}
		for j := range 1 + r.IntN(2) {
			jr := Journey{Name: journeyPool()[j]}
			if r.IntN(5) == 0 {
				jr.Interval = []time.Duration{15 * time.Second, time.Minute}[r.IntN(2)]
			}
			pr.Journeys = append(pr.Journeys, jr)
		}
		if len(p.Regions) > 2 && r.IntN(5) == 0 {
			pr.Regions = slices.Clone(p.Regions[1:])
		}
		p.Products = append(p.Products, pr)
	}
	p.Notifiers = []Notifier{
		{Name: "pd-high", Kind: KindPagerDuty, Receiver: "pd-high"},
		{Name: "pd-low", Kind: KindPagerDuty, Receiver: "pd-low"},
		{Name: "chat", Kind: KindSlack, Receiver: "chat"},
		{Name: "hook", Kind: KindWebhook, Receiver: "hook"},
	}
	p.Routes = []Route{
		{Match: config.Match{Scope: []string{"global", "region", "product"}}, Notify: []string{"pd-high", "chat"}, Fallback: []string{"hook"}},
		{Match: config.Match{Priority: []int{1}}, Notify: []string{"pd-high"}, Fallback: []string{"hook"}},
		{Notify: []string{"pd-low"}, Fallback: []string{"hook"}},
	}
	return p
}

// step makes one random event of the walk (an outage is two steps: break and heal).
func (g *walker) step(at, total time.Duration) []Step {
	r := g.rng
	heal := at + time.Duration(3+r.IntN(40))*time.Minute
	region := g.p.Regions[r.IntN(len(g.p.Regions))]
	pr := g.p.Products[r.IntN(len(g.p.Products))]
	journey := pr.Name + "/" + pr.Journeys[r.IntN(len(pr.Journeys))].Name
	outage := func(name, region, product string, do func(*Cue)) []Step {
		return []Step{
			{At: at, Name: name, Apply: do},
			{At: min(heal, total), Name: "heal " + product + "@" + region, Apply: func(c *Cue) { c.Heal(region, product) }},
		}
	}
	switch k := r.IntN(100); {
	case k < 14:
		return outage("region outage", region, "*", func(c *Cue) { c.Fail(region, "*") })
	case k < 26:
		return outage("product outage", "*", pr.Name, func(c *Cue) { c.Fail("*", pr.Name) })
	case k < 38:
		return outage("journey outage", region, journey, func(c *Cue) { c.Fail(region, journey) })
	case k < 48:
		pattern := flapPool()[r.IntN(len(flapPool()))]
		sel := []string{pr.Name, journey}[r.IntN(2)]
		return outage("flap", region, sel, func(c *Cue) { c.Flap(region, sel, pattern) })
	case k < 55:
		return outage("slow", region, pr.Name, func(c *Cue) { c.Degrade(region, pr.Name) })
	case k < 63:
		m := config.Match{Region: []string{region}}
		if r.IntN(2) == 0 {
			m = config.Match{Product: []string{pr.Name}}
		}
		d := time.Duration(10+r.IntN(50)) * time.Minute
		return []Step{{At: at, Name: "silence", Apply: func(c *Cue) { c.Silence(m, d) }}}
	case k < 73:
		return []Step{g.reload(at, pr.Name, journey)}
	case k < 83:
		return []Step{{At: at, Name: "restart", Restart: true, Apply: func(c *Cue) { c.Restart() }}}
	case k < 93:
		recv := []string{"pd-high", "pd-low", "chat", "hook"}[r.IntN(4)]
		kind := []string{FaultReject, FaultThrottle, FaultDown, FaultDown, FaultSlow}[r.IntN(5)]
		d := time.Duration(1+r.IntN(20)) * time.Minute
		return []Step{{At: at, Name: "receiver fault", Apply: func(c *Cue) { c.ReceiverFault(recv, kind, d) }}}
	default:
		d := time.Duration(1+r.IntN(15)) * time.Minute
		if r.IntN(2) == 0 {
			d = -d
		}
		return []Step{{At: at, Name: "clock step", Apply: func(c *Cue) { c.ClockStep(d) }}}
	}
}

// reload is the same config, a renamed notifier (same destination) or an edited
// journey.
func (g *walker) reload(at time.Duration, product, journey string) Step {
	switch g.rng.IntN(3) {
	case 0:
		return Step{At: at, Name: "reload (same)", Apply: func(c *Cue) {
			c.Do("reload (same config)", func(s *Sim) error { return s.Reload(s.Platform()) })
		}}
	case 1:
		g.renames++
		n := g.renames
		return Step{At: at, Name: "reload (rename)", Apply: func(c *Cue) {
			c.Do("reload: rename the high pager", func(s *Sim) error { return s.renameKind("pd-high", n) })
		}}
	default:
		_, j, _ := strings.Cut(journey, "/")
		return Step{At: at, Name: "reload (edit)", Apply: func(c *Cue) { c.EditJourney(product, j) }}
	}
}

// renameKind renames whichever notifier now points at receiver to "<receiver>-<n>".
func (s *Sim) renameKind(receiver string, n int) error {
	for _, nf := range s.platform.Notifiers {
		if nf.Receiver == receiver {
			return s.RenameNotifier(nf.Name, fmt.Sprintf("%s-%d", receiver, n))
		}
	}
	return nil
}

// Run plays the scenario on a fresh sim in dir: its steps, then the quiet period.
// withRestarts false leaves the restarts out (I5's twin run).
func (sc Scenario) Run(dir string, withRestarts bool, checks Checks) (*Sim, error) {
	label := fmt.Sprintf("seed %d", sc.Seed)
	if sc.Fleet != nil {
		label = fmt.Sprintf("fleet seed %d", sc.Seed)
	}
	s, err := New(Options{Platform: sc.Platform, Dir: dir, Seed: sc.Seed, Checks: checks, Label: label, Fleet: sc.Fleet})
	if err != nil {
		return nil, err
	}
	for _, st := range sc.Steps {
		if st.Restart && !withRestarts {
			continue
		}
		st.Apply(s.At(st.At))
	}
	if err := s.RunFor(sc.Duration); s.fatal != nil {
		return s, err
	}
	_ = s.CheckQuiet(sc.Quiet)
	return s, s.Err()
}

// Restarts counts the scenario's restarts.
func (sc Scenario) Restarts() int {
	n := 0
	for _, st := range sc.Steps {
		if st.Restart {
			n++
		}
	}
	return n
}

// CompareRestart (I5): a run with restarts shows the receivers the same transitions
// (each key's openings and closings, in order) as the same seed without restarts;
// restarts may only repeat a delivery. One run may lack an opening and closing that the
// other shows when its outbox dropped that incident's trigger for the receiver unsent,
// coalesced with the resolve: the receiver failed until the incident was over, and
// whether a retry got through first is backoff timing, which a restart changes (it
// starts the restored entries' backoff over, and jitter is random).
func CompareRestart(with, without *Sim) *Violation {
	cut := with.checker.restartAfterStep()
	for _, name := range with.receiverNames {
		a, b := with.receivers[name], without.receivers[name]
		if b == nil {
			continue
		}
		ta, tb := keyTransitions(a, cut), keyTransitions(b, cut)
		for _, key := range union(sortedKeys(ta), sortedKeys(tb)) {
			if !slices.Equal(ta[key], tb[key]) && !unseenOnly(with, without, name, key, ta[key], tb[key]) {
				v := &Violation{Label: with.opts.Label, Step: with.steps, StepName: "restart comparison", At: with.elapsed,
					Invariant: I5Restart, Subject: key + " at " + name,
					Detail: fmt.Sprintf("%s at %s: with restarts %v, without %v", key, name, ta[key], tb[key])}
				if cut > 0 {
					v.Detail += fmt.Sprintf(" (compared until %s, where a wall-clock step and a restart meet)", fmtDur(cut))
				}
				v.Trace = with.trace(key) + "  the run without restarts:\n" + without.trace(key)
				return v
			}
		}
	}
	return nil
}

// restartAfterStep is when a run with restarts may first rightly differ from its twin
// after a wall-clock step (0: never): at the first restart after a step, or at the
// first step after a restart, whichever applies first. A running daemon judges how long
// ago something was by its monotonic clock, which wall steps do not move; a restarted
// one has, for what happened before its restart, only persisted wall times, which they
// do.
func (c *checker) restartAfterStep() time.Duration {
	if len(c.restarts) == 0 || len(c.steps) == 0 {
		return 0
	}
	return max(c.restarts[0], c.steps[0])
}

// unseenOnly reports whether two runs' transitions of a key at a receiver differ only by
// openings and closings that the run with fewer never showed because it coalesced
// those incidents' triggers with their resolves (and the other run did not).
// Transitions alternate open, close, so the two differ by whole pairs when they end
// alike.
func unseenOnly(with, without *Sim, receiver, key string, ta, tb []string) bool {
	fewer, more, missing := with, without, len(tb)-len(ta)
	if missing < 0 {
		fewer, more, missing = without, with, -missing
	}
	k := receiver + " " + key
	unseen := 0
	for opened := range fewer.unseen[k] {
		if !more.unseen[k][opened] {
			unseen++
		}
	}
	return missing%2 == 0 && unseen >= missing/2
}

// keyTransitions is, per key, the receiver's openings and closings in order, before
// cut (0: all).
func keyTransitions(r *Receiver, cut time.Duration) map[string][]string {
	out := map[string][]string{}
	for _, ev := range r.Events() {
		if cut > 0 && ev.At >= cut {
			break
		}
		switch {
		case ev.Opened:
			out[ev.Key] = append(out[ev.Key], "open")
		case ev.Closed:
			out[ev.Key] = append(out[ev.Key], "close")
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
