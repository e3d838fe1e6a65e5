package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/lograte"
	"github.com/picket-dev/picket/probe"
)

// Store is the persistence the engine needs (internal/store satisfies it).
type Store interface {
	Put(bucket, key string, v any) error
	Delete(bucket, key string) error
	ForEach(bucket string, fn func(key string, raw []byte) error) error
}

// Enqueuer takes notifications for durable delivery (notify.Outbox satisfies it).
type Enqueuer interface {
	Enqueue(d notify.Delivery) error
}

// Buckets of the store the engine uses.
const (
	BucketStates    = "states"
	BucketIncidents = "incidents" // open incidents
	BucketClosed    = "closed"    // resolved incidents, for timelines and export
	BucketSilences  = "silences"  // silences made at run time
)

// EngineOptions wire an Engine.
type EngineOptions struct {
	Config *config.Config
	Store  Store // nil: nothing persisted (one-shot checks without --state)
	Outbox Enqueuer
	Logger *slog.Logger
	// Clock is the time every decision takes (group waits, silences, takeovers); nil:
	// Now, else the real clock.
	Clock clock.Clock
	Now   func() time.Time // kept for tests that only set the time
	// GroupWait holds first triggers this long so that a wider scope can form; nil means
	// the config's alerting.group_wait.
	GroupWait *time.Duration
	// OnTransition, if set, is told every state change (metrics, the timeline).
	OnTransition func(Transition)
	// Peers, if set, makes this engine one vantage of a fleet (package alert/fleet):
	// targets fail by quorum of the vantages' shared verdicts, and one vantage sends each
	// page. nil: Solo.
	Peers Peers
	// Impaired starts the engine with platform pages held (see SetImpaired).
	Impaired bool
}

// Engine turns results into states, states into incidents, incidents into deliveries.
// All methods are safe for concurrent use.
type Engine struct {
	mu        sync.Mutex
	cfg       *config.Config
	targets   map[string]*config.Target
	states    map[string]*TargetState
	incidents *Incidents
	router    *Router
	silences  []Silence // from config, then run-time ones
	runtime   []Silence
	store     Store
	outbox    Enqueuer
	log       *slog.Logger
	now       func() time.Time
	mono      func() time.Duration // the clock's monotonic reading (clock.Elapsed)
	onTrans   func(Transition)
	impaired  bool
	peers     Peers           // Solo, or this vantage's part of a fleet
	saveLog   lograte.Limiter // failed saves: one line a minute
	sent      uint64          // notifications built, for their ids
	j         *journal        // the store's writes, committed in groups; nil without a store
	inbox     inbox           // results waiting for the lock (Observe)
}

// NewEngine restores states and open incidents from the store and starts from there:
// a restart neither re-pages an open incident nor forgets to resolve it.
func NewEngine(o EngineOptions) (*Engine, error) {
	e := &Engine{
		store: o.Store, outbox: o.Outbox, log: o.Logger, now: o.Now, onTrans: o.OnTransition,
		states: map[string]*TargetState{}, peers: o.Peers,
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.peers == nil {
		e.peers = Solo{}
	}
	if e.store != nil {
		e.j = newJournal(e.store, e.savesFailed)
	}
	e.impaired = o.Impaired // before the restored incidents are reconciled (and maybe sent)
	if o.Clock != nil {
		e.now = o.Clock.Now
	}
	if e.now == nil {
		e.now = time.Now
	}
	if o.Clock != nil {
		e.mono = clock.Elapsed(o.Clock)
	} else {
		e.mono = clock.Elapsed(clock.FromFunc(e.now))
	}
	restored, openings, err := e.restore()
	if err != nil {
		return nil, err
	}
	wait := o.Config.Alerting.GroupWait
	if o.GroupWait != nil {
		wait = *o.GroupWait
	}
	e.incidents = NewIncidents(wait, restored)
	e.incidents.mono = e.mono
	e.incidents.flapWindow = func(inc *Incident) time.Duration { return flapWindowOf(e.targets, inc.Scope, inc.Subject) }
	maps.Copy(e.incidents.lastOpening, openings)
	e.setConfig(o.Config)
	e.adoptQueued(e.now())
	// What was restored may disagree with itself after a crash (a state saved, its
	// incident not yet; a resolve accepted, the incident not yet archived): settle it now
	// rather than when some target next changes.
	e.reconcile(e.now())
	e.flush()
	return e, nil
}

// unlock releases the engine's lock, then waits until the writes made under it are
// committed (with those of every other caller waiting: the journal's group commit).
// Every method that may write ends with it.
func (e *Engine) unlock() {
	if e.j == nil {
		e.mu.Unlock()
		return
	}
	t := e.j.ticket()
	e.mu.Unlock()
	e.j.wait(t)
}

// flush commits every write made so far, before anything goes out that stands on them.
func (e *Engine) flush() {
	if e.j != nil {
		e.j.flush()
	}
}

// restore reads what the previous run saved. A damaged record (unreadable, or not the
// record its key names) is logged and skipped: one bad record must neither keep the
// daemon from starting nor stop the others from being restored, and one saved under
// the wrong key would be written back over another target's state.
func (e *Engine) restore() ([]*Incident, map[string]moment, error) {
	if e.store == nil {
		return nil, nil, nil
	}
	var incs []*Incident
	openings := map[string]moment{}
	err := errors.Join(
		restoreBucket(e, BucketOpenings, func(o *opening) string { return o.Key }, func(o *opening) { openings[o.Key] = wallMoment(o.At) }),
		restoreBucket(e, BucketStates, func(s *TargetState) string { return s.Target }, func(s *TargetState) { e.states[s.Target] = s }),
		restoreBucket(e, BucketIncidents, func(inc *Incident) string { return inc.Key }, func(inc *Incident) { incs = append(incs, inc) }),
		restoreBucket(e, BucketSilences, func(s *Silence) string { return s.ID }, func(s *Silence) { e.runtime = append(e.runtime, *s) }),
	)
	if err != nil {
		return nil, nil, err
	}
	return incs, openings, nil
}

// restoreBucket decodes every record of bucket and keeps those whose own key (keyOf)
// is the one they are stored under; it fails only when the store cannot be read.
func restoreBucket[T any](e *Engine, bucket string, keyOf func(*T) string, keep func(*T)) error {
	err := e.store.ForEach(bucket, func(key string, raw []byte) error {
		v := new(T)
		err := json.Unmarshal(raw, v)
		if err == nil && keyOf(v) != key {
			err = fmt.Errorf("expected the record of %q, got one of %q", key, keyOf(v))
		}
		if err != nil {
			e.log.Error("restore: skipping a damaged record", "bucket", bucket, "key", key, "err", err)
			return nil
		}
		keep(v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", bucket, err)
	}
	return nil
}

// adoptQueued settles restored incidents against what the outbox already holds: a
// crash between queueing a notification and saving the incident must not make the
// engine decide (and send) the same thing again after the restart.
func (e *Engine) adoptQueued(now time.Time) {
	lister, ok := e.outbox.(interface{ Entries() []notify.EntryInfo })
	if !ok {
		return
	}
	member := e.peers.Member(e.view())
	entries := lister.Entries()
	for _, inc := range e.incidents.Open() {
		switch {
		case queuedFor(entries, inc, notify.ActionResolve):
			inc.close(now, "its resolve was already queued before the restart")
			e.incidents.forget(inc.Key)
			e.saveClosed(inc)
			e.saveOpening(e.incidents.closedOpening(inc))
		case !inc.Triggered && queuedFor(entries, inc, notify.ActionTrigger):
			inc.Triggered = true
			inc.PagedBy, inc.PagedAt = member, now // in a fleet: this vantage's own page
			inc.note(now, "triggered", "its page was already queued before the restart")
			e.saveIncident(inc)
		}
	}
}

// queuedFor reports whether the outbox holds action for this very incident: same key
// and made for an incident opened at the same time. A resolve still queued for an
// earlier incident with the same key (it healed, broke again, and the paging service
// was down meanwhile) does not close the current one.
func queuedFor(entries []notify.EntryInfo, inc *Incident, action string) bool {
	for _, en := range entries {
		if en.DedupKey == inc.Key && en.Action == action && en.Opened.Equal(inc.Opened) {
			return true
		}
	}
	return false
}

// setConfig installs cfg. States of targets that are gone are dropped; a target whose
// journey was edited keeps its state (a fix of a failing journey's expectations must not
// resolve a real outage and page it again): the next results decide.
func (e *Engine) setConfig(cfg *config.Config) {
	e.cfg = cfg
	e.router = NewRouter(cfg)
	e.targets = make(map[string]*config.Target, len(cfg.Targets))
	for _, t := range cfg.Targets {
		e.targets[t.ID] = t
	}
	for id, s := range e.states {
		t := e.targets[id]
		switch {
		case t == nil:
			delete(e.states, id)
			e.deleteState(id)
		case s.Fingerprint != t.Fingerprint:
			s.Fingerprint = t.Fingerprint
			e.saveState(s)
		}
	}
	for _, t := range cfg.Targets {
		if e.states[t.ID] == nil {
			e.states[t.ID] = &TargetState{Target: t.ID, Product: t.Product, Journey: t.Journey, Region: t.Region, State: StateOK, Fingerprint: t.Fingerprint}
		}
	}
	e.silences = e.silences[:0]
	for _, s := range cfg.Silences {
		e.silences = append(e.silences, Silence{ID: "config", Comment: s.Comment, Start: s.Start, End: s.End, Match: s.Match})
	}
}

// Reload switches to a new config, keeping what did not change, and re-evaluates.
func (e *Engine) Reload(cfg *config.Config) {
	e.mu.Lock()
	defer e.unlock()
	e.setConfig(cfg)
	e.reconcile(e.now())
}

// Observe takes one result. It returns the transition when the target's state changed.
//
// Results that arrive while the engine is busy are taken together: the caller that
// gets the lock applies every result waiting and reconciles once, as ObserveAll does.
// One at a time, 2,000 targets failing at once cost 2,000 reconciles, each encoding the
// incident they widen; together they cost a few (BenchmarkFailingAtOnce: 62.9 s before
// the group commit and this, 0.34 s after).
func (e *Engine) Observe(r probe.Result) (Transition, bool) {
	o := &observation{r: r}
	e.inbox.mu.Lock()
	e.inbox.waiting = append(e.inbox.waiting, o)
	e.inbox.mu.Unlock()
	e.mu.Lock()
	defer e.unlock()
	if !o.done { // (else a caller before took it with its own)
		e.observeWaiting()
	}
	return o.tr, o.changed
}

// observation is one Observe call's result, waiting for the engine, and its answer.
type observation struct {
	r       probe.Result
	tr      Transition
	changed bool
	done    bool // set under e.mu
}

// inbox holds the results of Observe calls waiting for the engine's lock.
type inbox struct {
	mu      sync.Mutex
	waiting []*observation
}

// observeWaiting (under e.mu) applies every waiting result and reconciles once.
func (e *Engine) observeWaiting() {
	e.inbox.mu.Lock()
	batch := e.inbox.waiting
	e.inbox.waiting = nil
	e.inbox.mu.Unlock()
	moved := false
	for _, o := range batch {
		var m bool
		o.tr, o.changed, m = e.apply1(o.r)
		o.done, moved = true, moved || m
	}
	if moved {
		e.reconcile(e.now())
	}
}

// ObserveAll takes the results of one round (a `check --page` run) and reconciles once,
// so that targets failing together are classified together.
func (e *Engine) ObserveAll(results []probe.Result) []Transition {
	e.mu.Lock()
	defer e.unlock()
	var trs []Transition
	moved := false
	for _, r := range results {
		tr, changed, m := e.apply1(r)
		if changed {
			trs = append(trs, tr)
		}
		moved = moved || m
	}
	if moved {
		e.reconcile(e.now())
	}
	return trs
}

// apply1 moves one target's state; moved reports whether incidents need a look.
func (e *Engine) apply1(r probe.Result) (tr Transition, changed, moved bool) {
	t := e.targets[r.Target]
	s := e.states[r.Target]
	if t == nil || s == nil {
		return Transition{}, false, false // a result of a target removed by a reload
	}
	before := *s
	tr, changed = s.applyAt(t, &r, e.cfg.Alerting.Degraded, e.moment())
	certMoved, certChanged := s.applyCert(&r)
	if s.LastScreenshot != before.LastScreenshot && s.LastScreenshot != "" {
		e.incidents.noteScreenshot(r.Target, s.LastScreenshot)
	}
	// Saved on change only, and on every run while the failure window holds a failure
	// (a restart must judge the window and flapping as the run before it would have).
	if s.State != before.State || s.Condition != before.Condition || s.Failures != before.Failures ||
		s.Successes != before.Successes || certChanged || before.windowFailures(t.FailureWindow.Runs) > 0 {
		e.saveState(s)
	}
	if changed {
		e.log.Info("target state changed", "target", tr.Target, "from", tr.From, "to", tr.To, "reason", tr.Reason)
		if e.onTrans != nil {
			e.onTrans(tr)
		}
	}
	return tr, changed, changed || s.Condition != before.Condition || certMoved
}

// ScopeKnown is told that the confirmation runs asked for these targets have all
// reported (probe.Confirmer): their thresholds are met or not, and the targets around
// the failing ones have run, so the scope is what it will be for now. A held first
// page of a region, product or global incident that covers any of them goes out at
// once rather than at the end of its group wait, which is there to let the scope form.
// One target's incident still waits it out: the runs around it found nothing else
// failing, and on a path that loses a run now and then the wait is what lets two
// unlucky targets share one page (sent at once, a 10 %-loss path had twice the pages).
// In a fleet the group wait stays: within it the vantages settle who sends (two shards
// of one vantage both paging at once resolved the page twice).
func (e *Engine) ScopeKnown(targets []string) {
	if _, solo := e.peers.(Solo); !solo {
		return
	}
	ran := make(map[string]bool, len(targets))
	for _, id := range targets {
		ran[id] = true
	}
	e.mu.Lock()
	defer e.unlock()
	now := e.now()
	for _, inc := range e.incidents.Open() {
		if inc.Triggered || inc.AbsorbedInto != "" || Width(inc.Scope) == 0 || !now.Before(inc.SendAfter) ||
			!slices.ContainsFunc(inc.Targets, func(id string) bool { return ran[id] }) {
			continue
		}
		inc.SendAfter = now
		inc.note(now, "confirmed", fmt.Sprintf("scope confirmed by the runs of %d targets; the first page goes out without waiting out the group wait", len(targets)))
		e.saveIncident(inc)
	}
	e.sendDue(now)
}

// moment is now, with the clock's monotonic reading.
func (e *Engine) moment() moment { return moment{wall: e.now(), mono: e.mono(), ok: true} }

// Tick sends triggers whose group wait has passed and re-checks silences. The daemon
// calls it every second or so; Observe does not wait for it.
func (e *Engine) Tick() {
	e.mu.Lock()
	defer e.unlock()
	if e.peers.Moved() || e.incidents.flapHoldOver(e.moment()) {
		e.reconcile(e.now()) // sends what is due too
	} else {
		e.sendDue(e.now())
	}
	e.sendComms(e.now())
}

// reconcile recomputes scope and incidents from the firing states and tells notifiers.
func (e *Engine) reconcile(now time.Time) {
	var down, degraded []Failing
	if hold := e.peers.Sync(e.view()); hold {
		e.sendDue(now) // silences, pending work; nothing new while holding
		return
	}
	for id, s := range e.states {
		condition := e.condition(id, s)
		if condition == "" {
			continue
		}
		t := e.targets[id]
		f := Failing{Target: id, Product: t.Product, Region: t.Region}
		if condition == ConditionDegraded && e.cfg.Alerting.Degraded != "page" {
			degraded = append(degraded, f)
		} else {
			down = append(down, f)
		}
	}
	sort.Slice(down, func(i, j int) bool { return down[i].Target < down[j].Target })
	groups := append(Classify(e.cfg.BlastRadius, down), DegradedGroups(degraded)...)
	groups = append(groups, CertGroups(e.certWarned())...)
	changes := e.incidents.Reconcile(now, groups, e.priorities())
	e.noteReasons()
	for _, c := range changes {
		e.apply(now, c)
	}
	for _, inc := range e.incidents.takeChanged() {
		e.saveIncident(inc) // (applied ones again: cheap, and it keeps the rule simple)
	}
	e.sendDue(now)
}

// noteReasons keeps the failure reasons (and screenshots) of the targets each open incident covers
// (before apply archives the ones that closed), so a closed incident still says why.
func (e *Engine) noteReasons() {
	for _, inc := range e.incidents.Open() {
		for _, id := range inc.Targets {
			if s := e.states[id]; s != nil {
				inc.noteReason(id, s.LastError)
				inc.noteScreenshot(id, s.LastScreenshot)
			}
		}
	}
}

// condition is what alerting goes by: this vantage's state alone, or in a fleet the
// quorum of the vantages' verdicts.
func (e *Engine) condition(id string, s *TargetState) string { return e.peers.Condition(id, s) }

func (e *Engine) priorities() map[string]int {
	p := make(map[string]int, len(e.cfg.Products))
	for _, pr := range e.cfg.Products {
		p[pr.Name] = pr.Priority
	}
	return p
}

// apply tells notifiers about one change, as far as the incident was already paged.
func (e *Engine) apply(now time.Time, c Change) {
	inc := c.Incident
	e.log.Info("incident "+c.Kind, "key", inc.Key, "scope", inc.Scope, "targets", len(inc.Targets))
	switch c.Kind {
	case ChangeOpened:
		// The trigger goes out from sendDue once the group wait has passed.
	case ChangeUpdated:
		switch {
		case !inc.Triggered:
		case e.impaired:
			// Held like a first page: an impaired vantage's word that the outage grew says
			// more about its own network. Sent on release if it still holds (sendHeldUpdates).
			inc.HeldUpdate = true
		case e.peers.FirstSender(e.view(), inc.Key):
			e.sendWidened(now, inc)
		}
	case ChangeResumed:
		if inc.Triggered && inc.ToldPartOf != "" && e.peers.FirstSender(e.view(), inc.Key) {
			e.send(now, inc, notify.ActionTrigger, "no longer part of "+inc.ToldPartOf+"; still failing here")
			inc.ToldPartOf = ""
		}
	case ChangeAbsorbed:
		if !inc.Triggered {
			inc.note(now, "released", "absorbed into "+inc.AbsorbedInto+" before it was paged; not sent")
		}
		// A paged incident is told once the wider one is paged too (sendDue).
	case ChangeResolved:
		if inc.Triggered {
			e.peers.Resolve(e.view(), now, inc)
		} else {
			inc.note(now, "released", "recovered before it was paged; not sent")
		}
		e.commsResolved(now, inc)
		e.saveClosed(inc)
		e.saveOpening(e.incidents.closedOpening(inc))
		return
	}
	e.saveIncident(inc)
}

// sendDue triggers held incidents whose group wait is over, unless silenced or absorbed.
func (e *Engine) sendDue(now time.Time) {
	for _, inc := range e.incidents.Open() {
		e.incidents.clampWait(now, inc)
		if inc.Triggered || inc.AbsorbedInto != "" || now.Before(inc.SendAfter) {
			continue
		}
		if s := silencedBy(e.allSilences(), inc, now); s != nil {
			if !inc.Silenced {
				inc.Silenced = true
				inc.note(now, "silenced", "silenced until "+s.End.UTC().Format(time.RFC3339)+": "+s.Comment)
				e.saveIncident(inc)
			}
			continue
		}
		if e.impaired {
			continue // held, not dropped: sent when the self-check recovers
		}
		inc.Silenced = false
		send, adopted := e.peers.MayTrigger(e.view(), now, inc)
		if adopted {
			inc.Triggered = true
			e.incidents.notePaged(inc, e.moment())
			e.saveIncident(inc)
		}
		if !send {
			continue
		}
		if !e.sendRecorded(now, inc, notify.ActionTrigger, e.peers.Note(e.view())) {
			continue // nothing could be queued: the next tick tries again
		}
		inc.Triggered = true
		e.incidents.notePaged(inc, e.moment())
		e.saveIncident(inc)
	}
	e.sendHeldUpdates(now)
	e.tellAbsorbed(now)
	e.peers.SendPending(e.view(), now)
}

// sendWidened tells the on-call that a paged incident grew.
func (e *Engine) sendWidened(now time.Time, inc *Incident) {
	inc.HeldUpdate = false
	e.send(now, inc, notify.ActionTrigger, "widened: regions "+joinNames(inc.Regions)+"; products "+joinNames(inc.Products))
}

// sendHeldUpdates sends the widenings held while this vantage was impaired.
func (e *Engine) sendHeldUpdates(now time.Time) {
	if e.impaired {
		return
	}
	for _, inc := range e.incidents.Open() {
		if inc.HeldUpdate && inc.Triggered && inc.AbsorbedInto == "" && e.peers.FirstSender(e.view(), inc.Key) {
			e.sendWidened(now, inc)
			e.saveIncident(inc)
		}
	}
}

// tellAbsorbed updates paged incidents that a wider, paged incident now explains, so
// the team paged first learns at once that the trouble is wider than theirs.
func (e *Engine) tellAbsorbed(now time.Time) {
	for _, inc := range e.incidents.Open() {
		if !inc.Triggered || inc.AbsorbedInto == "" || inc.ToldPartOf == inc.AbsorbedInto {
			continue
		}
		wider := e.incidents.Get(inc.AbsorbedInto)
		if wider == nil || !wider.Triggered || e.peers.Holding() {
			continue // (held: told once the vantage is no longer on its own)
		}
		if e.peers.FirstSender(e.view(), inc.Key) {
			e.send(now, inc, notify.ActionTrigger, "now part of "+scopeLabel(wider))
		}
		inc.ToldPartOf = inc.AbsorbedInto
		e.saveIncident(inc)
	}
}

// send hands one notification per matching route to the outbox.
// It reports false only when there was something to queue and none of it could be
// written (the store failed), so that a trigger is tried again rather than lost.
func (e *Engine) send(now time.Time, inc *Incident, action, note string) bool {
	if action == notify.ActionTrigger {
		inc.ToldAt = now // a reminder waits comms.renotify from here
	}
	if action == notify.ActionTrigger && (note == "" || note == e.peers.Note(e.view())) {
		inc.note(now, "triggered", strings.TrimSuffix("page sent to the outbox; "+note, "; "))
	} else {
		inc.note(now, action, note)
	}
	if note == "resolved" {
		note = ""
	}
	e.sent++
	n := buildNotification(e.cfg, inc, action, note, e.states, now, e.sent)
	if d := e.peers.Details(e.view(), inc); d != nil {
		n.Details["fleet"] = d
	}
	deliveries := e.router.Deliveries(inc, e.cfg.Alerting.Degraded)
	if len(deliveries) == 0 {
		e.unrouted(now, inc)
		return true
	}
	if e.outbox == nil {
		return true
	}
	e.flush() // what the page stands on is on disk before the page is queued
	queued := 0
	for _, d := range deliveries {
		d.Notification = n
		if err := e.outbox.Enqueue(d); err != nil {
			e.log.Error("could not queue notification", "key", inc.Key, "action", action, "err", err)
			inc.note(now, "failed", "could not queue: "+err.Error())
			continue
		}
		queued++
	}
	return queued > 0
}

// Note adds a line to an open incident's timeline (delivery results from the outbox).
func (e *Engine) Note(key, kind, text string) {
	e.mu.Lock()
	defer e.unlock()
	e.noteOn(key, kind, text)
}

// noteOn is Note with the lock held.
func (e *Engine) noteOn(key, kind, text string) {
	if inc := e.incidents.Get(key); inc != nil {
		inc.note(e.now(), kind, text)
		e.saveIncident(inc)
	}
}

// Superseded reports why a queued resolve is moot: this vantage already has a newer
// incident open with the same key (it healed and broke again). Alone that cannot
// happen out of order (a key's notifications are sent in order); in a fleet another
// vantage may have paged the new incident already, and a resolve of the old one that
// reaches the paging service late (a slow receiver confirms nothing) would close it.
func (e *Engine) Superseded(n notify.Notification) string {
	if n.Action != notify.ActionResolve || n.Opened.IsZero() {
		return ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if inc := e.incidents.Get(n.DedupKey); inc != nil && inc.Opened.After(n.Opened) {
		return "a newer incident with this key is open (opened " + inc.Opened.UTC().Format(time.RFC3339) + ")"
	}
	return ""
}

// NoteDelivery records a delivery attempt on the incident's timeline (the outbox's
// OnResult hook): accepted, rejected, or retrying with the reason.
func (e *Engine) NoteDelivery(r notify.AttemptResult) {
	what := r.Action + " via " + r.Notifier
	if IsComms(r.NotificationID) {
		what = "comms message via " + r.Notifier // an update due, an update, a reminder: not a page
	}
	if r.Fallback {
		what += " (fallback)"
	}
	e.mu.Lock()
	defer e.unlock()
	switch {
	case r.OK:
		if r.Action == notify.ActionTrigger && !IsComms(r.NotificationID) {
			e.saveOpening(e.incidents.noteAccepted(r.DedupKey, e.moment()))
		}
		e.noteOn(r.DedupKey, "accepted", what+" accepted")
	case r.Permanent:
		e.noteOn(r.DedupKey, "rejected", fmt.Sprintf("%s rejected: %v", what, r.Err))
	default:
		e.noteOn(r.DedupKey, "retrying", fmt.Sprintf("%s failed (attempt %d): %v", what, r.Attempt, r.Err))
	}
}

// NoteDrop records on the incident's timeline a notification the outbox dropped
// unsent (the outbox's OnDrop hook): made moot by a later one of its key, or shed by a
// full outbox.
func (e *Engine) NoteDrop(d notify.Dropped) {
	what := d.Action + " via " + d.Notifier
	if d.Fallback {
		what += " (fallback)"
	}
	why := "a later notification of the key made it moot"
	if d.Reason == notify.DropShed {
		why = "the outbox was full and it was among the least important"
	}
	e.Note(d.DedupKey, d.Reason, fmt.Sprintf("%s dropped unsent: %s", what, why))
}

func (e *Engine) saveState(s *TargetState) {
	if e.j != nil {
		e.j.put("save target state", BucketStates, s.Target, s)
	}
}

func (e *Engine) deleteState(id string) {
	if e.j != nil {
		e.j.del("delete target state", BucketStates, id)
	}
}

func (e *Engine) saveIncident(inc *Incident) {
	if e.j != nil {
		e.j.put("save incident", BucketIncidents, inc.Key, inc)
	}
}

func (e *Engine) saveClosed(inc *Incident) {
	if e.j == nil {
		return
	}
	key := inc.Opened.UTC().Format("20060102T150405.000000000Z") + " " + inc.Key
	e.j.put("archive incident", BucketClosed, key, inc)
	e.j.del("archive incident", BucketIncidents, inc.Key)
}

// saveOpening stores a key's latest opening (nil: nothing to store).
func (e *Engine) saveOpening(o *opening) {
	if e.j != nil && o != nil {
		e.j.put("save opening", BucketOpenings, o.Key, o)
	}
}

// saveFailed logs a save the store refused, at most once a minute with a count: on a
// full disk every result and tick fails to save (measured: over ten ERROR lines a
// second), and alerting and paging go on from memory either way.
func (e *Engine) saveFailed(what, key string, err error) { e.savesFailed(what, key, 1, err) }

// savesFailed is saveFailed for n saves that failed together (one commit).
func (e *Engine) savesFailed(what, key string, n int, err error) {
	if ok, held := e.saveLog.Allow(e.now()); ok {
		e.log.Error("could not "+what+"; alerting and paging go on from memory (logged at most once a minute)",
			"key", key, "saves", n, "failed_saves", held+1, "err", err)
	}
}

// PersistAgain writes every target state, open incident and run-time silence to the
// store again: for when the store had to start a fresh file, which holds none of them
// (closed incidents were only in the file, and stay lost).
func (e *Engine) PersistAgain() {
	e.mu.Lock()
	defer e.unlock()
	if e.store == nil {
		return
	}
	for _, s := range e.states {
		e.saveState(s)
	}
	for _, inc := range e.incidents.Open() {
		e.saveIncident(inc)
	}
	for _, s := range e.runtime {
		if err := e.store.Put(BucketSilences, s.ID, s); err != nil {
			e.saveFailed("save silence", s.ID, err)
		}
	}
}

// SetImpaired holds (true) or releases (false) platform pages; see the self-check.
func (e *Engine) SetImpaired(impaired bool) {
	e.mu.Lock()
	defer e.unlock()
	e.impaired = impaired
	// In a fleet this withdraws (or gives again) this vantage's verdicts; alone it
	// releases the held pages.
	e.reconcile(e.now())
}

// ResolveQuiet sends a resolve for every incident key that is not open: the one-shot
// `check --page` without a state directory cannot know what it paged before, and
// PagerDuty accepts a resolve for an unknown key, so this is what makes cron runs close
// what they opened.
func (e *Engine) ResolveQuiet() {
	e.mu.Lock()
	defer e.unlock()
	now := e.now()
	var candidates []*Incident
	add := func(scope, subject string, products, regions []string, condition string) {
		key := DedupKey(scope, subject)
		if condition == ConditionDegraded {
			key = "picket/degraded/" + subject
		}
		if condition == ConditionCertExpiry {
			key = CertKey(subject)
		}
		if e.incidents.Get(key) != nil {
			return
		}
		candidates = append(candidates, &Incident{Key: key, Scope: scope, Subject: subject, Condition: condition,
			Products: products, Regions: regions, Priority: e.bestPriority(products), Triggered: true})
	}
	var allProducts, allRegions []string
	for _, p := range e.cfg.Products {
		allProducts = append(allProducts, p.Name)
		add(ScopeProduct, p.Name, []string{p.Name}, p.Regions, ConditionDown)
	}
	for _, r := range e.cfg.Regions {
		allRegions = append(allRegions, r.Name)
		add(ScopeRegion, r.Name, allProducts, []string{r.Name}, ConditionDown)
	}
	add(ScopeGlobal, "", allProducts, allRegions, ConditionDown)
	for _, t := range e.cfg.Targets {
		add(ScopeTarget, t.ID, []string{t.Product}, []string{t.Region}, ConditionDown)
		if e.cfg.Alerting.Degraded != "ignore" {
			add(ScopeTarget, t.ID, []string{t.Product}, []string{t.Region}, ConditionDegraded)
			if checksCert(t) {
				add(ScopeTarget, t.ID, []string{t.Product}, []string{t.Region}, ConditionCertExpiry)
			}
		}
	}
	e.flush()
	for _, inc := range candidates {
		e.sent++
		n := buildNotification(e.cfg, inc, "resolve", "", e.states, now, e.sent)
		n.Summary = inc.Key + " resolved (one-shot check: not failing now)"
		for _, d := range e.router.Deliveries(inc, e.cfg.Alerting.Degraded) {
			d.Notification = n
			d.Fallback = nil // a resolve of something maybe never opened is not worth a fallback
			if e.outbox != nil {
				if err := e.outbox.Enqueue(d); err != nil {
					e.log.Error("could not queue resolve", "key", inc.Key, "err", err)
				}
			}
		}
	}
}

func (e *Engine) bestPriority(products []string) int {
	best := 0
	for _, p := range e.cfg.Products {
		for _, name := range products {
			if p.Name == name && (best == 0 || p.Priority < best) {
				best = p.Priority
			}
		}
	}
	return best
}
