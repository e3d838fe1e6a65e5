package alert

import (
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/picket-dev/picket/config"
)

// ComponentState is how a public status page shows a product in a region, in
// Atlassian Statuspage's words, so that its widgets and scripts read it.
type ComponentState string

// Component states, best first.
const (
	ComponentOperational ComponentState = "operational"
	ComponentDegraded    ComponentState = "degraded_performance"
	ComponentPartial     ComponentState = "partial_outage"
	ComponentMajor       ComponentState = "major_outage"
)

// componentRank orders the states; the worst of several wins.
var componentRank = map[ComponentState]int{ComponentOperational: 0, ComponentDegraded: 1, ComponentPartial: 2, ComponentMajor: 3}

// Worse is the worse of two states.
func Worse(a, b ComponentState) ComponentState {
	if componentRank[b] > componentRank[a] {
		return b
	}
	if a == "" {
		return ComponentOperational
	}
	return a
}

// Words is the state as a page says it: "Major outage".
func (s ComponentState) Words() string {
	switch s {
	case ComponentDegraded:
		return "Degraded performance"
	case ComponentPartial:
		return "Partial outage"
	case ComponentMajor:
		return "Major outage"
	}
	return "Operational"
}

// Cell is one product in one region: a component of the public page.
type Cell struct{ Product, Region string }

// Cells maps each offered cell to its targets' ids.
type Cells map[Cell][]string

// CellsOf groups the snapshot's targets by cell.
func CellsOf(targets []TargetView) Cells {
	cells := Cells{}
	for _, t := range targets {
		c := Cell{t.Product, t.Region}
		cells[c] = append(cells[c], t.Target)
	}
	return cells
}

// CellsOfConfig groups the config's targets by cell.
func CellsOfConfig(cfg *config.Config) Cells {
	cells := Cells{}
	for _, t := range cfg.Targets {
		c := Cell{t.Product, t.Region}
		cells[c] = append(cells[c], t.ID)
	}
	return cells
}

// States judges every cell from the incidents given (the rules the README states):
//   - major outage: every journey of the product in that region is covered by a down
//     incident;
//   - partial outage: some of them are, not all;
//   - degraded performance: none is down and one is covered by a degraded incident;
//   - operational: none is covered.
//
// Only incidents count, not single results: a cell changes when Picket's thresholds
// (and in a fleet, the quorum) say so, as its pages do. Certificate warnings never
// make a cell worse: they are the operators' business.
func (cells Cells) States(incidents []Incident) map[Cell]ComponentState {
	down, slow := map[string]bool{}, map[string]bool{}
	for _, inc := range incidents {
		for _, t := range inc.Targets {
			switch inc.Condition {
			case ConditionDown:
				down[t] = true
			case ConditionDegraded:
				slow[t] = true
			}
		}
	}
	out := make(map[Cell]ComponentState, len(cells))
	for c, targets := range cells {
		out[c] = cellState(targets, down, slow)
	}
	return out
}

func cellState(targets []string, down, slow map[string]bool) ComponentState {
	nDown, anySlow := 0, false
	for _, t := range targets {
		if down[t] {
			nDown++
		}
		anySlow = anySlow || slow[t]
	}
	switch {
	case nDown > 0 && nDown == len(targets):
		return ComponentMajor
	case nDown > 0:
		return ComponentPartial
	case anySlow:
		return ComponentDegraded
	}
	return ComponentOperational
}

// Affected keeps the cells that are not operational.
func Affected(states map[Cell]ComponentState) map[Cell]ComponentState {
	out := map[Cell]ComponentState{}
	for c, s := range states {
		if s != ComponentOperational {
			out[c] = s
		}
	}
	return out
}

// Overall is the worst state of all.
func Overall(states map[Cell]ComponentState) ComponentState {
	worst := ComponentOperational
	for _, s := range states {
		worst = Worse(worst, s)
	}
	return worst
}

// Names are the public names of products and regions, in the config's order.
type Names struct {
	products, regions []named
}

type named struct{ name, title string }

// NamesOf takes the public titles of products (public.products.NAME.title, else the
// product's title) and the regions' titles.
func NamesOf(cfg *config.Config) Names {
	var n Names
	for _, p := range cfg.Products {
		title := p.Title
		if cfg.Public != nil {
			title = cfg.Public.Product(p.Name).Title
		}
		n.products = append(n.products, named{p.Name, title})
	}
	for _, r := range cfg.Regions {
		n.regions = append(n.regions, named{r.Name, r.Title})
	}
	return n
}

// Product is a product's public title (its name when unknown).
func (n Names) Product(name string) string { return titleOf(n.products, name) }

// Region is a region's title (its name when unknown).
func (n Names) Region(name string) string { return titleOf(n.regions, name) }

func titleOf(list []named, name string) string {
	for _, x := range list {
		if x.name == name {
			return x.title
		}
	}
	return name
}

func indexOf(list []named, name string) int {
	for i, x := range list {
		if x.name == name {
			return i
		}
	}
	return len(list)
}

// Describe says the affected cells in one line, worst state first, products by
// priority, regions as configured: "Major outage: Logs, Metrics in Europe 1 and US
// East 1. Partial outage: Web App in Europe 1". Products with the same regions share a
// clause; clauses of one state are joined by "; ". Nothing affected: "All systems
// operational".
func (n Names) Describe(states map[Cell]ComponentState) string {
	var clauses []string
	for _, s := range []ComponentState{ComponentMajor, ComponentPartial, ComponentDegraded} {
		if c := n.clause(states, s); c != "" {
			clauses = append(clauses, s.Words()+": "+c)
		}
	}
	if len(clauses) == 0 {
		return "All systems operational"
	}
	return strings.Join(clauses, ". ")
}

// clause names the products in state s with their regions: "Logs, Metrics in Europe
// 1 and US East 1; Web App in Europe 1" ("" when none is).
func (n Names) clause(states map[Cell]ComponentState, s ComponentState) string {
	regionsOf := map[string][]string{}
	for c, st := range states {
		if st == s {
			regionsOf[c.Product] = append(regionsOf[c.Product], c.Region)
		}
	}
	type group struct {
		products []string
		regions  []string
	}
	var groups []*group
	byRegions := map[string]*group{}
	for _, p := range n.sortedProducts(slices.Collect(maps.Keys(regionsOf))) {
		rs := n.sortedRegions(regionsOf[p])
		key := strings.Join(rs, ",")
		g := byRegions[key]
		if g == nil {
			g = &group{regions: rs}
			byRegions[key] = g
			groups = append(groups, g)
		}
		g.products = append(g.products, n.Product(p))
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		titles := make([]string, len(g.regions))
		for j, r := range g.regions {
			titles[j] = n.Region(r)
		}
		parts[i] = strings.Join(g.products, ", ") + " in " + andList(titles)
	}
	return strings.Join(parts, "; ")
}

// sortedProducts sorts product names (in place) as the config lists them (by priority).
func (n Names) sortedProducts(out []string) []string {
	sort.Slice(out, func(i, j int) bool {
		a, b := indexOf(n.products, out[i]), indexOf(n.products, out[j])
		return a < b || a == b && out[i] < out[j]
	})
	return out
}

func (n Names) sortedRegions(rs []string) []string {
	out := uniqueSorted(rs)
	sort.SliceStable(out, func(i, j int) bool { return indexOf(n.regions, out[i]) < indexOf(n.regions, out[j]) })
	return out
}

// andList: "a", "a and b", "a, b and c".
func andList(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// IncidentCells are the cells an incident covers (its targets now; its peak once
// closed) with the state it gives each of them alone.
func (cells Cells) IncidentCells(inc Incident) map[Cell]ComponentState {
	return Affected(cells.States([]Incident{inc}))
}

// Public reports whether an incident is one customers hear of: outages and slowness,
// not certificate warnings (nor notices, which are not incidents).
func (i Incident) Public() bool {
	return i.Condition == ConditionDown || i.Condition == ConditionDegraded
}

// SortRegions orders region names as the config lists them, without repeats.
func (n Names) SortRegions(rs []string) []string { return n.sortedRegions(rs) }

// Rollup is a product's state from its regions' (a component group's): major outage
// only when every region is out, partial outage when some region is partly or wholly
// out, else the worst of the rest.
func Rollup(states []ComponentState) ComponentState {
	major, worst := 0, ComponentOperational
	for _, s := range states {
		if s == ComponentMajor {
			major++
		}
		worst = Worse(worst, s)
	}
	if worst == ComponentMajor && major < len(states) {
		return ComponentPartial
	}
	return worst
}

// Rank orders states: operational 0 … major outage 3.
func Rank(s ComponentState) int { return componentRank[s] }

// PublicStates judges every cell of the snapshot from its open public incidents: what
// the public page shows and the status sync sends.
func (st Status) PublicStates() map[Cell]ComponentState {
	return CellsOf(st.Targets).States(st.PublicIncidents())
}

// PublicStates is Snapshot().PublicStates() without the snapshot: the status sync asks
// every second, and a snapshot copies every target's view (and in a fleet words its
// votes) under the engine's lock.
func (e *Engine) PublicStates() map[Cell]ComponentState {
	e.mu.Lock()
	defer e.mu.Unlock()
	var open []Incident
	for _, inc := range e.incidents.Open() {
		if inc.Public() {
			open = append(open, *inc) // read under the lock only: no copy of its lists needed
		}
	}
	return CellsOfConfig(e.cfg).States(open)
}

// PublicIncidents are the open incidents customers hear of.
func (st Status) PublicIncidents() []Incident {
	var out []Incident
	for _, inc := range st.Incidents {
		if inc.Public() {
			out = append(out, inc)
		}
	}
	return out
}
