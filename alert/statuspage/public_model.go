package statuspage

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
)

// publicModel is everything the public page, feed, badge and JSON say, built from one
// snapshot. It holds no operator detail: no target id, journey outside journeys_shown,
// raw error, notifier, host or vantage; products and regions go by their public names.
type publicModel struct {
	Generated   time.Time
	Overall     alert.ComponentState
	Description string // "Major outage: Logs, Metrics in Europe 1 and US East 1"
	Products    []publicProduct
	Active      []publicIncident // open, newest first
	History     []publicIncident // resolved, newest first
}

type publicProduct struct {
	Name, Title, Description, DegradedMeans string
	Journeys                                []string
	State                                   alert.ComponentState // the worst of its rows
	Rows                                    []publicRow
	Position                                int
}

// publicRow is one component: a product in a region.
type publicRow struct {
	ID, Region, RegionTitle string
	State                   alert.ComponentState
	Uptime                  cellUptime
	Position                int
}

type publicIncident struct {
	ID       string
	Title    string // what it affects, worst first
	Status   string // investigating | identified | monitoring | resolved
	Impact   string // none | minor | major | critical
	Started  time.Time
	Resolved time.Time // zero while open
	Updated  time.Time
	Updates  []publicUpdate // newest first
	Cells    map[alert.Cell]alert.ComponentState
	// BeganAs names the narrower incidents it absorbed: "Europe 1, from 10:02 UTC".
	BeganAs []string
}

type publicUpdate struct {
	ID     string
	At     time.Time
	Status string
	Text   string
	Auto   bool // written by Picket from the evidence, not by a person
}

// impactOf is Statuspage's incident impact for the worst state an incident gives.
func impactOf(s alert.ComponentState) string {
	switch s {
	case alert.ComponentMajor:
		return "critical"
	case alert.ComponentPartial:
		return "major"
	case alert.ComponentDegraded:
		return "minor"
	}
	return "none"
}

// publicID is a short stable id that names an incident without its dedup key (a
// target incident's key holds a target id).
func publicID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:6])
}

// buildModel judges the components from the open incidents and groups incidents into
// cards: one per real incident, with the narrower ones it absorbed inside it.
func (h *PublicHandler) buildModel(st alert.Status, closed []alert.Incident, uptime map[alert.Cell]cellUptime) publicModel {
	cells := alert.CellsOf(st.Targets)
	open := st.PublicIncidents()
	states := cells.States(open)
	m := publicModel{Generated: st.Generated, Overall: alert.Overall(states), Description: h.names.Describe(alert.Affected(states))}
	pos := 0
	for _, pp := range h.public.Products {
		p := publicProduct{Name: pp.Name, Title: pp.Title, Description: pp.Description, DegradedMeans: pp.DegradedMeans,
			Journeys: pp.JourneysShown, Position: pos}
		pos++
		var rowStates []alert.ComponentState
		for _, r := range st.Regions {
			c := alert.Cell{Product: pp.Name, Region: r.Name}
			if _, offered := cells[c]; !offered {
				continue
			}
			p.Rows = append(p.Rows, publicRow{ID: componentID(c), Region: r.Name, RegionTitle: h.names.Region(r.Name),
				State: states[c], Uptime: uptime[c], Position: pos})
			pos++
			rowStates = append(rowStates, states[c])
		}
		p.State = alert.Rollup(rowStates)
		if len(p.Rows) > 0 {
			m.Products = append(m.Products, p)
		}
	}
	all := append(slices.Clone(open), publicOnly(closed)...)
	for _, card := range group(all) {
		inc := h.card(cells, card, st.Generated)
		if inc.Resolved.IsZero() {
			m.Active = append(m.Active, inc)
		} else {
			m.History = append(m.History, inc)
		}
	}
	return m
}

// componentID names a component in the JSON: "logs.eu1".
func componentID(c alert.Cell) string { return c.Product + "." + c.Region }

func publicOnly(incs []alert.Incident) []alert.Incident {
	var out []alert.Incident
	for _, inc := range incs {
		if inc.Public() {
			out = append(out, inc)
		}
	}
	return out
}

// group makes the cards: an incident absorbed into another one it overlapped in time
// goes inside that one's card, and so do narrow (one-journey) incidents of the same
// product and region that overlapped in time (two journeys of one product failing in
// one region are one incident to its customers); every other incident is a card of
// its own. Cards are newest first.
func group(incs []alert.Incident) [][]alert.Incident {
	slices.SortStableFunc(incs, func(a, b alert.Incident) int {
		if w := alert.Width(b.Scope) - alert.Width(a.Scope); w != 0 {
			return w
		}
		return a.Opened.Compare(b.Opened)
	})
	var cards [][]alert.Incident
	for _, inc := range incs {
		i := slices.IndexFunc(cards, func(card []alert.Incident) bool { return absorbs(card[0], inc) || sameCell(card[0], inc) })
		if i >= 0 {
			cards[i] = append(cards[i], inc)
			continue
		}
		cards = append(cards, []alert.Incident{inc})
	}
	slices.SortStableFunc(cards, func(a, b []alert.Incident) int { return started(b).Compare(started(a)) })
	return cards
}

// absorbs: inc was absorbed into wide while both were open.
func absorbs(wide, inc alert.Incident) bool {
	return inc.AbsorbedInto == wide.Key && wide.Key != inc.Key && overlap(wide, inc)
}

// sameCell: two one-journey incidents of one product in one region, of one condition,
// open at the same time.
func sameCell(a, b alert.Incident) bool {
	return a.Scope == alert.ScopeTarget && b.Scope == alert.ScopeTarget && a.Condition == b.Condition &&
		len(a.Products) == 1 && len(a.Regions) == 1 && slices.Equal(a.Products, b.Products) && slices.Equal(a.Regions, b.Regions) && overlap(a, b)
}

// overlap: a and b were open at some moment together.
func overlap(a, b alert.Incident) bool {
	return (a.Resolved.IsZero() || !a.Resolved.Before(b.Opened)) && (b.Resolved.IsZero() || !b.Resolved.Before(a.Opened))
}

// resolvedAt: a card is resolved when every incident in it is, at the last one's time.
func resolvedAt(card []alert.Incident) time.Time {
	var at time.Time
	for _, inc := range card {
		if inc.Open() {
			return time.Time{}
		}
		at = latestTime(at, inc.Resolved)
	}
	return at
}

func latestTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func started(card []alert.Incident) time.Time {
	at := card[0].Opened
	for _, inc := range card[1:] {
		if inc.Opened.Before(at) {
			at = inc.Opened
		}
	}
	return at
}

// card is one real incident as customers read it.
func (h *PublicHandler) card(cells alert.Cells, card []alert.Incident, now time.Time) publicIncident {
	top := card[0]
	affected := alert.Affected(cells.States(card))
	pi := publicIncident{
		ID: publicID(top.Key, top.Opened.UTC().Format(time.RFC3339Nano)), Cells: affected,
		Title: h.names.Describe(affected), Impact: impactOf(alert.Overall(affected)),
		Started: started(card), Resolved: resolvedAt(card),
	}
	var human []alert.Update
	for i, inc := range card {
		human = append(human, inc.Updates...)
		// What was paged before the wider incident explained it; one grouped away before
		// its page (group_wait) was never news.
		if began := h.names.Describe(cells.IncidentCells(inc)) + ", from " + inc.Opened.UTC().Format(timeLayout); i > 0 && inc.Triggered && !slices.Contains(pi.BeganAs, began) {
			pi.BeganAs = append(pi.BeganAs, began)
		}
	}
	slices.SortStableFunc(human, func(a, b alert.Update) int { return a.At.Compare(b.At) })
	pi.Status, pi.Updates = timeline(pi, human)
	pi.Updated = pi.Started
	if len(pi.Updates) > 0 {
		pi.Updated = pi.Updates[0].At
	}
	if pi.Title == "All systems operational" { // a flapping key held open, or a peak lost
		pi.Title = "Recovered; monitoring"
	}
	return pi
}

// timeline is the card's updates, newest first: Picket's own words when it detected
// and when it resolved the incident, and every human update between. The status is
// the latest human one, except that only Picket's probes resolve: a human "resolved"
// on an incident still failing shows as monitoring until they agree.
func timeline(pi publicIncident, human []alert.Update) (string, []publicUpdate) {
	ups := []publicUpdate{{ID: publicID(pi.ID, "detected"), At: pi.Started, Status: alert.UpdateInvestigating, Auto: true,
		Text: "Our automated checks detected a problem: " + pi.Title + "."}}
	status := alert.UpdateInvestigating
	for _, u := range human {
		ups = append(ups, publicUpdate{ID: publicID(pi.ID, u.At.Format(time.RFC3339Nano), u.Text), At: u.At, Status: u.Status, Text: u.Text})
		status = u.Status
	}
	if pi.Resolved.IsZero() {
		if status == alert.UpdateResolved {
			status = alert.UpdateMonitoring
		}
	} else {
		if !humanResolvedAfter(human, pi.Resolved) {
			ups = append(ups, publicUpdate{ID: publicID(pi.ID, "resolved"), At: pi.Resolved, Status: alert.UpdateResolved, Auto: true,
				Text: "Our automated checks see everything working again, after " + humanDuration(pi.Resolved.Sub(pi.Started)) + "."})
		}
		status = alert.UpdateResolved
	}
	slices.SortStableFunc(ups, func(a, b publicUpdate) int { return b.At.Compare(a.At) })
	return status, ups
}

func humanResolvedAfter(human []alert.Update, at time.Time) bool {
	for _, u := range human {
		if u.Status == alert.UpdateResolved && !u.At.Before(at) {
			return true
		}
	}
	return false
}
