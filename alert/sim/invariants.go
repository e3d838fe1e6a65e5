package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// Invariant names, as violations and Checks.Skip name them.
const (
	I1Coverage = "I1 coverage"
	I2Resolve  = "I2 resolve follows trigger"
	I3Silences = "I3 silences"
	I4Flapping = "I4 flapping"
	I5Restart  = "I5 restart"
	I6Reload   = "I6 reload"
	F1OnePage  = "F1 one page per key"
	F2Minority = "F2 minority holds"
	F3Majority = "F3 majority pages"
)

// Hints are the checker's guess at a violation's cause, to group failing seeds.
const (
	HintPartialSilence = "a silence of part of the incident mutes all of it"
	HintRewait         = "the covering incident's group wait began after its target fired (a wider scope formed, or it split off a paged one)"
	HintClockStep      = "a wall-clock step moved the group wait"
	HintRestart        = "a restart came between"
	HintFallback       = "the fallback got the trigger but not the resolve"
	HintFlapping       = "a flapping target pages every flap"
	HintEditedJourney  = "a reload of an edited journey dropped its state"
	HintRenamed        = "a reload renamed the notifier of a queued entry"
	HintCascade        = "a notifier failed for every vantage, so each took over in turn"
)

// Checks tunes the invariants.
type Checks struct {
	// Skip names invariants not to check (I1Coverage, ...).
	Skip []string
	// FlapWindowRuns is I4's window in runs of each target's interval; 0: each
	// target's failure_window runs (10 at failure_threshold 2).
	FlapWindowRuns int
	// PagesPerFlapWindow is how many times a key may open at one receiver within the
	// window; 0: 2 (the failure, then once more marked flapping; a flapping target then
	// stays open until it is stable for a whole window).
	PagesPerFlapWindow int
	// RetrySlack is how long after a receiver fault ends the outbox may take to get
	// through (its longest backoff with jitter, or a Retry-After); 0: 90s.
	RetrySlack time.Duration
}

func (c Checks) skips(name string) bool { return slices.Contains(c.Skip, name) }

// Violation is one broken invariant, with what is needed to replay and understand it.
type Violation struct {
	Label     string // the run: a seed, a test
	Step      int    // script actions done so far
	StepName  string // the last action
	At        time.Duration
	Invariant string
	Subject   string // the target, key or receiver it is about
	Hint      string // the checker's guess at the cause ("" when it has none)
	Detail    string
	Trace     string
}

func (v *Violation) Error() string {
	hint := ""
	if v.Hint != "" {
		hint = " [likely: " + v.Hint + "]"
	}
	return fmt.Sprintf("%s: %s violated at %s after step %d (%s): %s%s\n%s",
		v.Label, v.Invariant, fmtDur(v.At), v.Step, v.StepName, v.Detail, hint, v.Trace)
}

// checker keeps what the invariants need between steps.
type checker struct {
	s         *Sim
	o         Checks
	since     map[string]time.Duration // target -> firing (on the first vantage) since
	condition map[string]string        // target -> its condition since then
	// uncovered: target -> since when no active silence covers it.
	uncovered  map[string]time.Duration
	exemptTill time.Duration // pages held by an impaired vantage until here
	triggered  map[string]bool
	sentSeen   int
	lastAction string
	sides      int // the most partition sides a fleet had so far
	restarts   []time.Duration
	crashes    int             // vantages crashed so far: each may leave a page for another to take over
	steps      []time.Duration // wall-clock steps
	// backStep is the last backward wall-clock step: a held page then waits group_wait
	// from there at most (the engine clamps SendAfter; a Go process would not even see it
	// for in-memory waits, which keep the monotonic clock).
	backStep time.Duration

	reloadPages []pageDue           // I6: queued triggers a reload must not lose
	reloadOpen  map[string][]string // I6: paged incidents before a reload, by key
	reloadSent  int                 // I6: what was queued before the reload
	violations  []*Violation
	seen        map[string]bool // invariant + subject: one report each
}

// pageDue is a trigger queued for a receiver at a virtual time.
type pageDue struct {
	at       time.Duration
	key      string
	receiver string
}

func newChecker(s *Sim, o Checks) *checker {
	return &checker{s: s, o: o, since: map[string]time.Duration{}, condition: map[string]string{}, uncovered: map[string]time.Duration{},
		triggered: map[string]bool{}, seen: map[string]bool{}}
}

// fail records a violation once per invariant and subject.
func (c *checker) fail(invariant, subject, hint, format string, args ...any) {
	if c.o.skips(invariant) || c.seen[invariant+" "+subject] {
		return
	}
	c.seen[invariant+" "+subject] = true
	s := c.s
	v := &Violation{Label: s.opts.Label, Step: s.steps, StepName: c.lastAction, At: s.elapsed,
		Invariant: invariant, Subject: subject, Hint: hint, Detail: fmt.Sprintf(format, args...)}
	v.Trace = s.trace(subject)
	c.violations = append(c.violations, v)
}

func (c *checker) afterAction(name string) { c.lastAction = name }

// view is what one check looks at: the first vantage's engine, at one instant.
type view struct {
	now       time.Time
	firing    map[string]string // target -> condition
	incidents []alert.Incident
	silences  []alert.Silence
	cfg       *config.Config
}

func (c *checker) look(v *vantage) (view, bool) {
	if v == nil || v.down {
		return view{}, false
	}
	st := v.engine.Snapshot()
	w := view{now: c.s.clock.Now(), firing: map[string]string{}, incidents: st.Incidents,
		silences: v.engine.Silences(), cfg: c.s.cfg}
	for _, t := range st.Targets {
		if t.State == alert.StateFiring && (t.Condition != alert.ConditionDegraded || w.cfg.Alerting.Degraded != "ignore") {
			w.firing[t.Target] = t.Condition
		}
	}
	return w, true
}

// check runs the invariants that hold at every instant (I1, I3, I4).
func (c *checker) check() {
	if c.s.net != nil {
		c.checkFleet()
		return
	}
	w, ok := c.look(c.s.vantages[0])
	if !ok {
		return
	}
	c.track(w)
	c.checkSilences(w)
	c.checkCoverage(w, I1Coverage)
	c.checkFlapping()
	c.sentSeen = len(c.s.sent)
	for _, inc := range w.incidents {
		c.triggered[inc.Key] = inc.Triggered
	}
	for key := range c.triggered {
		if !slices.ContainsFunc(w.incidents, func(i alert.Incident) bool { return i.Key == key }) {
			delete(c.triggered, key)
		}
	}
}

// track updates since when each target fires and is not covered by a silence.
func (c *checker) track(w view) {
	now := c.s.elapsed
	for id := range c.since {
		// A target that stops firing, or escalates from degraded to down (a new
		// incident with its own group wait), starts over.
		if cond, ok := w.firing[id]; !ok || cond != c.condition[id] {
			delete(c.since, id)
		}
	}
	for id, cond := range w.firing {
		if _, ok := c.since[id]; !ok {
			c.since[id], c.condition[id] = now, cond
		}
		scope := alert.ScopeTarget
		if inc := activeFor(w.incidents, id); inc != nil {
			scope = inc.Scope
		}
		if w.silenced(id, scope) {
			delete(c.uncovered, id)
		} else if _, ok := c.uncovered[id]; !ok {
			c.uncovered[id] = now
		}
	}
}

// bound is how long a firing target may wait for its page: the group wait, two ticks,
// and nothing for the receiver (it answers at once while healthy).
func (c *checker) bound() time.Duration { return c.s.cfg.Alerting.GroupWait + 2*c.s.tick }

func (c *checker) retrySlack() time.Duration {
	if c.o.RetrySlack > 0 {
		return c.o.RetrySlack
	}
	return 90 * time.Second
}

// checkCoverage is I1 (or F3 on a fleet's majority).
func (c *checker) checkCoverage(w view, invariant string) {
	if c.s.isImpaired() {
		return
	}
	now := c.s.elapsed
	for _, id := range sortedKeys(w.firing) {
		if _, ok := c.uncovered[id]; !ok {
			continue // silenced
		}
		since := max(c.since[id], c.uncovered[id], c.exemptTill, c.backStep)
		if now-since <= c.bound() {
			continue
		}
		checkCoverage(c, w, invariant, id, since)
	}
}

// checkCoverage (I1): every target that fires and is not covered by an active silence
// is, within group_wait + 2 ticks of firing (plus the outbox's retry slack after a
// receiver fault), covered by exactly one active incident, some open incident that
// covers it has been paged, and the paged key is open at every receiver its route names.
func checkCoverage(c *checker, w view, invariant, id string, since time.Duration) {
	var active []alert.Incident
	paged := false
	for _, inc := range w.incidents {
		if !slices.Contains(inc.Targets, id) {
			continue
		}
		if inc.AbsorbedInto == "" {
			active = append(active, inc)
		}
		paged = paged || inc.Triggered
	}
	switch {
	case len(active) != 1:
		c.fail(invariant, id, "", "%s fires since %s but is covered by %d active incidents, want 1", id, fmtDur(since), len(active))
		return
	case !paged:
		c.fail(invariant, id, c.whyUnpaged(active[0], since), "%s fires (not silenced) since %s but no incident covering it was paged within %s; its incident %s: %s",
			id, fmtDur(since), c.bound(), active[0].Key, incidentState(active[0]))
		return
	}
	inc := active[0]
	if !inc.Triggered {
		// Paged through a narrower incident; the wider one has its own group wait.
		if c.s.monoOf(inc.SendAfter)+2*c.s.tick >= c.s.elapsed {
			return
		}
		c.fail(invariant, inc.Key, c.whyUnpaged(inc, since), "%s covers firing %s but was not paged %s after its send time", inc.Key, id, 2*c.s.tick)
		return
	}
	from := min(since, c.s.monoOf(inc.Opened)) // a fault since its page counts
	for _, name := range c.routeReceivers(w, inc) {
		r := c.s.receivers[name]
		if r == nil || !c.healthy(r, from) || r.IsOpen(inc.Key) || c.heldByAbsentSender(r, inc) {
			continue
		}
		c.fail(invariant, inc.Key+" at "+name, c.recent(since), "%s was paged for %s but is not open at receiver %s, which has been healthy", inc.Key, id, name)
	}
}

// heldByAbsentSender: in a fleet, a page counts as sent once the pagers accepted it
// (README, "Confirmation in a fleet"), so no other vantage repeats it to a chat or
// webhook that failed meanwhile; the sender's outbox keeps it, and delivers it once that
// vantage runs again. While the sender is down, or started less than the retry slack
// ago, such a receiver may lack the page (fleet seed 171: the sender crashed while chat
// answered 5xx).
func (c *checker) heldByAbsentSender(r *Receiver, inc alert.Incident) bool {
	if c.s.net == nil || r.kind == KindPagerDuty {
		return false
	}
	for _, v := range c.s.vantages {
		if v.name == inc.PagedBy {
			return v.down || (v.boots > 1 && c.s.elapsed < v.bootedAt+c.retrySlack())
		}
	}
	return false
}

// healthy reports whether the receiver has had no fault since the virtual time from,
// or one that ended at least the retry slack ago and did not refuse for good.
func (c *checker) healthy(r *Receiver, from time.Duration) bool {
	for _, f := range r.Faults() {
		if f.To <= from || f.From > c.s.elapsed {
			continue
		}
		if f.Kind == FaultReject || c.s.elapsed < f.To+c.retrySlack() {
			return false
		}
	}
	return true
}

// routeReceivers are the receivers the incident's routes name, by the config in force.
func (c *checker) routeReceivers(w view, inc alert.Incident) []string {
	var out []string
	for _, d := range alert.NewRouter(w.cfg).Deliveries(&inc, w.cfg.Alerting.Degraded) {
		for _, n := range d.Notify {
			if r := c.s.receiverOf(n); r != "" && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// checkSilences is I3.
func (c *checker) checkSilences(w view) {
	// The first trigger of each key queued since the last check, with the targets it
	// was about then: an incident may narrow in the same instant (more results of the
	// same probe round), and a page is judged by what it paged for.
	paged := map[string][]string{}
	for _, sn := range c.s.sent[c.sentSeen:] {
		if _, ok := paged[sn.Key]; !ok && sn.Action == notify.ActionTrigger {
			paged[sn.Key] = sn.Targets
		}
	}
	for _, inc := range w.incidents {
		targets, queuedNow := paged[inc.Key]
		if targets == nil {
			targets = inc.Targets // the notification listed only some of them
		}
		checkSilence(c, w, inc, queuedNow, targets)
	}
}

// checkSilence (I3): an incident all of whose targets are covered by active silences
// when its first trigger is queued (pagedFor: its targets then) is never paged, and an
// active incident with a target that no active silence covers is not muted: it is
// paged within group_wait + 2 ticks of that target being uncovered. With group_wait 0 a
// new target that nobody silenced pages its incident at once, even if it moves to
// another incident a moment later and leaves only silenced targets behind.
func checkSilence(c *checker, w view, inc alert.Incident, queuedNow bool, pagedFor []string) {
	if inc.Triggered && !c.triggered[inc.Key] && queuedNow && len(pagedFor) > 0 && // (one held open as flapping covers nothing)
		!slices.ContainsFunc(pagedFor, func(t string) bool { return !w.silenced(t, inc.Scope) }) {
		c.fail(I3Silences, inc.Key, "", "%s was paged although every one of its targets is silenced: %v", inc.Key, pagedFor)
	}
	var loud []string
	for _, t := range inc.Targets {
		if !w.silenced(t, inc.Scope) {
			loud = append(loud, t)
		}
	}
	if inc.Triggered || inc.AbsorbedInto != "" || len(loud) == 0 || c.s.isImpaired() {
		return
	}
	since := c.s.monoOf(inc.SendAfter)
	for _, t := range loud {
		since = max(since, c.uncovered[t])
	}
	since = max(since, c.exemptTill)
	if c.s.elapsed-since > 2*c.s.tick {
		c.fail(I3Silences, inc.Key, HintPartialSilence, "%s is muted (%s) although %v are not covered by any active silence",
			inc.Key, incidentState(inc), loud)
	}
}

// silenced reports whether an active silence covers the target as part of an incident
// of the given scope.
func (w view) silenced(id, scope string) bool {
	product, _, region := splitID(id)
	prio := 0
	for _, p := range w.cfg.Products {
		if p.Name == product {
			prio = p.Priority
		}
	}
	for _, s := range w.silences {
		if s.Active(w.now) && matchTarget(s.Match, scope, product, region, prio) {
			return true
		}
	}
	return false
}

// matchTarget is a silence's match applied to one target: every non-empty list holds
// the target's value.
func matchTarget(m config.Match, scope, product, region string, prio int) bool {
	return (len(m.Scope) == 0 || slices.Contains(m.Scope, scope)) &&
		(len(m.Product) == 0 || slices.Contains(m.Product, product)) &&
		(len(m.Region) == 0 || slices.Contains(m.Region, region)) &&
		(len(m.Priority) == 0 || slices.Contains(m.Priority, prio))
}

// checkFlapping (I4): a key opens at most PagesPerFlapWindow (2) times at any one
// receiver within any flap window of the key: a target that fails again soon after
// recovering is paged once more, as flapping, and then held open. A stricter "once per
// window" would need every resolve held back for the whole window.
func (c *checker) checkFlapping() {
	limit := orInt(c.o.PagesPerFlapWindow, 2)
	for _, r := range c.s.Receivers() {
		opened := map[string][]time.Duration{}
		for _, ev := range r.Events() {
			if ev.Opened {
				opened[ev.Key] = append(opened[ev.Key], ev.At)
			}
		}
		for _, key := range sortedKeys(opened) {
			at := opened[key]
			window := c.flapWindow(key)
			for i := limit; i < len(at) && window > 0; i++ {
				if at[i]-at[i-limit] < window {
					c.fail(I4Flapping, key+" at "+r.name, HintFlapping, "%s opened %d times at %s within %s (at %s and %s)",
						key, limit+1, r.name, window, fmtDur(at[i-limit]), fmtDur(at[i]))
					break
				}
			}
		}
	}
}

// flapWindow is a key's flap window: the longest failure window (its runs times the
// interval) of the targets the key's scope covers (a target key: its own; a product or
// region: theirs; global: all). FlapWindowRuns overrides the runs. Zero: no target of
// the key has a failure window, so nothing is judged flapping.
func (c *checker) flapWindow(key string) time.Duration {
	subject := key[strings.LastIndex(key, "/")+1:]
	if i := strings.Index(key, "/target/"); i >= 0 {
		subject = key[i+len("/target/"):]
	} else if i := strings.Index(key, "/degraded/"); i >= 0 {
		subject = key[i+len("/degraded/"):]
	} else if i := strings.Index(key, "/cert/"); i >= 0 {
		subject = key[i+len("/cert/"):]
	}
	covers := func(t *config.Target) bool {
		switch {
		case key == "picket/global":
			return true
		case strings.HasPrefix(key, "picket/product/"):
			return t.Product == subject
		case strings.HasPrefix(key, "picket/region/"):
			return t.Region == subject
		}
		return t.ID == subject || t.Product == subject || t.Region == subject
	}
	var window time.Duration
	for _, t := range c.s.cfg.Targets {
		if !covers(t) || t.FailureWindow.Failures == 0 {
			continue
		}
		runs := orInt(c.o.FlapWindowRuns, t.FailureWindow.Runs)
		window = max(window, time.Duration(runs)*t.Interval)
	}
	return window
}

// CheckQuiet heals everything (platform, vantages' paths, receivers, impairment,
// partitions), runs for d, and checks I2 and the reload obligations of I6.
func (s *Sim) CheckQuiet(d time.Duration) error {
	s.faults = nil
	clear(s.paths)
	for _, r := range s.receivers {
		r.ClearFaults(s.elapsed)
	}
	for name := range s.impaired {
		s.SetImpaired(name, false)
	}
	s.Partition()
	s.history = append(s.history, fmt.Sprintf("%9s quiet: everything healed for %s", fmtDur(s.elapsed), d))
	if err := s.RunFor(d); s.fatal != nil {
		return err
	}
	s.checker.lastAction = "quiet period"
	s.checker.checkResolved()
	s.checker.checkReloadPages()
	return s.Err()
}

// checkResolved (I2): once everything has healed and the receivers have been healthy
// for long enough, no receiver, fallbacks included, is left with an open key: every
// trigger was followed by a resolve.
func (c *checker) checkResolved() {
	for _, r := range c.s.Receivers() {
		for _, key := range r.OpenKeys() {
			if r.refused(key, notify.ActionResolve) {
				continue // a resolve refused for good (400) is not retried, by design
			}
			c.fail(I2Resolve, key+" at "+r.name, c.whyOpen(r), "%s is still open at receiver %s after a quiet period", key, r.name)
		}
	}
}

// beforeReload notes what a reload must keep: the queued triggers and the paged
// incidents.
func (c *checker) beforeReload() {
	c.reloadOpen = map[string][]string{}
	for _, v := range c.s.vantages {
		if v.down {
			continue
		}
		for _, e := range v.outbox.Entries() {
			if e.Action == notify.ActionTrigger {
				c.reloadPages = append(c.reloadPages, pageDue{at: c.s.elapsed, key: e.DedupKey, receiver: c.s.receiverOf(e.Notifier)})
			}
		}
		for _, inc := range v.engine.OpenIncidents() {
			if inc.Triggered {
				c.reloadOpen[inc.Key] = inc.Targets
			}
		}
	}
	c.reloadSent = len(c.s.sent)
}

// afterReload (I6, second half): a reload resolves nothing that is still failing.
func (c *checker) afterReload() {
	c.s.settle()
	for _, sn := range c.s.sent[c.reloadSent:] {
		targets, ok := c.reloadOpen[sn.Key]
		if !ok || sn.Action != notify.ActionResolve {
			continue
		}
		var failing []string
		for _, t := range targets {
			if c.s.failingNow(t) {
				failing = append(failing, t)
			}
		}
		if len(failing) > 0 {
			c.fail(I6Reload, sn.Key, HintEditedJourney, "the reload resolved %s although %v still fail", sn.Key, failing)
		}
	}
}

// checkReloadPages (I6, first half): a reload loses no queued page: every trigger
// queued at a reload reaches its receiver afterwards, unless the receiver refused for
// good meanwhile, or the incident closed before the receiver heard of it and the key is
// not left open there (the outbox coalesces a queued trigger with its resolve: an
// incident that opened and closed unseen is not replayed).
func (c *checker) checkReloadPages() {
	for _, p := range c.reloadPages {
		r := c.s.receivers[p.receiver]
		if r == nil {
			continue
		}
		events := r.Events()
		got := slices.ContainsFunc(events, func(ev Event) bool {
			return ev.Recorded && ev.Key == p.key && ev.Action == notify.ActionTrigger && ev.At >= p.at
		})
		rejected := slices.ContainsFunc(r.Faults(), func(f faultWindow) bool { return f.Kind == FaultReject && f.To > p.at })
		unseen := !r.IsOpen(p.key) && c.resolvedSince(p.key, p.at)
		if !got && !rejected && !unseen {
			c.fail(I6Reload, p.key+" at "+p.receiver, HintRenamed, "the trigger of %s queued for %s at the reload at %s never arrived",
				p.key, p.receiver, fmtDur(p.at))
		}
	}
}

func (c *checker) afterRestart() { c.restarts = append(c.restarts, c.s.elapsed) }

func (c *checker) afterClockStep(d time.Duration) {
	c.steps = append(c.steps, c.s.elapsed)
	if d < 0 {
		c.backStep = c.s.elapsed
	}
}

// whyUnpaged guesses why an incident was not paged in time.
func (c *checker) whyUnpaged(inc alert.Incident, since time.Duration) string {
	switch {
	case inc.Silenced:
		return HintPartialSilence
	case c.after(c.steps, since-c.s.cfg.Alerting.GroupWait):
		return HintClockStep
	case c.s.monoOf(inc.SendAfter)-c.s.cfg.Alerting.GroupWait > since:
		return HintRewait // opened, or resumed, after the target fired
	case c.after(c.restarts, since-c.s.cfg.Alerting.GroupWait):
		return HintRestart
	}
	return ""
}

// recent names a restart or clock step since the virtual time from, if any.
func (c *checker) recent(from time.Duration) string {
	switch {
	case c.after(c.restarts, from):
		return HintRestart
	case c.after(c.steps, from):
		return HintClockStep
	}
	return ""
}

func (c *checker) after(times []time.Duration, from time.Duration) bool {
	return slices.ContainsFunc(times, func(at time.Duration) bool { return at >= from })
}

// whyOpen guesses why a receiver kept a key open: it is only ever a fallback.
func (c *checker) whyOpen(r *Receiver) string {
	for _, route := range c.s.platform.Routes {
		for _, n := range route.Notify {
			if c.s.receiverOf(n) == r.name {
				return ""
			}
		}
	}
	return HintFallback
}

// afterImpaired exempts held pages until the last vantage recovers.
func (c *checker) afterImpaired() {
	if !c.s.isImpaired() {
		c.exemptTill = c.s.elapsed
	}
}

func (s *Sim) isImpaired() bool {
	for _, v := range s.impaired {
		if v {
			return true
		}
	}
	return false
}

// failingNow reports whether the platform fails the target now (the script's truth).
func (s *Sim) failingNow(id string) bool {
	if !slices.ContainsFunc(s.targets, func(t *simTarget) bool { return t.id == id }) {
		return false // not in the config any more
	}
	st, _ := statusOf(s.faults, id, s.elapsed, s.intervalOf(id))
	return st == probe.StatusDown || (st == probe.StatusDegraded && s.cfg.Alerting.Degraded != "ignore")
}

func (s *Sim) intervalOf(id string) time.Duration {
	for _, t := range s.targets {
		if t.id == id {
			return t.interval
		}
	}
	return orDur(s.platform.Interval, 30*time.Second)
}

// receiverOf is the receiver a config notifier name points at ("" if none).
func (s *Sim) receiverOf(notifier string) string {
	for _, n := range s.platform.Notifiers {
		if n.Name == notifier {
			return n.Receiver
		}
	}
	return ""
}

// activeFor is the active (not absorbed) incident covering the target, if any.
func activeFor(incs []alert.Incident, id string) *alert.Incident {
	for i := range incs {
		if incs[i].AbsorbedInto == "" && slices.Contains(incs[i].Targets, id) {
			return &incs[i]
		}
	}
	return nil
}

func incidentState(inc alert.Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scope %s, triggered %v, silenced %v", inc.Scope, inc.Triggered, inc.Silenced)
	if inc.AbsorbedInto != "" {
		fmt.Fprintf(&b, ", absorbed into %s", inc.AbsorbedInto)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// resolvedSince reports whether an engine queued a resolve of key after at: the
// incident closed.
func (c *checker) resolvedSince(key string, at time.Duration) bool {
	return slices.ContainsFunc(c.s.sent, func(sn Sent) bool {
		return sn.Key == key && sn.Action == notify.ActionResolve && sn.At >= at
	})
}
