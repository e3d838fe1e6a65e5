package alert

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// draftUpdate writes the customer update Picket proposes for inc, from the evidence
// alone and in customers' words (products and regions by their public names; no
// journey, target, host or raw error):
//
//	Major outage: Logs, Metrics in Europe 1 and US East 1, since 10:02 UTC (35m).
//	Logs: not loading in Europe 1; writes accepted but not readable in US East 1
//	(written data was not readable within 3s). Metrics: errors in Europe 1 and US East 1.
//	Recovered since the last update (10:30 UTC): Web App in Europe 1.
func (e *Engine) draftUpdate(now time.Time, inc *Incident) string {
	names := NamesOf(e.cfg)
	cells := CellsOfConfig(e.cfg)
	group := e.withAbsorbed(inc)
	affected := Affected(cells.States(group))
	var b strings.Builder
	fmt.Fprintf(&b, "%s, since %s UTC (%s).", names.Describe(affected), inc.Opened.UTC().Format("15:04"), humanAgo(now.Sub(inc.Opened)))
	if s := e.symptoms(names, cells, group, affected); s != "" {
		b.WriteString(" " + s)
	}
	b.WriteString(" " + e.recovered(names, cells, inc, affected))
	return b.String()
}

// withAbsorbed is inc and the open incidents it absorbed, as copies (their targets
// are failing cells too).
func (e *Engine) withAbsorbed(inc *Incident) []Incident {
	out := []Incident{*inc}
	for _, x := range e.incidents.Open() {
		if x.AbsorbedInto == inc.Key {
			out = append(out, *x)
		}
	}
	return out
}

// symptoms says per product what customers meet where: "Logs: not loading in Europe
// 1; writes accepted but not readable in US East 1 (…)."
func (e *Engine) symptoms(names Names, cells Cells, group []Incident, affected map[Cell]ComponentState) string {
	failing := map[string]bool{}
	for _, inc := range group {
		for _, t := range inc.Targets {
			failing[t] = true
		}
	}
	type where struct {
		regions   []string
		freshness time.Duration
	}
	perProduct := map[string]map[string]*where{} // product -> symptom -> where
	for c := range affected {
		for _, id := range cells[c] {
			s := e.states[id]
			if s == nil || !failing[id] {
				continue
			}
			sym := s.Last.Symptom
			if sym == "" {
				sym = "recovering"
			}
			if perProduct[c.Product] == nil {
				perProduct[c.Product] = map[string]*where{}
			}
			w := perProduct[c.Product][sym]
			if w == nil {
				w = &where{}
				perProduct[c.Product][sym] = w
			}
			w.regions = append(w.regions, c.Region)
			w.freshness = max(w.freshness, s.Last.Freshness)
		}
	}
	var parts []string
	for _, p := range names.sortedProducts(slices.Collect(maps.Keys(perProduct))) {
		var said []string
		for _, sym := range sortedSymptoms(slices.Collect(maps.Keys(perProduct[p]))) {
			w := perProduct[p][sym]
			line := sym + " in " + regionTitles(names, w.regions)
			line += freshnessNote(sym, w.freshness)
			said = append(said, line)
		}
		parts = append(parts, names.Product(p)+": "+strings.Join(said, "; ")+".")
	}
	return strings.Join(parts, " ")
}

// symptomOrder: the worst for a customer first.
var symptomOrder = []string{SymptomNotLoading, SymptomErrors, SymptomUnreadable, SymptomSlow, "recovering"}

// sortedSymptoms sorts symptoms (in place) the worst first.
func sortedSymptoms(symptoms []string) []string {
	slices.SortFunc(symptoms, func(a, b string) int { return slices.Index(symptomOrder, a) - slices.Index(symptomOrder, b) })
	return symptoms
}

func regionTitles(names Names, regions []string) string {
	sorted := names.sortedRegions(regions)
	titles := make([]string, len(sorted))
	for i, r := range sorted {
		titles[i] = names.Region(r)
	}
	return andList(titles)
}

// freshnessNote adds the measured freshness lag where the journey measures it.
func freshnessNote(symptom string, lag time.Duration) string {
	if lag <= 0 {
		return ""
	}
	lag = lag.Round(100 * time.Millisecond)
	switch symptom {
	case SymptomUnreadable:
		return fmt.Sprintf(" (written data was not readable within %s)", lag)
	case SymptomSlow:
		return fmt.Sprintf(" (written data took %s to become readable)", lag)
	}
	return ""
}

// recovered says what recovered since the last human update (or since the incident
// began, before there is one).
func (e *Engine) recovered(names Names, cells Cells, inc *Incident, affected map[Cell]ComponentState) string {
	var baseline []string
	since := "since it began"
	if u, ok := e.lastUpdate(inc); ok {
		baseline = u.Cells
		since = "since the last update (" + u.At.UTC().Format("15:04") + " UTC)"
	} else {
		peak := *inc
		peak.Targets = union(inc.PeakTargets, inc.Targets)
		baseline = cellNames(cells.IncidentCells(peak))
	}
	back := map[Cell]ComponentState{}
	for _, name := range baseline {
		product, region, _ := strings.Cut(name, "@")
		if c := (Cell{product, region}); affected[c] == "" {
			back[c] = ComponentMajor // any state: only the names are said
		}
	}
	if len(back) == 0 {
		return "Nothing has recovered " + since + "."
	}
	words := names.Describe(back)
	_, list, _ := strings.Cut(words, ": ")
	return "Recovered " + since + ": " + list + "."
}
