package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/config"
)

// The scenario DSL. Every action exists twice: on *Sim it happens now (between two
// RunFor calls); on the *Cue of At(t) it is scheduled for virtual time t and happens
// during a later RunFor, before the probes of that instant.

// Cue schedules actions at one virtual time.
type Cue struct {
	s  *Sim
	at time.Duration
}

// At returns a cue for virtual time t (since the start of the run).
func (s *Sim) At(t time.Duration) *Cue { return &Cue{s: s, at: t} }

// Do schedules fn under name.
func (c *Cue) Do(name string, fn func(*Sim) error) *Cue {
	c.s.addAction(c.at, name, fn)
	return c
}

func (c *Cue) Fail(region, product string) *Cue {
	return c.Do("fail "+product+"@"+region, func(s *Sim) error { s.Fail(region, product); return nil })
}

func (c *Cue) Degrade(region, product string) *Cue {
	return c.Do("degrade "+product+"@"+region, func(s *Sim) error { s.Degrade(region, product); return nil })
}

func (c *Cue) Heal(region, product string) *Cue {
	return c.Do("heal "+product+"@"+region, func(s *Sim) error { s.Heal(region, product); return nil })
}

func (c *Cue) FailFrom(vantage, region, product string) *Cue {
	return c.Do("fail "+product+"@"+region+" from "+vantage, func(s *Sim) error { s.FailFrom(vantage, region, product); return nil })
}

func (c *Cue) HealFrom(vantage, region, product string) *Cue {
	return c.Do("heal "+product+"@"+region+" from "+vantage, func(s *Sim) error { s.HealFrom(vantage, region, product); return nil })
}

func (c *Cue) Flap(region, product, pattern string) *Cue {
	return c.Do("flap "+product+"@"+region+" "+pattern, func(s *Sim) error { s.Flap(region, product, pattern); return nil })
}

func (c *Cue) Silence(m config.Match, d time.Duration) *Cue {
	return c.Do(fmt.Sprintf("silence %s for %s", matchYAML(m), d), func(s *Sim) error { return s.Silence(m, d) })
}

func (c *Cue) Reload(p Platform) *Cue {
	return c.Do("reload", func(s *Sim) error { return s.Reload(p) })
}

func (c *Cue) RenameNotifier(old, name string) *Cue {
	return c.Do("reload: rename notifier "+old+" to "+name, func(s *Sim) error { return s.RenameNotifier(old, name) })
}

func (c *Cue) EditJourney(product, journey string) *Cue {
	return c.Do("reload: edit journey "+product+"/"+journey, func(s *Sim) error { return s.EditJourney(product, journey) })
}

func (c *Cue) Restart(vantages ...string) *Cue {
	return c.Do("restart "+strings.Join(vantages, ","), func(s *Sim) error { return s.Restart(vantages...) })
}

func (c *Cue) RestartAcross(step time.Duration, vantages ...string) *Cue {
	return c.Do(fmt.Sprintf("restart %s across a wall-clock step of %s", strings.Join(vantages, ","), step),
		func(s *Sim) error { return s.RestartAcross(step, vantages...) })
}

func (c *Cue) ReceiverFault(name, kind string, d time.Duration) *Cue {
	return c.Do(fmt.Sprintf("receiver %s answers %s for %s", name, kind, d), func(s *Sim) error {
		s.ReceiverFault(name, kind, s.elapsed, s.elapsed+d)
		return nil
	})
}

func (c *Cue) Crash(vantage string) *Cue {
	return c.Do("crash "+vantage, func(s *Sim) error { s.Crash(vantage); return nil })
}

func (c *Cue) Start(vantage string) *Cue {
	return c.Do("start "+vantage, func(s *Sim) error { return s.Start(vantage) })
}

func (c *Cue) ClockStep(d time.Duration) *Cue {
	return c.Do(fmt.Sprintf("wall clock steps %s", d), func(s *Sim) error { s.ClockStep(d); return nil })
}

func (c *Cue) SetImpaired(vantage string, impaired bool) *Cue {
	return c.Do(fmt.Sprintf("impaired %s %v", vantage, impaired), func(s *Sim) error { s.SetImpaired(vantage, impaired); return nil })
}

func (c *Cue) Partition(groups ...[]string) *Cue {
	return c.Do(fmt.Sprintf("partition %v", groups), func(s *Sim) error { s.Partition(groups...); return nil })
}

// Fail makes the selected targets fail ("*" selects every region or product; a
// product may be "product/journey").
func (s *Sim) Fail(region, product string) {
	s.setFault(Selector{region, product}, PatternDown, "status 503, want 200")
}

// Degrade makes the selected targets slow (degraded).
func (s *Sim) Degrade(region, product string) {
	s.setFault(Selector{region, product}, PatternDegraded, "")
}

// Heal makes the selected targets pass.
func (s *Sim) Heal(region, product string) { s.setFault(Selector{region, product}, PatternUp, "") }

// FailFrom breaks one vantage's own path to the selected targets: its probes see them
// down whatever the platform does; the other vantages see the platform as it is.
func (s *Sim) FailFrom(vantage, region, product string) {
	s.setPath(vantage, Selector{region, product}, PatternDown, "status 502, want 200 (no path from "+vantage+")")
}

// HealFrom mends one vantage's path to the selected targets: it sees the platform
// as it is again.
func (s *Sim) HealFrom(vantage, region, product string) {
	s.setPath(vantage, Selector{region, product}, PatternPlatform, "")
}

func (s *Sim) setPath(vantage string, sel Selector, pattern, why string) {
	s.paths[vantage] = addFault(s.paths[vantage], platformFault{Sel: sel, Pattern: pattern, From: s.elapsed, Why: why})
}

// Flap makes the selected targets follow pattern, one letter per run (D down, U up,
// G degraded), over and over.
func (s *Sim) Flap(region, product, pattern string) {
	s.setFault(Selector{region, product}, pattern, "status 502, want 200 (flapping)")
}

func (s *Sim) setFault(sel Selector, pattern, why string) {
	s.faults = addFault(s.faults, platformFault{Sel: sel, Pattern: pattern, From: s.elapsed, Why: why})
}

// Silence adds a run-time silence from now for d on every vantage (as the API would).
func (s *Sim) Silence(m config.Match, d time.Duration) error {
	now := s.clock.Now()
	for _, v := range s.vantages {
		if v.down {
			continue
		}
		if _, err := v.engine.AddSilence(alert.Silence{Comment: "sim", Start: now, End: now.Add(d), Match: m}); err != nil {
			return err
		}
	}
	return nil
}

// Reload switches every vantage to p, as a SIGHUP does: the outbox gets the new
// notifiers, then the engine the new config.
func (s *Sim) Reload(p Platform) error {
	cfg, err := p.Config()
	if err != nil {
		return err
	}
	s.checker.beforeReload()
	s.platform, s.cfg = p.Clone(), cfg
	s.syncReceivers()
	for _, v := range s.vantages {
		v.cfg = cfg
		if s.net != nil {
			if v.cfg, err = p.ConfigFor(v.name); err != nil {
				return err
			}
		}
		if v.down {
			continue
		}
		v.outbox.SetNotifiers(s.notifiers())
		v.engine.Reload(v.cfg)
	}
	s.schedule(orInt(s.opts.Slots, 6))
	s.checker.afterReload()
	return nil
}

// RenameNotifier reloads with notifier old renamed (same destination), routes too.
func (s *Sim) RenameNotifier(old, name string) error {
	p := s.Platform()
	for i := range p.Notifiers {
		if p.Notifiers[i].Name == old {
			p.Notifiers[i].Name = name
		}
	}
	for i := range p.Routes {
		p.Routes[i].Notify = rename(p.Routes[i].Notify, old, name)
		p.Routes[i].Fallback = rename(p.Routes[i].Fallback, old, name)
	}
	return s.Reload(p)
}

// EditJourney reloads with one journey's definition changed.
func (s *Sim) EditJourney(product, journey string) error {
	p := s.Platform()
	for i := range p.Products {
		for j := range p.Products[i].Journeys {
			if p.Products[i].Name == product && p.Products[i].Journeys[j].Name == journey {
				p.Products[i].Journeys[j].Edit++
			}
		}
	}
	return s.Reload(p)
}

func rename(names []string, old, name string) []string {
	out := slices.Clone(names)
	for i, n := range out {
		if n == old {
			out[i] = name
		}
	}
	return out
}

// Restart kills the named vantages (none: all) like SIGKILL and starts them again
// from their state dirs.
func (s *Sim) Restart(vantages ...string) error {
	for _, v := range s.vantages {
		if len(vantages) > 0 && !slices.Contains(vantages, v.name) {
			continue
		}
		v.kill()
		if err := v.boot(); err != nil {
			return err
		}
	}
	s.checker.afterRestart()
	return nil
}

// RestartAcross kills the named vantages (none: all), steps the wall clock by step while
// they are down (NTP at boot), and starts them again.
func (s *Sim) RestartAcross(step time.Duration, vantages ...string) error {
	var down []*vantage
	for _, v := range s.vantages {
		if len(vantages) == 0 || slices.Contains(vantages, v.name) {
			v.kill()
			down = append(down, v)
		}
	}
	s.ClockStep(step)
	for _, v := range down {
		if err := v.boot(); err != nil {
			return err
		}
	}
	s.checker.afterRestart()
	return nil
}

// ReceiverFault makes a receiver answer kind (FaultReject, FaultThrottle, FaultDown,
// FaultSlow) between the virtual times from and to.
func (s *Sim) ReceiverFault(name, kind string, from, to time.Duration) {
	s.ReceiverFaultFrom(name, kind, "", from, to)
}

// ReceiverFaultFrom is ReceiverFault for the calls of one vantage only (its path to
// the receiver is broken).
func (s *Sim) ReceiverFaultFrom(name, kind, vantage string, from, to time.Duration) {
	if r := s.receivers[name]; r != nil {
		r.AddFault(kind, from, to, vantage)
	}
}

// Crash kills a vantage and leaves it down until Start.
func (s *Sim) Crash(vantage string) {
	for _, v := range s.vantages {
		if v.name == vantage && !v.down {
			v.kill()
			s.checker.crashes++
		}
	}
}

// Start boots a crashed vantage from its state dir.
func (s *Sim) Start(vantage string) error {
	for _, v := range s.vantages {
		if v.name == vantage && v.down {
			if err := v.boot(); err != nil {
				return err
			}
		}
	}
	s.checker.afterRestart()
	return nil
}

// ClockStep steps the wall clock by d (back when negative); virtual time goes on.
func (s *Sim) ClockStep(d time.Duration) {
	s.offset += d
	s.clock.Step(d) // the wall time moves, the monotonic reading does not
	s.checker.afterClockStep(d)
}

// SetImpaired makes a vantage's self-check fail (true) or pass again.
func (s *Sim) SetImpaired(vantage string, impaired bool) {
	for _, v := range s.vantages {
		if vantage != "" && v.name != vantage {
			continue
		}
		s.impaired[v.name] = impaired
		if !v.down {
			v.engine.SetImpaired(impaired)
		}
	}
	s.checker.afterImpaired()
}

// Partition splits the fleet into groups that hear only each other (none: healed).
func (s *Sim) Partition(groups ...[]string) {
	if s.net != nil {
		s.net.partition(groups)
	}
}
