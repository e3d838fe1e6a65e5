package alert

import (
	"slices"
	"sort"
	"time"
)

// Incident is one open (or just closed) problem of one scope.
type Incident struct {
	Key          string    `json:"key"` // the dedup key
	Scope        string    `json:"scope"`
	Subject      string    `json:"subject"`
	Condition    string    `json:"condition"` // down | degraded
	Targets      []string  `json:"targets"`   // failing targets it covers now
	Regions      []string  `json:"regions"`
	Products     []string  `json:"products"`
	Priority     int       `json:"priority"`
	Opened       time.Time `json:"opened"`
	Updated      time.Time `json:"updated"`
	Resolved     time.Time `json:"resolved,omitzero"`
	AbsorbedInto string    `json:"absorbed_into,omitempty"`
	// SendAfter holds the first trigger for group_wait, so that targets failing together
	// are paged as one wider incident, not one after another.
	SendAfter time.Time `json:"send_after,omitzero"`
	Triggered bool      `json:"triggered"` // a trigger was handed to the outbox
	// PagedBy is the vantage that sent the trigger, in a fleet.
	PagedBy string    `json:"paged_by,omitempty"`
	PagedAt time.Time `json:"paged_at,omitzero"`
	// FirstSender is the vantage first seen sending this incident's page, in a fleet.
	FirstSender string `json:"first_sender,omitempty"`
	// ToldPartOf is the wider incident the on-call was told this one belongs to; the
	// notice waits until the wider incident itself has been paged.
	ToldPartOf string `json:"told_part_of,omitempty"`
	Silenced   bool   `json:"silenced"`
	// HeldUpdate: it widened while this vantage was impaired; the update waits.
	HeldUpdate bool    `json:"held_update,omitempty"`
	Timeline   []Event `json:"timeline"`
	// The widest the incident ever was. Targets, Regions and Products shrink as targets
	// recover; when it closes they are set to these, so a closed incident (its export,
	// its card) says how wide the outage was, not what recovered last.
	PeakTargets  []string `json:"peak_targets,omitempty"`
	PeakRegions  []string `json:"peak_regions,omitempty"`
	PeakProducts []string `json:"peak_products,omitempty"`
	// Reasons holds each covered target's last failure reason (at most maxReasons).
	Reasons map[string]string `json:"reasons,omitempty"`
	// Screenshots holds, per covered target, the file name of its last failure's
	// screenshot (browser steps; at most maxReasons).
	Screenshots map[string]string `json:"screenshots,omitempty"`
	// OpenAtReceiver is when a receiver first accepted its trigger (flaphold.go).
	OpenAtReceiver time.Time `json:"open_at_receiver,omitzero"`
	// FlapUntil: its key was paged less than a flap window before it; once its targets
	// recover it stays open, covering nothing, until then (flaphold.go).
	FlapUntil time.Time `json:"flap_until,omitzero"`
	// Updates are the humans' words for customers, oldest first (updates.go).
	Updates []Update `json:"updates,omitempty"`
	// ToldAt is when its notifiers were last told (a trigger, a widening, a reminder);
	// CommsDueAt when the comms channel was last told an update is due (comms.go).
	ToldAt     time.Time `json:"told_at,omitzero"`
	CommsDueAt time.Time `json:"comms_due_at,omitzero"`
	// The same times with this process's monotonic reading, when set by this process.
	openAtReceiver, flapUntil, paged moment
}

// maxReasons bounds Reasons: a global outage of 10,000 targets keeps 50 examples.
const maxReasons = 50

// close resolves the incident; what it covered becomes its peak extent.
func (i *Incident) close(now time.Time, why string) {
	i.Resolved, i.Updated = now, now
	if len(i.PeakTargets) > 0 {
		i.Targets, i.Regions, i.Products = slices.Clone(i.PeakTargets), slices.Clone(i.PeakRegions), slices.Clone(i.PeakProducts)
	}
	i.note(now, "resolved", why)
}

// widenPeak adds what the incident covers now to its peak extent.
func (i *Incident) widenPeak() {
	i.PeakTargets = union(i.PeakTargets, i.Targets)
	i.PeakRegions = union(i.PeakRegions, i.Regions)
	i.PeakProducts = union(i.PeakProducts, i.Products)
}

// noteReason keeps a target's failure reason, up to maxReasons targets.
func (i *Incident) noteReason(target, reason string) {
	if reason == "" {
		return
	}
	if _, ok := i.Reasons[target]; !ok && len(i.Reasons) >= maxReasons {
		return
	}
	if i.Reasons == nil {
		i.Reasons = map[string]string{}
	}
	i.Reasons[target] = reason
}

// noteScreenshot keeps a target's latest failure screenshot, up to maxReasons targets.
func (i *Incident) noteScreenshot(target, name string) {
	if name == "" || (i.Screenshots[target] == "" && len(i.Screenshots) >= maxReasons) {
		return
	}
	if i.Screenshots == nil {
		i.Screenshots = map[string]string{}
	}
	i.Screenshots[target] = name
}

// noteScreenshot puts a covered target's new failure screenshot on every open incident
// that covers it at once (reasons wait for the next reconcile; a screenshot's file may
// be pruned meanwhile, so the incident keeps the newest).
func (m *Incidents) noteScreenshot(target, name string) {
	for _, inc := range m.Open() {
		if slices.Contains(inc.Targets, target) {
			inc.noteScreenshot(target, name)
		}
	}
}

// Open reports whether the incident is still open.
func (i *Incident) Open() bool { return i.Resolved.IsZero() }

// Event is one line of an incident's timeline.
type Event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // opened, triggered, accepted, absorbed, released, widened, narrowed, recovered, resolved, silenced, failed
	Text string    `json:"text"`
}

func (i *Incident) note(at time.Time, kind, text string) {
	i.Timeline = append(i.Timeline, Event{At: at, Kind: kind, Text: text})
	if len(i.Timeline) > maxTimeline {
		// Keep the opening and the most recent history; a flapping target must not grow
		// the record without bound.
		i.Timeline = append(i.Timeline[:1], i.Timeline[len(i.Timeline)-maxTimeline+1:]...)
	}
}

const maxTimeline = 200

// Change kinds from Reconcile.
const (
	ChangeOpened   = "opened"   // a new incident; its trigger waits for SendAfter
	ChangeUpdated  = "updated"  // new regions or products joined
	ChangeAbsorbed = "absorbed" // now explained by a wider incident
	ChangeResumed  = "resumed"  // no longer absorbed
	ChangeResolved = "resolved"
)

// Change is one thing Reconcile did to an incident.
type Change struct {
	Kind     string
	Incident *Incident
}

// Incidents keeps the open incidents and reconciles them with the failing matrix.
// It is not safe for concurrent use; the engine serialises calls.
type Incidents struct {
	open      map[string]*Incident
	groupWait time.Duration
	// changed holds the open incidents whose targets changed without a Change being
	// reported (an outage that shrinks, or grows within its regions and products): the
	// engine saves them too, or a restart would restore stale targets.
	changed map[string]bool
	// During one Reconcile, as it was when it began: the widest paged incident covering
	// each target, and the earliest first page each target was held for.
	pagedWidth map[string]int
	heldUntil  map[string]time.Time
	// lastOpening is, per key, when its latest closed incident was open at a receiver
	// (flaphold.go); flapWindow is an incident's flap window; mono reads the clock's
	// monotonic time. Set by the engine.
	lastOpening map[string]moment
	flapWindow  func(*Incident) time.Duration
	mono        func() time.Duration
}

// moment is now with the monotonic reading, when the engine gave one.
func (m *Incidents) moment(now time.Time) moment {
	if m.mono == nil {
		return wallMoment(now)
	}
	return moment{wall: now, mono: m.mono(), ok: true}
}

// snapshotCoverage records, before groups move targets between incidents, how each
// target is covered: paged (and how wide) or held (until when), per condition.
func (m *Incidents) snapshotCoverage() {
	m.pagedWidth, m.heldUntil = map[string]int{}, map[string]time.Time{}
	for _, inc := range m.open {
		for _, t := range inc.Targets {
			key := inc.Condition + " " + t
			switch w, ok := m.pagedWidth[key]; {
			case inc.Triggered && (!ok || Width(inc.Scope) > w):
				m.pagedWidth[key] = Width(inc.Scope)
			case !inc.Triggered && (m.heldUntil[key].IsZero() || inc.SendAfter.Before(m.heldUntil[key])):
				m.heldUntil[key] = inc.SendAfter
			}
		}
	}
}

// keepPaged sends at once the first page of a new incident that took over a target no
// paged incident covers any more (a GLOBAL that narrowed to a region, a target that
// moved from a paged region to a new product incident): such a target was paged, and
// must not go unpaged for another group_wait. While a paged incident still covers it
// (absorbed into the new, wider one), the wider page waits its group_wait as usual.
func (m *Incidents) keepPaged(now time.Time, opened []*Incident) {
	coveredByPaged := map[string]bool{}
	for _, inc := range m.open {
		if inc.Triggered {
			for _, t := range inc.Targets {
				coveredByPaged[inc.Condition+" "+t] = true
			}
		}
	}
	for _, inc := range opened {
		for _, t := range inc.Targets {
			key := inc.Condition + " " + t
			if _, was := m.pagedWidth[key]; was && !coveredByPaged[key] {
				inc.SendAfter = now
				break
			}
		}
	}
}

// NewIncidents starts with the given open incidents (restored from the store).
func NewIncidents(groupWait time.Duration, restored []*Incident) *Incidents {
	m := &Incidents{open: map[string]*Incident{}, groupWait: groupWait, changed: map[string]bool{}, lastOpening: map[string]moment{},
		flapWindow: func(*Incident) time.Duration { return 0 }}
	for _, inc := range restored {
		if inc.Open() {
			m.open[inc.Key] = inc
		}
	}
	return m
}

// Open returns the open incidents, widest first.
func (m *Incidents) Open() []*Incident {
	out := make([]*Incident, 0, len(m.open))
	for _, inc := range m.open {
		out = append(out, inc)
	}
	sortIncidents(out)
	return out
}

// clampWait keeps a held page's wait at most group_wait from now. SendAfter is a wall
// time (persisted); after the wall clock stepped back (while running with a clock that
// has no monotonic reading, or across a restart) it could hold a page for as long as
// the step. A forward step only sends it sooner.
func (m *Incidents) clampWait(now time.Time, inc *Incident) {
	if limit := now.Add(m.groupWait); !inc.Triggered && inc.SendAfter.After(limit) {
		inc.note(now, "clock", "the clock stepped back; the page waits group_wait from now, not until "+inc.SendAfter.UTC().Format(time.RFC3339))
		inc.SendAfter = limit
	}
}

// takeChanged returns the open incidents whose targets changed since the last call.
func (m *Incidents) takeChanged() []*Incident {
	var out []*Incident
	for key := range m.changed {
		if inc := m.open[key]; inc != nil {
			out = append(out, inc)
		}
	}
	clear(m.changed)
	sortIncidents(out)
	return out
}

// forget drops an open incident that was settled outside Reconcile (after a restart).
func (m *Incidents) forget(key string) { delete(m.open, key) }

// Get returns an open incident by key.
func (m *Incidents) Get(key string) *Incident { return m.open[key] }

func sortIncidents(incs []*Incident) {
	sort.Slice(incs, func(i, j int) bool {
		if wi, wj := Width(incs[i].Scope), Width(incs[j].Scope); wi != wj {
			return wi > wj
		}
		return incs[i].Key < incs[j].Key
	})
}

// Reconcile brings the open incidents in line with groups (from Classify, widest first)
// so that every failing target is covered by exactly one active incident:
//   - a group whose incident is open keeps it;
//   - a new group that an open, wider incident already explains (the outage is shrinking)
//     opens nothing: the wider incident keeps covering it, so recovery never pages;
//   - any other new group opens an incident;
//   - an open incident whose targets are all covered by a wider one is absorbed (it stays
//     open, is told so, and is resolved when its targets recover);
//   - an open incident with no failing target left is resolved, exactly once.
func (m *Incidents) Reconcile(now time.Time, groups []Group, priorities map[string]int) []Change {
	m.snapshotCoverage()                // before groups move targets between incidents
	groups, apart := splitApart(groups) // certificate warnings: cert.go, on their own
	changes := m.reconcileApart(now, apart, priorities)
	covered := map[string]*Incident{} // target -> the active incident covering it
	active := map[string]bool{}
	failing := map[string]bool{}
	for _, g := range groups {
		for _, t := range g.Targets {
			failing[t] = true
		}
	}
	var fresh []Group
	for _, g := range groups {
		inc := m.open[g.Key()]
		if inc == nil || m.stillExplained(inc, g) {
			fresh = append(fresh, g)
			continue
		}
		active[inc.Key] = true
		if inc.AbsorbedInto != "" {
			inc.note(now, "resumed", "no longer part of "+inc.AbsorbedInto)
			inc.AbsorbedInto = ""
			if !inc.Triggered {
				inc.SendAfter = m.firstPageAt(now, g) // a fresh look before its first page
			}
			changes = append(changes, Change{ChangeResumed, inc})
		}
		if m.setTargets(now, inc, g.Targets, priorities) {
			changes = append(changes, Change{ChangeUpdated, inc})
		}
		for _, t := range g.Targets {
			covered[t] = inc
		}
	}
	explained := map[*Incident][]string{}
	for _, g := range fresh {
		if x := m.explainer(g); x != nil {
			explained[x] = append(explained[x], g.Targets...)
			for _, t := range g.Targets {
				covered[t] = x
			}
			continue
		}
		inc := m.openIncident(now, g, priorities)
		active[inc.Key] = true
		for _, t := range g.Targets {
			covered[t] = inc
		}
		changes = append(changes, Change{ChangeOpened, inc})
	}
	for _, x := range m.Open() {
		targets, ok := explained[x]
		if !ok {
			continue
		}
		if active[x.Key] {
			targets = union(targets, x.Targets)
		}
		active[x.Key] = true
		if m.setTargets(now, x, targets, priorities) {
			changes = append(changes, Change{ChangeUpdated, x})
		}
	}
	for _, inc := range m.Open() {
		if active[inc.Key] || standsApart(inc.Condition) {
			continue
		}
		changes = append(changes, m.settle(now, inc, failing, covered)...)
	}
	var opened []*Incident
	for _, c := range changes {
		if c.Kind == ChangeOpened || (c.Kind == ChangeResumed && !c.Incident.Triggered) {
			opened = append(opened, c.Incident)
		}
	}
	m.keepPaged(now, opened)
	return changes
}

// stillExplained: an absorbed incident stays absorbed while the wider incident that
// absorbed it still covers all of its failing targets; letting it take over again would
// page (or re-page) during recovery.
func (m *Incidents) stillExplained(inc *Incident, g Group) bool {
	if inc.AbsorbedInto == "" {
		return false
	}
	w := m.open[inc.AbsorbedInto]
	return w != nil && w.AbsorbedInto == "" && containsAll(w.Targets, g.Targets)
}

// explainer finds an open incident wider than g that already covered all of g's targets.
func (m *Incidents) explainer(g Group) *Incident {
	var best *Incident
	for _, inc := range m.open {
		if inc.AbsorbedInto != "" || Width(inc.Scope) <= Width(g.Scope) || standsApart(inc.Condition) {
			continue
		}
		if !containsAll(inc.Targets, g.Targets) {
			continue
		}
		if best == nil || Width(inc.Scope) > Width(best.Scope) {
			best = inc
		}
	}
	return best
}

// settle decides the fate of an open incident that no group claimed this round.
func (m *Incidents) settle(now time.Time, inc *Incident, failing map[string]bool, covered map[string]*Incident) []Change {
	var still []string
	var wider *Incident
	for _, t := range inc.Targets {
		if !failing[t] {
			continue
		}
		still = append(still, t)
		if c := covered[t]; c != nil && Width(c.Scope) > Width(inc.Scope) {
			wider = c
		}
	}
	if len(still) == 0 || wider == nil {
		// Recovered, or what is left is explained by narrower incidents.
		if m.holdsFlap(inc, m.moment(now)) {
			m.holdOpen(now, inc)
			return nil
		}
		inc.close(now, "no failing target left in this incident")
		delete(m.open, inc.Key)
		return []Change{{ChangeResolved, inc}}
	}
	if !slices.Equal(inc.Targets, still) {
		m.changed[inc.Key] = true
	}
	inc.Targets = still
	if inc.AbsorbedInto == wider.Key {
		return nil
	}
	inc.AbsorbedInto = wider.Key
	inc.Updated = now
	inc.note(now, "absorbed", "now part of "+wider.Key)
	return []Change{{ChangeAbsorbed, inc}}
}

// holdOpen keeps a flapping incident open, covering nothing, until its FlapUntil.
func (m *Incidents) holdOpen(now time.Time, inc *Incident) {
	if inc.Targets != nil && len(inc.Targets) == 0 {
		return // held already
	}
	inc.Targets, inc.Regions, inc.Products = []string{}, []string{}, []string{}
	inc.Updated = now
	m.changed[inc.Key] = true
	inc.note(now, "recovered", "every target recovered; held open as flapping until "+inc.FlapUntil.UTC().Format(time.RFC3339))
}

func (m *Incidents) openIncident(now time.Time, g Group, priorities map[string]int) *Incident {
	inc := &Incident{
		Key: g.Key(), Scope: g.Scope, Subject: g.Subject, Condition: g.Condition,
		Opened: now, Updated: now, SendAfter: m.firstPageAt(now, g),
	}
	m.setTargets(now, inc, g.Targets, priorities)
	inc.note(now, "opened", describeGroup(g))
	m.open[inc.Key] = inc
	return inc
}

// firstPageAt is when a new incident's first page may leave: group_wait from now, or
// earlier when some of its targets were already held in another incident not yet paged
// (the wait starts when a target first fails, not again each time the outage is seen
// to be wider). Targets that were paged already are handled by keepPaged.
func (m *Incidents) firstPageAt(now time.Time, g Group) time.Time {
	at := now.Add(m.groupWait)
	for _, t := range g.Targets {
		key := g.Condition + " " + t
		if held, ok := m.heldUntil[key]; ok && held.Before(at) {
			at = held
		}
	}
	return at
}

// setTargets replaces the covered targets and reports whether the incident widened
// (new regions or products: worth telling the on-call).
func (m *Incidents) setTargets(now time.Time, inc *Incident, targets []string, priorities map[string]int) bool {
	targets = slices.Clone(targets)
	sort.Strings(targets)
	regions, products := map[string]bool{}, map[string]bool{}
	prio := 0
	for _, t := range targets {
		product, region := splitTarget(t)
		regions[region] = true
		products[product] = true
		if p := priorities[product]; p > 0 && (prio == 0 || p < prio) {
			prio = p
		}
	}
	newRegions, newProducts := sortedKeys(regions), sortedKeys(products)
	if !slices.Equal(targets, inc.Targets) {
		m.changed[inc.Key] = true
	}
	changed := inc.Targets != nil && (!slices.Equal(newRegions, inc.Regions) || !slices.Equal(newProducts, inc.Products))
	widened := inc.Targets != nil && (!containsAll(inc.Regions, newRegions) || !containsAll(inc.Products, newProducts))
	inc.Targets, inc.Regions, inc.Products = targets, newRegions, newProducts
	inc.widenPeak()
	if prio > 0 && (inc.Priority == 0 || prio < inc.Priority) {
		inc.Priority = prio
	}
	if changed {
		inc.Updated = now
		kind := "narrowed"
		if widened {
			kind = "widened"
		}
		inc.note(now, kind, "now regions "+joinNames(newRegions)+"; products "+joinNames(newProducts))
	}
	// Only widening is worth a message to the on-call; recovery shows on the timeline
	// and in the final resolve, and must not page anyone.
	return widened
}

// splitTarget takes product and region out of "product/journey@region".
func splitTarget(id string) (product, region string) {
	at := len(id)
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '@' {
			at = i
			break
		}
	}
	slash := at
	for i := 0; i < at; i++ {
		if id[i] == '/' {
			slash = i
			break
		}
	}
	product = id[:slash]
	if at < len(id) {
		region = id[at+1:]
	}
	return product, region
}

func containsAll(have, want []string) bool {
	set := make(map[string]bool, len(have))
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

func union(a, b []string) []string {
	set := map[string]bool{}
	for _, x := range a {
		set[x] = true
	}
	for _, x := range b {
		set[x] = true
	}
	return sortedKeys(set)
}

func joinNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	out := names[0]
	for _, n := range names[1:] {
		out += ", " + n
	}
	return out
}

func describeGroup(g Group) string {
	return g.Scope + " " + g.Subject + ": " + joinNames(g.Targets)
}
