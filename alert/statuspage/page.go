package statuspage

import (
	"bytes"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/probe"
)

// Page bounds.
const (
	defaultRefresh   = 10 * time.Second
	closedOnPage     = 10
	maxUptimeTargets = 60  // uptime bars are 2 history reads each; the API has the rest
	maxErrorRunes    = 300 // a tooltip, not a log
	timeLayout       = "2006-01-02 15:04:05 UTC"
)

// Cell statuses: the matrix's, plus not_offered for a product absent from a region.
const (
	cellUp         = "up"
	cellDegraded   = "degraded"
	cellDown       = "down"
	cellNoData     = "no_data"
	cellNotOffered = "not_offered"
)

// cellText gives every status a word and a symbol, so colour is never the only cue.
var cellText = map[string][2]string{
	cellUp:         {"Up", "✓"},
	cellDegraded:   {"Degraded", "!"},
	cellDown:       {"Down", "✕"},
	cellNoData:     {"No data", "?"},
	cellNotOffered: {"Not offered", "–"},
}

type pageView struct {
	Title      string
	Vantage    string
	Generated  time.Time
	RefreshMS  int64
	Banner     bannerView
	Alone      string // fleet banners; "" hides them
	Isolated   string
	Fleet      *fleetView // nil: not in a cluster
	Regions    []headerView
	Rows       []rowView
	Open       []incidentView
	Closed     []incidentView
	ClosedErr  string
	Uptime     []uptimeView
	UptimeMore int // targets left out of the bars
	UptimeErr  string
	ShotsOn    bool // incidents show their screenshots (the page has a screenshot folder)
}

type bannerView struct {
	Text     string
	Scope    string // none, target, region, product, global
	Impaired bool
}

// headerView and rowView carry the title as written ("" if none): the page shows the
// name and, when there is one, the title.
type headerView struct{ Name, Title string }

type rowView struct {
	Name, Title string
	Priority    int
	Cells       []cellView
}

type cellView struct {
	Product, Region, Status, Label, Symbol, Tooltip string
	Votes                                           string // with a cluster: "down from 2 of 3"
}

type incidentView struct {
	Key, Path, Label, Scope, Condition string
	Opened, Resolved                   time.Time
	IsResolved                         bool
	Age                                string // how long it has been open (or was)
	Targets                            []string
	AbsorbedInto                       string
	Silenced                           bool
	// HeldUntil: every target recovered, and it stays open as flapping until then.
	HeldUntil time.Time
	Timeline  []alert.Event
	Updates   []alert.Update // the humans' updates for customers, oldest first
	// Screenshots of the failures of browser steps, by target (with a screenshot folder).
	Screenshots []shotView
}

type shotView struct{ Target, Name string }

var pageFuncs = template.FuncMap{
	"utc":  func(t time.Time) string { return t.UTC().Format(timeLayout) },
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join": func(s []string) string { return strings.Join(s, ", ") },
	// votesTitle explains "down from 2 of 3" in a tooltip.
	"votesTitle": func() string { return votesTitle },
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	st, err := scrubbed(h.scrub, h.src.Snapshot())
	if err != nil {
		h.log.Error("status page: read status", "err", err)
		http.Error(w, "read status failed", http.StatusInternalServerError)
		return
	}
	view := pageView{
		Title: h.title, Vantage: st.Vantage, Generated: st.Generated,
		RefreshMS: refreshFrom(r).Milliseconds(),
		Banner:    bannerView{Text: st.Banner, Scope: bannerScope(st), Impaired: st.Impaired},
		Regions:   regionHeaders(st),
		Rows:      matrixRows(st),
		Fleet:     fleetOf(st.Fleet, st.Generated),
		ShotsOn:   h.shots != "",
	}
	view.Alone, view.Isolated = fleetBanners(st.Fleet)
	for _, inc := range st.Incidents {
		view.Open = append(view.Open, h.withShots(incidentOf(inc, now), inc))
	}
	h.addClosed(&view, now)
	h.addUptime(&view, st, now)
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, view); err != nil {
		h.log.Error("status page: render", "err", err)
		http.Error(w, "render status page failed", http.StatusInternalServerError)
		return
	}
	writeHTML(w, h.scrub, http.StatusOK, &buf)
}

// addClosed lists the latest resolved incidents; without them the page still works.
func (h *Handler) addClosed(view *pageView, now time.Time) {
	closed, err := h.src.Closed(closedOnPage)
	if err == nil {
		closed, err = scrubbed(h.scrub, closed)
	}
	if err != nil {
		h.log.Warn("status page: read closed incidents", "err", err)
		view.ClosedErr = "Resolved incidents are unavailable: " + err.Error()
		return
	}
	for _, inc := range closed {
		view.Closed = append(view.Closed, h.withShots(incidentOf(inc, now), inc))
	}
}

// refreshFrom reads ?refresh=SECONDS (1 to 3600; for wall screens and tests), else 10 s.
func refreshFrom(r *http.Request) time.Duration {
	n, err := intParam(r, "refresh", int(defaultRefresh/time.Second), 1, 3600)
	if err != nil {
		return defaultRefresh
	}
	return time.Duration(n) * time.Second
}

func bannerScope(st alert.Status) string {
	if st.Scope.Kind == "" {
		return "none"
	}
	return st.Scope.Kind
}

func regionHeaders(st alert.Status) []headerView {
	out := make([]headerView, 0, len(st.Regions))
	for _, r := range st.Regions {
		out = append(out, headerView{Name: r.Name, Title: r.Title})
	}
	return out
}

// matrixRows: products by priority (most important first), one cell per region.
func matrixRows(st alert.Status) []rowView {
	products := slices.Clone(st.Products)
	slices.SortStableFunc(products, func(a, b alert.ProductView) int { return a.Priority - b.Priority })
	byCell := map[[2]string][]alert.TargetView{}
	for _, t := range st.Targets {
		k := [2]string{t.Product, t.Region}
		byCell[k] = append(byCell[k], t)
	}
	rows := make([]rowView, 0, len(products))
	for _, p := range products {
		row := rowView{Name: p.Name, Title: p.Title, Priority: p.Priority}
		for _, r := range st.Regions {
			status, ok := st.Matrix[p.Name][r.Name]
			if !ok {
				status = cellNotOffered
			}
			c := cell(p.Name, r.Name, status, byCell[[2]string{p.Name, r.Name}])
			c.Votes = st.Votes[p.Name][r.Name]
			row.Cells = append(row.Cells, c)
		}
		rows = append(rows, row)
	}
	return rows
}

func cell(product, region, status string, targets []alert.TargetView) cellView {
	text, ok := cellText[status]
	if !ok {
		text = [2]string{status, "?"}
	}
	return cellView{
		Product: product, Region: region, Status: status, Label: text[0], Symbol: text[1],
		Tooltip: cellTooltip(product, region, text[0], targets),
	}
}

// cellTooltip names the failing journeys and their last errors, and journeys other
// vantages see failing. app.js builds the same text when it refreshes the matrix.
func cellTooltip(product, region, label string, targets []alert.TargetView) string {
	lines := []string{product + " in " + region + ": " + label}
	up := 0
	for _, t := range targets {
		switch {
		case t.LastStatus == "":
			lines = append(lines, t.Journey+": no result yet"+votesSuffix(t.Votes))
		case t.State == alert.StateOK && t.LastStatus == cellUp:
			up++
			if t.Votes != "" {
				lines = append(lines, journeyLine(t))
			}
		default:
			lines = append(lines, journeyLine(t))
		}
		if t.Warning != "" {
			lines = append(lines, t.Journey+": "+t.Warning) // a certificate near expiry
		}
	}
	if up > 0 {
		lines = append(lines, fmt.Sprintf("%d of %d journeys up", up, len(targets)))
	}
	return strings.Join(lines, "\n")
}

func journeyLine(t alert.TargetView) string {
	line := t.Journey + ": " + t.LastStatus
	if t.State != alert.StateOK && t.State != "" {
		line += " (" + string(t.State)
		if !t.Since.IsZero() {
			line += " since " + t.Since.UTC().Format(timeLayout)
		}
		line += ")"
	}
	line += votesSuffix(t.Votes)
	if t.LastError != "" {
		line += " — " + truncate(t.LastError, maxErrorRunes)
	}
	return line
}

// votesSuffix: " · vantages: down from 2 of 3", or "" without votes.
func votesSuffix(votes string) string {
	if votes == "" {
		return ""
	}
	return " · vantages: " + votes
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func incidentOf(inc alert.Incident, now time.Time) incidentView {
	end := now
	if !inc.Resolved.IsZero() {
		end = inc.Resolved
	}
	v := incidentView{
		Key: inc.Key, Path: keyToPath(inc.Key), Label: scopeLabel(inc.Scope, inc.Subject),
		Scope: inc.Scope, Condition: inc.Condition, Opened: inc.Opened, Resolved: inc.Resolved,
		IsResolved: !inc.Resolved.IsZero(), Age: humanDuration(end.Sub(inc.Opened)),
		Targets: inc.Targets, AbsorbedInto: inc.AbsorbedInto, Silenced: inc.Silenced, Timeline: inc.Timeline, Updates: inc.Updates,
	}
	if inc.Open() && len(inc.Targets) == 0 && !inc.FlapUntil.IsZero() {
		v.HeldUntil, v.Targets = inc.FlapUntil, inc.PeakTargets // what it covered, recovered now
	}
	return v
}

// withShots adds the incident's screenshots, by target, when the page serves them.
func (h *Handler) withShots(v incidentView, inc alert.Incident) incidentView {
	if h.shots == "" {
		return v
	}
	for _, target := range slices.Sorted(maps.Keys(inc.Screenshots)) {
		if name := inc.Screenshots[target]; probe.ScreenshotName.MatchString(name) {
			v.Screenshots = append(v.Screenshots, shotView{Target: target, Name: name})
		}
	}
	return v
}

// scopeLabel says the width first, as the pages do.
func scopeLabel(scope, subject string) string {
	switch scope {
	case alert.ScopeGlobal:
		return "Global"
	case alert.ScopeRegion:
		return "Region " + subject
	case alert.ScopeProduct:
		return "Product " + subject
	}
	return "Target " + subject
}

// humanDuration: "45s", "14m", "3h 12m", "2d 3h". app.js has the same.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm", s/60)
	case s < 86400:
		return fmt.Sprintf("%dh %dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %dh", s/86400, s%86400/3600)
}
