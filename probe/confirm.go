package probe

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
)

// ConfirmOptions configure a Confirmer.
type ConfirmOptions struct {
	// RunNow starts one extra run of a target and calls done after its result was
	// handled; false (done not called) if it could not (Scheduler.RunNow).
	RunNow func(id string, done func()) bool
	// OnSettled is told, once every confirmation run asked for has reported, the
	// targets that ran: their thresholds and scope are known (the engine may page
	// without waiting out the group wait).
	OnSettled func(targets []string)
	Clock     clock.Clock // the rate's; nil: the real clock
}

// Confirmer makes the truth known in seconds rather than intervals. A target's first
// failure has it run again at once (a confirmation run): its failure threshold is met,
// or not, now, not one or more intervals later. A target that fires has the targets of
// its region (up to config.ConfirmSiblings, across its products) and those of its
// journey in other regions (as many, spread over the regions) run at once too, so that
// whether one journey, a region or a product is down is known before the first page.
//
// A failure is confirmed by two failures in a row, as before: only now the second comes
// a moment after the first. The targets around it run only once it fired, so a path
// that loses a run now and then does not set off runs all around it. Each target is
// asked for at most once per half its interval, the asks are queued without
// duplicates, and they start at most MaxPerSecond a second (a burst of one second's).
type Confirmer struct {
	o ConfirmOptions

	mu          sync.Mutex
	enabled     bool
	perSecond   float64
	targets     map[string]*config.Target
	byRegion    map[string][]*config.Target
	byJourney   map[string][]*config.Target // product/journey -> its targets, by region
	asked       map[string]time.Time        // a target's last ask, of either kind
	confirmed   map[string]time.Time        // a target's last ask to confirm its own failure
	fanned      map[string]time.Time        // a target's last fan-out to its siblings
	queued      map[string]bool
	queue       []*config.Target
	outstanding int             // asked and not yet reported
	round       map[string]bool // the targets asked since the last settling
	wake        chan struct{}
}

// NewConfirmer returns a Confirmer with no targets; SetConfig arms it.
func NewConfirmer(o ConfirmOptions) *Confirmer {
	o.Clock = clock.Or(o.Clock)
	return &Confirmer{o: o, asked: map[string]time.Time{}, confirmed: map[string]time.Time{}, fanned: map[string]time.Time{},
		queued: map[string]bool{}, round: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// SetConfig takes the confirm: settings and the targets (at start and on reload).
func (c *Confirmer) SetConfig(cc config.Confirm, targets []*config.Target) {
	byID := make(map[string]*config.Target, len(targets))
	byRegion, byJourney := map[string][]*config.Target{}, map[string][]*config.Target{}
	for _, t := range targets {
		byID[t.ID] = t
		byRegion[t.Region] = append(byRegion[t.Region], t)
		j := t.Product + "/" + t.Journey
		byJourney[j] = append(byJourney[j], t)
	}
	for _, group := range byRegion { // products take turns, so a sample spans them
		sort.SliceStable(group, func(i, j int) bool { return group[i].Product < group[j].Product })
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enabled, c.perSecond = cc.Enabled, cc.MaxPerSecond
	c.targets, c.byRegion, c.byJourney = byID, byRegion, byJourney
}

// FirstFailure: t failed once and is not firing yet: run it again at once.
func (c *Confirmer) FirstFailure(t *config.Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.enabled {
		c.ask(t.ID, true)
	}
}

// Firing: t fires: run the targets of its region and of its journey elsewhere at once.
func (c *Confirmer) Firing(t *config.Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.o.Clock.Now()
	if !c.enabled || now.Sub(c.fanned[t.ID]) < t.Interval {
		return
	}
	c.fanned[t.ID] = now
	for _, s := range sample(c.byRegion[t.Region], t.ID) {
		c.ask(s.ID, false)
	}
	for _, s := range sample(c.byJourney[t.Product+"/"+t.Journey], t.ID) {
		c.ask(s.ID, false)
	}
}

// sample is up to config.ConfirmSiblings of group, leaving out skip, spread evenly.
func sample(group []*config.Target, skip string) []*config.Target {
	rest := make([]*config.Target, 0, len(group))
	for _, t := range group {
		if t.ID != skip {
			rest = append(rest, t)
		}
	}
	n := config.ConfirmSiblings
	if len(rest) <= n {
		return rest
	}
	out := make([]*config.Target, n)
	for i := range out {
		out[i] = rest[i*len(rest)/n]
	}
	return out
}

// ask queues one run of id (with c.mu held), unless one is queued or it was asked for
// within half its interval. A confirmation of its own failure (confirm) is held back
// only by an earlier confirmation: the run around a firing target that failed is
// confirmed at once too.
func (c *Confirmer) ask(id string, confirm bool) {
	t := c.targets[id]
	now := c.o.Clock.Now()
	if t == nil || c.queued[id] {
		return
	}
	last := c.asked
	if confirm {
		last = c.confirmed
	}
	if at, ok := last[id]; ok && now.Sub(at) < t.Interval/2 {
		return
	}
	c.asked[id] = now
	if confirm {
		c.confirmed[id] = now
	}
	c.queued[id] = true
	c.queue = append(c.queue, t)
	c.outstanding++
	c.round[id] = true
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// done is one asked run reported (or not made): the last one settles the round.
func (c *Confirmer) done() {
	c.mu.Lock()
	c.outstanding--
	if c.outstanding > 0 || len(c.round) == 0 {
		c.mu.Unlock()
		return
	}
	ids := make([]string, 0, len(c.round))
	for id := range c.round {
		ids = append(ids, id)
	}
	c.round = map[string]bool{}
	c.forgetOld()
	c.mu.Unlock()
	sort.Strings(ids)
	if c.o.OnSettled != nil {
		c.o.OnSettled(ids)
	}
}

// forgetOld drops asks and fan-outs older than their target's interval (c.mu held):
// they no longer hold anything back, and the maps stay as small as the trouble.
func (c *Confirmer) forgetOld() {
	now := c.o.Clock.Now()
	for _, m := range []map[string]time.Time{c.asked, c.confirmed, c.fanned} {
		for id, at := range m {
			if t := c.targets[id]; t == nil || now.Sub(at) >= t.Interval {
				delete(m, id)
			}
		}
	}
}

// Run starts the queued runs, at most MaxPerSecond a second, until ctx ends.
func (c *Confirmer) Run(ctx context.Context) {
	var b bucket // full at the start: one second's worth may go at once
	timer := c.o.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := c.startDue(&b)
		if wait == 0 {
			wait = time.Hour // nothing queued: until an ask wakes us
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-timer.C():
		}
	}
}

// startDue starts queued runs while the rate allows; it returns how long until the
// next may start (0: the queue is empty).
func (c *Confirmer) startDue(b *bucket) time.Duration {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.mu.Unlock()
			return 0
		}
		if wait := b.take(c.o.Clock.Now(), c.perSecond); wait > 0 {
			c.mu.Unlock()
			return wait
		}
		t := c.queue[0]
		c.queue = c.queue[1:]
		delete(c.queued, t.ID)
		c.mu.Unlock()
		if !c.o.RunNow(t.ID, c.done) {
			c.done() // a run of it is going (its result is as fresh), or none can start
		}
	}
}

// bucket is a token bucket of one second's worth of runs.
type bucket struct {
	tokens float64
	at     time.Time
}

// take takes a token if there is one (0), else says how long until there is.
func (b *bucket) take(now time.Time, perSecond float64) time.Duration {
	if perSecond <= 0 {
		return time.Hour
	}
	if now.After(b.at) {
		b.tokens = min(b.tokens+now.Sub(b.at).Seconds()*perSecond, max(perSecond, 1))
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return max(time.Duration((1-b.tokens)/perSecond*float64(time.Second)), time.Millisecond)
}
