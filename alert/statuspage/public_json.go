package statuspage

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/picket-dev/picket/alert"
)

// The JSON of the public page has the shape of Atlassian Statuspage's public API v2
// (/api/v2/summary.json and its parts), so that widgets and scripts written for it
// read Picket's page unchanged. DESIGN-contract details are in the README.

type spPage struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	URL       string `json:"url"`
	TimeZone  string `json:"time_zone"`
	UpdatedAt string `json:"updated_at"`
}

type spStatus struct {
	Indicator   string `json:"indicator"` // none | minor | major | critical
	Description string `json:"description"`
}

type spComponent struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Status             string   `json:"status"`
	CreatedAt          string   `json:"created_at"`
	UpdatedAt          string   `json:"updated_at"`
	Position           int      `json:"position"`
	Description        *string  `json:"description"`
	Showcase           bool     `json:"showcase"`
	StartDate          *string  `json:"start_date"`
	GroupID            *string  `json:"group_id"`
	PageID             string   `json:"page_id"`
	Group              bool     `json:"group"`
	OnlyShowIfDegraded bool     `json:"only_show_if_degraded"`
	Components         []string `json:"components,omitempty"` // a group's children
}

type spIncident struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Status          string           `json:"status"`
	CreatedAt       string           `json:"created_at"`
	UpdatedAt       string           `json:"updated_at"`
	MonitoringAt    *string          `json:"monitoring_at"`
	ResolvedAt      *string          `json:"resolved_at"`
	Impact          string           `json:"impact"`
	Shortlink       string           `json:"shortlink"`
	StartedAt       string           `json:"started_at"`
	PageID          string           `json:"page_id"`
	IncidentUpdates []spUpdate       `json:"incident_updates"`
	Components      []spComponentRef `json:"components"`
}

type spUpdate struct {
	ID                   string    `json:"id"`
	Status               string    `json:"status"`
	Body                 string    `json:"body"`
	IncidentID           string    `json:"incident_id"`
	CreatedAt            string    `json:"created_at"`
	UpdatedAt            string    `json:"updated_at"`
	DisplayAt            string    `json:"display_at"`
	AffectedComponents   *[]string `json:"affected_components"`
	DeliverNotifications bool      `json:"deliver_notifications"`
	CustomTweet          *string   `json:"custom_tweet"`
	TweetID              *string   `json:"tweet_id"`
}

// spComponentRef is a component as an incident lists it: the state it has in it.
type spComponentRef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// spTime is Statuspage's time format: RFC 3339 with milliseconds.
func spTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func spTimePtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := spTime(t)
	return &s
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// summaryShapes are the documents served under /api/v2/.
var summaryShapes = map[string]func(d spDoc) any{
	"summary.json": func(d spDoc) any {
		return map[string]any{"page": d.page, "components": d.components, "incidents": d.unresolved,
			"scheduled_maintenances": []any{}, "status": d.status}
	},
	"status.json":               func(d spDoc) any { return map[string]any{"page": d.page, "status": d.status} },
	"components.json":           func(d spDoc) any { return map[string]any{"page": d.page, "components": d.components} },
	"incidents.json":            func(d spDoc) any { return map[string]any{"page": d.page, "incidents": d.incidents} },
	"incidents/unresolved.json": func(d spDoc) any { return map[string]any{"page": d.page, "incidents": d.unresolved} },
}

// spDoc holds every part once.
type spDoc struct {
	page                  spPage
	status                spStatus
	components            []spComponent
	unresolved, incidents []spIncident
}

func (h *PublicHandler) serveJSON(shape func(spDoc) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		base := h.baseURL(r)
		body, err := h.answer(r.URL.Path, base, func(m publicModel) ([]byte, error) { return json.Marshal(shape(h.document(m, base))) })
		if err != nil {
			writeError(w, h.scrub, http.StatusInternalServerError, "encode answer: "+err.Error())
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*") // public data; widgets live on other sites
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	}
}

func (h *PublicHandler) document(m publicModel, base string) spDoc {
	pageID := publicID("page", h.public.Title)
	d := spDoc{
		page:   spPage{ID: pageID, Name: h.public.Title, URL: base, TimeZone: "Etc/UTC", UpdatedAt: spTime(m.Generated)},
		status: spStatus{Indicator: impactOf(m.Overall), Description: m.Description},
	}
	if m.Overall == alert.ComponentOperational {
		d.status.Description = "All Systems Operational" // Statuspage's own words, which scripts compare
	}
	at := spTime(m.Generated)
	for _, p := range m.Products {
		group := spComponent{ID: p.Name, Name: p.Title, Status: string(p.State), CreatedAt: at, UpdatedAt: at,
			Position: p.Position, Description: optional(p.Description), PageID: pageID, Group: true}
		var children []spComponent
		for _, row := range p.Rows {
			group.Components = append(group.Components, row.ID)
			children = append(children, spComponent{ID: row.ID, Name: p.Title + " (" + row.RegionTitle + ")", Status: string(row.State),
				CreatedAt: at, UpdatedAt: at, Position: row.Position, Description: optional(p.DegradedMeans), Showcase: true,
				GroupID: optional(p.Name), PageID: pageID})
		}
		d.components = append(append(d.components, group), children...)
	}
	for _, inc := range m.Active {
		d.unresolved = append(d.unresolved, h.spIncidentOf(inc, pageID, base))
	}
	d.incidents = append([]spIncident{}, d.unresolved...)
	for _, inc := range m.History {
		d.incidents = append(d.incidents, h.spIncidentOf(inc, pageID, base))
	}
	if d.unresolved == nil {
		d.unresolved = []spIncident{}
	}
	return d
}

func (h *PublicHandler) spIncidentOf(inc publicIncident, pageID, base string) spIncident {
	out := spIncident{ID: inc.ID, Name: inc.Title, Status: inc.Status, CreatedAt: spTime(inc.Started), UpdatedAt: spTime(inc.Updated),
		ResolvedAt: spTimePtr(inc.Resolved), Impact: inc.Impact, Shortlink: base + "/#incident-" + inc.ID,
		StartedAt: spTime(inc.Started), PageID: pageID, IncidentUpdates: []spUpdate{}, Components: []spComponentRef{}}
	for _, u := range inc.Updates {
		if u.Status == alert.UpdateMonitoring && (out.MonitoringAt == nil || spTime(u.At) < *out.MonitoringAt) {
			out.MonitoringAt = spTimePtr(u.At)
		}
		out.IncidentUpdates = append(out.IncidentUpdates, spUpdate{ID: u.ID, Status: u.Status, Body: u.Text, IncidentID: inc.ID,
			CreatedAt: spTime(u.At), UpdatedAt: spTime(u.At), DisplayAt: spTime(u.At)})
	}
	for _, p := range h.public.Products {
		for _, r := range orderedRegions(h, inc, p.Name) {
			c := alert.Cell{Product: p.Name, Region: r}
			out.Components = append(out.Components, spComponentRef{ID: componentID(c),
				Name: p.Title + " (" + h.names.Region(r) + ")", Status: string(inc.Cells[c])})
		}
	}
	return out
}

// orderedRegions lists the regions of product that inc affects, in the config's order.
func orderedRegions(h *PublicHandler, inc publicIncident, product string) []string {
	var rs []string
	for c := range inc.Cells {
		if c.Product == product {
			rs = append(rs, c.Region)
		}
	}
	return h.names.SortRegions(rs)
}
