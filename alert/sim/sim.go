package sim

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
)

// epoch is where virtual wall time starts unless Options.Start says otherwise.
func epoch() time.Time { return time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) }

// Options configure a Sim.
type Options struct {
	Platform Platform
	// Dir holds the state directories (one per vantage); required. A directory on
	// tmpfs (/dev/shm) makes each store's fsync free; the file is real either way.
	Dir  string
	Seed uint64
	// Start is the virtual wall time of the start; zero: 2026-03-02T09:00:00Z.
	Start time.Time
	// Tick is how often the engine ticks while a page is held past its due time (a
	// silence, impairment, a fleet hold); other ticks happen exactly when something is
	// due. 0: one second, the daemon's cadence.
	Tick time.Duration
	// Slots spreads the targets' first runs over this many slots of their interval
	// (a scheduler's stagger); 0: 6.
	Slots int
	// Fleet makes the sim a fleet of vantages sharing the receivers; nil: one vantage.
	Fleet *FleetSpec
	// Checks tunes the invariants; the zero value checks them all with the defaults.
	Checks Checks
	// Label names the run in violations (a seed, a test).
	Label string
}

// Sim is one simulated run: the platform, the receivers, and one or more vantages each
// running the real engine, outbox and store, all in virtual time.
type Sim struct {
	opts     Options
	start    time.Time
	clock    *clock.Fake
	elapsed  time.Duration // virtual (monotonic) time since the start
	offset   time.Duration // wall = start + elapsed + offset: clock steps move offset
	tick     time.Duration
	platform Platform
	cfg      *config.Config
	rng      *rand.Rand // the sim's own choices (stagger); scripts use their own

	receivers     map[string]*Receiver
	receiverNames []string // sorted, for a deterministic order
	vantages      []*vantage
	net           *network // nil without a fleet
	targets       []*simTarget
	faults        []platformFault
	paths         map[string][]platformFault // vantage -> its own path faults (FailFrom)
	impaired      map[string]bool            // vantage -> impaired

	actions []action // scheduled, in (at, seq) order
	seq     int
	steps   int      // actions run so far
	history []string // what the script did, for traces

	sent []Sent // every notification the engines queued
	// unseen: receiver and key -> the openings of incidents whose trigger an outbox
	// dropped unsent for that receiver, coalesced with the incident's resolve (I5).
	unseen  map[string]map[time.Time]bool
	checker *checker
	closed  bool
	fatal   error
}

// simTarget is one target's schedule.
type simTarget struct {
	id       string
	interval time.Duration
	next     time.Duration // virtual time of the next run
}

// Sent is one notification an engine handed to its outbox.
type Sent struct {
	At      time.Duration
	Vantage string
	Key     string
	Action  string
	Notify  []string
	Summary string
	ID      string    // the notification's
	Opened  time.Time // the incident's opening (wall time)
	// Targets are the incident's targets when it was queued (nil: the notification
	// listed only some of them): I3 judges a page by what it was about when it left.
	Targets []string
}

func (s Sent) String() string {
	return fmt.Sprintf("%9s %-6s queued  %-7s %-40s -> %v", fmtDur(s.At), s.Vantage, s.Action, s.Key, s.Notify)
}

// action is one scheduled script step.
type action struct {
	at   time.Duration
	seq  int
	name string
	do   func(*Sim) error
}

// New builds the platform, the receivers and the vantages, and opens their stores.
func New(o Options) (*Sim, error) {
	if o.Dir == "" {
		return nil, errors.New("sim: expected Options.Dir, got none")
	}
	cfg, err := o.Platform.Config()
	if err != nil {
		return nil, err
	}
	s := &Sim{
		opts: o, start: cmp.Or(o.Start, epoch()), tick: cmp.Or(o.Tick, time.Second),
		platform: o.Platform.Clone(), cfg: cfg, receivers: map[string]*Receiver{},
		rng: rand.New(rand.NewPCG(o.Seed, 0x5157)), impaired: map[string]bool{}, unseen: map[string]map[time.Time]bool{}, paths: map[string][]platformFault{},
	}
	s.clock = clock.NewFake(s.start)
	s.checker = newChecker(s, o.Checks)
	s.syncReceivers()
	s.schedule(cmp.Or(o.Slots, 6))
	names := []string{"sim"}
	if o.Fleet != nil {
		names = o.Fleet.names()
		s.net = newNetwork(s, names, o.Fleet)
	}
	for _, name := range names {
		v := &vantage{sim: s, name: name, dir: fmt.Sprintf("%s/%s", o.Dir, name), cfg: cfg,
			jitter: rand.New(rand.NewPCG(o.Seed, uint64(len(s.vantages))+0x7177))}
		if o.Fleet != nil {
			if v.cfg, err = s.platform.ConfigFor(name); err != nil {
				s.Close()
				return nil, err
			}
		}
		if err := v.boot(); err != nil {
			s.Close()
			return nil, err
		}
		s.vantages = append(s.vantages, v)
	}
	return s, nil
}

// Close drops every vantage and closes its store. Safe to call twice.
func (s *Sim) Close() {
	if s.closed {
		return
	}
	s.closed = true
	for _, v := range s.vantages {
		v.kill()
	}
}

// Elapsed is the virtual time since the start.
func (s *Sim) Elapsed() time.Duration { return s.elapsed }

// Now is the virtual wall time (clock steps included).
func (s *Sim) Now() time.Time { return s.clock.Now() }

// Config is the config in force.
func (s *Sim) Config() *config.Config { return s.cfg }

// Platform is a copy of the platform in force.
func (s *Sim) Platform() Platform { return s.platform.Clone() }

// Receiver returns a receiver by name (nil when there is none).
func (s *Sim) Receiver(name string) *Receiver { return s.receivers[name] }

// Receivers lists the receivers by name.
func (s *Sim) Receivers() []*Receiver {
	out := make([]*Receiver, 0, len(s.receiverNames))
	for _, n := range s.receiverNames {
		out = append(out, s.receivers[n])
	}
	return out
}

// Engine is the first vantage's engine (the only one without a fleet).
func (s *Sim) Engine() *alert.Engine { return s.vantages[0].engine }

// Vantage returns a vantage's engine by name.
func (s *Sim) Vantage(name string) *alert.Engine {
	for _, v := range s.vantages {
		if v.name == name {
			return v.engine
		}
	}
	return nil
}

// Sent lists what the engines queued.
func (s *Sim) Sent() []Sent { return slices.Clone(s.sent) }

// Violations lists every invariant violation found so far, the first first.
func (s *Sim) Violations() []*Violation { return slices.Clone(s.checker.violations) }

// Err is the first violation (or the error that stopped the sim), nil if none.
func (s *Sim) Err() error {
	if s.fatal != nil {
		return s.fatal
	}
	if len(s.checker.violations) > 0 {
		return s.checker.violations[0]
	}
	return nil
}

// syncReceivers makes a receiver for every destination the platform names; receivers
// outlive reloads and restarts, like the services they stand for.
func (s *Sim) syncReceivers() {
	for _, n := range s.platform.Notifiers {
		if s.receivers[n.Receiver] != nil {
			continue
		}
		s.receivers[n.Receiver] = NewReceiver(n.Receiver, n.Kind, func() (time.Duration, time.Time) { return s.elapsed, s.clock.Now() })
		s.receiverNames = append(s.receiverNames, n.Receiver)
		slices.Sort(s.receiverNames)
	}
}

// schedule gives every target of the config its next run: new targets start in one
// of slots stagger slots of their interval; kept ones keep their rhythm.
func (s *Sim) schedule(slots int) {
	old := map[string]*simTarget{}
	for _, t := range s.targets {
		old[t.id] = t
	}
	s.targets = s.targets[:0:0]
	ids := make([]*config.Target, len(s.cfg.Targets))
	copy(ids, s.cfg.Targets)
	slices.SortFunc(ids, func(a, b *config.Target) int { return cmp.Compare(a.ID, b.ID) })
	for _, t := range ids {
		if o := old[t.ID]; o != nil && o.interval == t.Interval {
			s.targets = append(s.targets, o)
			continue
		}
		slot := time.Duration(s.rng.IntN(slots)) * t.Interval / time.Duration(slots)
		s.targets = append(s.targets, &simTarget{id: t.ID, interval: t.Interval, next: s.elapsed + slot})
	}
}

// monoOf converts a wall time of the clock into virtual time, under the current step.
func (s *Sim) monoOf(wall time.Time) time.Duration { return wall.Sub(s.start) - s.offset }

// RunFor runs the simulation for d of virtual time: scheduled actions, probe runs,
// engine ticks and outbox steps at the virtual times they are due, checking the
// invariants after every step. It returns the first violation (or sim error) so far.
func (s *Sim) RunFor(d time.Duration) error {
	end := s.elapsed + d
	for s.fatal == nil {
		s.step()
		next := s.nextWake()
		if next > end {
			break
		}
		s.advanceTo(next)
	}
	if s.fatal == nil {
		s.advanceTo(end)
		s.step()
	}
	return s.Err()
}

// advanceTo moves virtual time (and the wall clock with it) to at.
func (s *Sim) advanceTo(at time.Duration) {
	if at < s.elapsed {
		return
	}
	s.elapsed = at
	s.clock.Set(s.start.Add(s.elapsed + s.offset))
}

// step does everything due at the current virtual time, then checks the invariants.
func (s *Sim) step() {
	for len(s.actions) > 0 && s.actions[0].at <= s.elapsed && s.fatal == nil {
		a := s.actions[0]
		s.actions = s.actions[1:]
		s.steps++
		s.history = append(s.history, fmt.Sprintf("%9s step %d: %s", fmtDur(s.elapsed), s.steps, a.name))
		if err := a.do(s); err != nil {
			s.fatal = fmt.Errorf("sim %s: step %d (%s) at %s: %w", s.opts.Label, s.steps, a.name, fmtDur(s.elapsed), err)
			return
		}
		s.settle()
		s.checker.afterAction(a.name)
	}
	s.probeDue()
	s.settle()
	s.checker.check()
}

// settle lets every vantage tick and deliver until nothing more happens at this instant.
func (s *Sim) settle() {
	for round := 0; round < 8; round++ {
		before := len(s.sent)
		if s.net != nil {
			s.net.spread()
		}
		for _, v := range s.vantages {
			v.tick()
		}
		if len(s.sent) == before && (s.net == nil || !s.net.dirty()) {
			return
		}
	}
}

// probeDue runs every target that is due, on every live vantage.
func (s *Sim) probeDue() {
	for _, t := range s.targets {
		for t.next <= s.elapsed {
			status, why := statusOf(s.faults, t.id, t.next, t.interval)
			for _, v := range s.vantages {
				if st, w, ok := pathStatus(s.paths[v.name], t.id, t.next, t.interval); ok {
					v.observe(t.id, st, w)
					continue
				}
				v.observe(t.id, status, why)
			}
			t.next += t.interval
		}
	}
}

// nextWake is the earliest virtual time something is due: a scripted action, a probe
// run, an engine's held page, an outbox retry or fallback, a fleet timer.
func (s *Sim) nextWake() time.Duration {
	next := time.Duration(1<<62 - 1)
	if len(s.actions) > 0 {
		next = s.actions[0].at
	}
	for _, t := range s.targets {
		next = min(next, t.next)
	}
	for _, v := range s.vantages {
		if at, ok := v.due(); ok {
			next = min(next, at)
		}
	}
	if s.net != nil {
		if at, ok := s.net.due(); ok {
			next = min(next, at)
		}
	}
	return max(next, s.elapsed+time.Millisecond) // time always moves
}

// schedule an action at virtual time at (actions at the same time run in order).
func (s *Sim) addAction(at time.Duration, name string, do func(*Sim) error) {
	s.seq++
	a := action{at: at, seq: s.seq, name: name, do: do}
	i, _ := slices.BinarySearchFunc(s.actions, a, func(x, y action) int {
		return cmp.Or(cmp.Compare(x.at, y.at), cmp.Compare(x.seq, y.seq))
	})
	s.actions = slices.Insert(s.actions, i, a)
}
