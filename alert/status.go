package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Status is a consistent snapshot of everything a status page or API shows.
type Status struct {
	Vantage   string                       `json:"vantage"`
	Generated time.Time                    `json:"generated"`
	Impaired  bool                         `json:"impaired"`
	Banner    string                       `json:"banner"` // one line: how wide the trouble is
	Scope     Summary                      `json:"scope"`
	Regions   []RegionView                 `json:"regions"`
	Products  []ProductView                `json:"products"`
	Matrix    map[string]map[string]string `json:"matrix"` // product -> region -> up|degraded|down|no_data
	Targets   []TargetView                 `json:"targets"`
	Incidents []Incident                   `json:"incidents"` // open, widest first
	// With a cluster: the fleet, and per matrix cell how many vantages see it failing
	// ("down from 2 of 3"; "" where no vantage does).
	Fleet *FleetStatus                 `json:"fleet,omitempty"`
	Votes map[string]map[string]string `json:"votes,omitempty"` // product -> region -> text
}

type RegionView struct {
	Name  string `json:"name"`
	Title string `json:"title"`
}

type ProductView struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Priority int      `json:"priority"`
	Regions  []string `json:"regions"`
}

type TargetView struct {
	Target     string    `json:"target"`
	Product    string    `json:"product"`
	Journey    string    `json:"journey"`
	Region     string    `json:"region"`
	State      State     `json:"state"`
	Condition  string    `json:"condition,omitempty"`
	LastStatus string    `json:"last_status"` // up|degraded|down, "" before the first run
	LastError  string    `json:"last_error,omitempty"`
	LastAt     time.Time `json:"last_at,omitzero"`
	DurationMS int64     `json:"duration_ms"`
	Since      time.Time `json:"since,omitzero"`
	Interval   string    `json:"interval"`
	Votes      string    `json:"votes,omitempty"` // with a cluster: "down from 2 of 3"
	// A certificate near expiry (cert_min_days), apart from the state: its expiry and
	// "certificate expires in 9 days (2026-12-12)".
	CertExpires *time.Time `json:"cert_expires,omitempty"`
	Warning     string     `json:"warning,omitempty"`
}

// Snapshot copies the engine's view for readers; nothing in it aliases engine state.
func (e *Engine) Snapshot() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	st := Status{Vantage: e.cfg.Vantage, Generated: now.UTC(), Impaired: e.impaired, Matrix: Matrix(e.cfg, e.states)}
	for _, r := range e.cfg.Regions {
		st.Regions = append(st.Regions, RegionView{Name: r.Name, Title: r.Title})
	}
	for _, p := range e.cfg.Products {
		st.Products = append(st.Products, ProductView{Name: p.Name, Title: p.Title, Priority: p.Priority, Regions: p.Regions})
	}
	for _, t := range e.cfg.Targets {
		s := e.states[t.ID]
		tv := TargetView{Target: t.ID, Product: t.Product, Journey: t.Journey, Region: t.Region, Interval: t.Interval.String()}
		if s != nil {
			tv.State, tv.Condition, tv.LastStatus, tv.LastAt = s.State, s.Condition, s.Last.Status, s.Last.At
			tv.LastError, tv.DurationMS, tv.Since = s.Last.Error, s.Last.Duration.Milliseconds(), s.Since
		}
		tv.CertExpires, tv.Warning = certView(s)
		st.Targets = append(st.Targets, tv)
	}
	var down, slow []Group
	for _, inc := range e.incidents.Open() {
		st.Incidents = append(st.Incidents, copyIncident(inc))
		if inc.AbsorbedInto != "" {
			continue
		}
		g := Group{Scope: inc.Scope, Subject: inc.Subject, Targets: inc.Targets, Regions: inc.Regions, Products: inc.Products}
		switch {
		case inc.Condition == ConditionDegraded:
			slow = append(slow, g)
		case warningOnly(inc.Condition): // a certificate near expiry: neither down nor slow
		default:
			down = append(down, g)
		}
	}
	e.peers.Snapshot(e.view(), &st)
	st.Scope = Summarize(down)
	st.Banner = banner(st.Impaired, st.Scope, len(e.cfg.Regions), degradedCells(st.Matrix, slow))
	return st
}

// degradedCells maps product -> regions that are slow: the matrix's Degraded cells and
// the open degraded incidents (in a fleet the quorum can hold one while this vantage's
// own cell reads up).
func degradedCells(matrix map[string]map[string]string, incidents []Group) map[string][]string {
	out := map[string][]string{}
	for product, row := range matrix {
		for region, cell := range row {
			if cell == "degraded" {
				out[product] = append(out[product], region)
			}
		}
	}
	for _, g := range incidents {
		for _, p := range g.Products {
			out[p] = append(out[p], g.Regions...)
		}
	}
	for p, rs := range out {
		out[p] = uniqueSorted(rs)
	}
	return out
}

// banner says how wide the trouble is in one line, naming only what the widest scope
// itself covers (s is Summarize's: a stray failing journey elsewhere does not make
// another region "out"). With nothing down, slow cells (product -> regions) are named:
// "All systems operational" over a Degraded cell would tell a reader all is well.
func banner(impaired bool, s Summary, regions int, degraded map[string][]string) string {
	prefix := ""
	if impaired {
		prefix = "This vantage is impaired (its own network checks fail); platform pages are held. "
	}
	switch s.Kind {
	case ScopeGlobal:
		return fmt.Sprintf("%sGlobal outage: %d of %d regions", prefix, len(s.Regions), regions)
	case ScopeRegion:
		return fmt.Sprintf("%sRegional outage: %s", prefix, joinNames(s.Regions))
	case ScopeProduct:
		return fmt.Sprintf("%sProduct outage: %s in %d regions", prefix, joinNames(s.Products), len(s.Regions))
	case ScopeTarget:
		return fmt.Sprintf("%sPartial problems: %s in %s", prefix, joinNames(s.Products), joinNames(s.Regions))
	}
	if len(degraded) > 0 {
		return prefix + "Degraded performance: " + describeCells(degraded)
	}
	return prefix + "All systems operational"
}

// describeCells: "logs in eu1, us1; metrics in us1".
func describeCells(cells map[string][]string) string {
	products := make([]string, 0, len(cells))
	for p := range cells {
		products = append(products, p)
	}
	sort.Strings(products)
	parts := make([]string, len(products))
	for i, p := range products {
		parts[i] = p + " in " + joinNames(cells[p])
	}
	return strings.Join(parts, "; ")
}

// OpenIncidents copies the open incidents (without the per-target views a full
// Snapshot builds), for gauges refreshed every second.
func (e *Engine) OpenIncidents() []Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	open := e.incidents.Open()
	out := make([]Incident, len(open))
	for i, inc := range open {
		out[i] = copyIncident(inc)
		out[i].Timeline = nil
	}
	return out
}

// Incident returns an open incident, or a closed one from the store, by dedup key.
func (e *Engine) Incident(key string) (Incident, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if inc := e.incidents.Get(key); inc != nil {
		return copyIncident(inc), true
	}
	return Incident{}, false
}

// ErrNotFound is returned for an unknown silence or incident.
var ErrNotFound = errors.New("not found")

// Closed returns up to limit resolved incidents, newest first, from the store.
func (e *Engine) Closed(limit int) ([]Incident, error) {
	if e.store == nil {
		return nil, nil
	}
	// Read what is already decided: an incident closed a moment ago may still be in
	// the journal (the closing caller's commit runs after the lock is released).
	e.flush()
	var all []Incident
	err := e.store.ForEach(BucketClosed, func(key string, raw []byte) error {
		var inc Incident
		if err := json.Unmarshal(raw, &inc); err != nil {
			// One damaged record must not take the list (and the status page) down.
			e.log.Warn("closed incidents: skipping a damaged record", "key", key, "err", err)
			return nil
		}
		all = append(all, inc)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read closed incidents: %w", err)
	}
	slices.Reverse(all) // keys start with the opening time
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// FindIncident returns an open incident, else the latest closed one, by dedup key.
func (e *Engine) FindIncident(key string) (Incident, bool, error) {
	if inc, ok := e.Incident(key); ok {
		return inc, true, nil
	}
	_, inc, ok, err := e.latestClosed(key)
	return inc, ok, err
}

// LoadIncident reads an incident by key straight from a store (open first, else the
// latest closed one), for tools that run beside a stopped daemon.
func LoadIncident(st Store, key string) (Incident, bool, error) {
	var found Incident
	ok := false
	err := st.ForEach(BucketIncidents, func(k string, raw []byte) error {
		if k != key {
			return nil
		}
		ok = true
		return json.Unmarshal(raw, &found)
	})
	if err != nil || ok {
		return found, ok, err
	}
	_, found, ok, err = findClosed(st, key)
	return found, ok, err
}
