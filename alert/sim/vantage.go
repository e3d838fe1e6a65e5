package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
)

// vantage is one Picket process: its own store, outbox and engine. A restart drops
// the process without any shutdown work and builds a new one from its state dir.
type vantage struct {
	sim    *Sim
	name   string
	dir    string
	jitter *rand.Rand
	cfg    *config.Config

	store      *store.Store
	outbox     *notify.Outbox
	engine     *alert.Engine
	member     *member   // its view of the fleet; nil alone
	outboxNext time.Time // when the outbox has something due next; zero: nothing waits
	down       bool      // crashed, not started again yet
	boots      int
	bootedAt   time.Duration // virtual time of the last boot
}

// boot opens the state dir and builds the outbox and the engine from it, as the
// daemon does at start.
func (v *vantage) boot() error {
	st, err := store.Open(v.dir, store.Options{})
	if err != nil {
		return fmt.Errorf("vantage %s: %w", v.name, err)
	}
	if v.sim.net != nil {
		v.member = v.sim.net.join(v.name)
	}
	m := v.member
	o := alert.PagingOptions{
		Engine: alert.EngineOptions{Config: v.cfg, Store: st, Clock: v.sim.clock},
		Outbox: notify.OutboxOptions{
			Store: st, Notifiers: v.sim.notifiers(), Clock: v.sim.clock, Jitter: v.jitter.Float64, Logger: outboxLog(),
			OnDrop: v.sim.noteDrop,
		},
		Queue: func(ob *notify.Outbox) alert.Enqueuer { return &recordingOutbox{v: v, ob: ob} },
	}
	if m != nil {
		o.Engine.Peers = fleet.New(fleet.Options{Fleet: m, Quorum: v.sim.opts.Fleet.Quorum,
			AloneAfter: v.sim.opts.Fleet.aloneAfter(), TakeoverAfter: v.sim.opts.Fleet.takeoverAfter()})
		o.Outbox.OnResult = func(r notify.AttemptResult) {
			if r.OK {
				fleet.ConfirmPage(m, r) // after the engine noted it, as the daemon does
			}
		}
		o.Outbox.Obsolete = func(n notify.Notification) string { return fleet.ObsoletePage(m, n) }
	}
	engine, ob, err := alert.NewPaging(o)
	if err != nil {
		_ = st.Close()
		return fmt.Errorf("vantage %s: %w", v.name, err)
	}
	v.store, v.outbox, v.engine, v.down = st, ob, engine, false
	v.boots++
	v.bootedAt = v.sim.elapsed
	if v.sim.impaired[v.name] {
		engine.SetImpaired(true) // the self-check fails again at once
	}
	return nil
}

// kill drops the process: nothing is flushed, only what the store already holds
// survives (every store write is its own committed transaction, so closing the file
// loses nothing a SIGKILL would keep).
func (v *vantage) kill() {
	if v.store != nil {
		_ = v.store.Close()
	}
	if v.member != nil {
		v.sim.net.leave(v.member)
	}
	v.store, v.outbox, v.engine, v.member, v.outboxNext = nil, nil, nil, nil, time.Time{}
	v.down = true
}

// observe feeds one run's result to the engine.
func (v *vantage) observe(id string, status probe.Status, why string) {
	if v.down {
		return
	}
	v.engine.Observe(result(id, status, why, v.sim.clock.Now()))
}

// tick is the daemon's one-second loop and its outbox, at this instant.
func (v *vantage) tick() {
	if v.down {
		return
	}
	v.engine.Tick()
	v.outboxNext = v.outbox.Step(context.Background())
}

// due is when this vantage next has something to do without a new result.
func (v *vantage) due() (time.Duration, bool) {
	if v.down {
		return 0, false
	}
	s := v.sim
	next, ok := time.Duration(0), false
	take := func(at time.Duration) {
		if !ok || at < next {
			next, ok = at, true
		}
	}
	if !v.outboxNext.IsZero() {
		take(max(s.monoOf(v.outboxNext), s.elapsed+time.Millisecond))
	}
	for _, inc := range v.engine.OpenIncidents() {
		switch {
		case v.member != nil:
			take(s.elapsed + s.tick) // takeovers, pending resolves, holds: tick like the daemon
		case inc.Triggered || inc.AbsorbedInto != "":
		case s.monoOf(inc.SendAfter) > s.elapsed:
			take(s.monoOf(inc.SendAfter))
		default:
			take(s.elapsed + s.tick) // held past its time (silenced, impaired)
		}
	}
	return next, ok
}

// recordingOutbox is the engine's outbox: the real one, with every enqueue logged.
type recordingOutbox struct {
	v  *vantage
	ob *notify.Outbox
}

func (r *recordingOutbox) Enqueue(d notify.Delivery) error {
	s := r.v.sim
	s.sent = append(s.sent, Sent{At: s.elapsed, Vantage: r.v.name, Key: d.Notification.DedupKey,
		Action: d.Notification.Action, Notify: slices.Clone(d.Notify), Summary: d.Notification.Summary,
		ID: d.Notification.ID, Opened: d.Notification.Opened, Targets: detailTargets(d.Notification.Details)})
	return r.ob.Enqueue(d)
}

// noteDrop keeps, for I5, the incidents a receiver never heard of: their trigger was
// dropped unsent for it, coalesced with their resolve.
func (s *Sim) noteDrop(d notify.Dropped) {
	r := s.receiverOf(d.Notifier)
	if d.Action != notify.ActionTrigger || d.Reason != notify.DropCoalesced || r == "" {
		return
	}
	i := slices.IndexFunc(s.sent, func(sn Sent) bool { return sn.ID == d.NotificationID })
	if i < 0 {
		return
	}
	opened := s.sent[i].Opened
	if !slices.ContainsFunc(s.sent[i:], func(sn Sent) bool {
		return sn.Key == d.DedupKey && sn.Action == notify.ActionResolve && sn.Opened.Equal(opened)
	}) {
		return // coalesced with a later trigger (an update): the receiver hears of it
	}
	k := r + " " + d.DedupKey
	if s.unseen[k] == nil {
		s.unseen[k] = map[time.Time]bool{}
	}
	s.unseen[k][opened] = true
}

// detailTargets are the targets a notification's details list, nil when it lists only
// some of them (it keeps at most 50).
func detailTargets(d map[string]any) []string {
	list, _ := d["targets"].([]map[string]any)
	if total, _ := d["targets_total"].(int); total != len(list) {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, t := range list {
		if id, ok := t["target"].(string); ok {
			out = append(out, id)
		}
	}
	return out
}

// Entries lets the engine see what is queued after a restart (adoptQueued).
func (r *recordingOutbox) Entries() []notify.EntryInfo { return r.ob.Entries() }

// notifiers binds every config notifier name to its receiver.
func (s *Sim) notifiers() map[string]notify.Notifier {
	out := make(map[string]notify.Notifier, len(s.platform.Notifiers))
	for _, n := range s.platform.Notifiers {
		out[n.Name] = binding{name: n.Name, r: s.receivers[n.Receiver]}
	}
	return out
}
