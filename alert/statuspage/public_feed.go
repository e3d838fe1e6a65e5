package statuspage

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/picket-dev/picket/alert"
)

// Atom (RFC 4287): one entry per incident card, open or resolved, newest first; an
// entry's content is its updates, newest first, as escaped HTML.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
}

type atomEntry struct {
	ID        string     `xml:"id"`
	Title     string     `xml:"title"`
	Published string     `xml:"published"`
	Updated   string     `xml:"updated"`
	Links     []atomLink `xml:"link"`
	Content   atomText   `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

func (h *PublicHandler) serveFeed(w http.ResponseWriter, r *http.Request) {
	base := h.baseURL(r)
	body, err := h.answer("feed", base, func(m publicModel) ([]byte, error) { return h.feed(m, base) })
	if err != nil {
		http.Error(w, "encode the feed failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

func (h *PublicHandler) feed(m publicModel, base string) ([]byte, error) {
	feed := atomFeed{
		ID: "tag:picket," + m.Generated.UTC().Format("2006") + ":" + publicID("page", h.public.Title), Title: h.public.Title + " — incident history",
		Updated: m.Generated.UTC().Format(time.RFC3339), Author: atomPerson{Name: h.public.Title},
		Links: []atomLink{{Href: base + "/history.atom", Rel: "self", Type: "application/atom+xml"}, {Href: base + "/", Rel: "alternate", Type: "text/html"}},
	}
	for _, inc := range append(append([]publicIncident{}, m.Active...), m.History...) {
		feed.Entries = append(feed.Entries, atomEntry{
			ID: "tag:picket," + inc.Started.UTC().Format("2006-01-02") + ":incident/" + inc.ID, Title: entryTitle(inc),
			Published: inc.Started.UTC().Format(time.RFC3339), Updated: inc.Updated.UTC().Format(time.RFC3339),
			Links:   []atomLink{{Href: base + "/#incident-" + inc.ID, Rel: "alternate", Type: "text/html"}},
			Content: atomText{Type: "html", Body: entryHTML(inc)},
		})
	}
	body, err := xml.MarshalIndent(feed, "", "  ")
	return append([]byte(xml.Header), body...), err
}

// entryTitle: "Resolved: Major outage: Logs in Europe 1" (the latest status first).
func entryTitle(inc publicIncident) string {
	return statusWord(inc.Status) + ": " + inc.Title
}

func entryHTML(inc publicIncident) string {
	var b strings.Builder
	for _, u := range inc.Updates {
		who := ""
		if u.Auto {
			who = " (automated)"
		}
		fmt.Fprintf(&b, "<p><strong>%s</strong>%s — %s<br>%s</p>", template.HTMLEscapeString(u.Status), who,
			u.At.UTC().Format(timeLayout), template.HTMLEscapeString(u.Text))
	}
	return b.String()
}

// badgeColours by state: green, yellow, orange, red (shields.io's).
var badgeColours = map[alert.ComponentState]string{
	alert.ComponentOperational: "#4c1", alert.ComponentDegraded: "#dfb317",
	alert.ComponentPartial: "#fe7d37", alert.ComponentMajor: "#e05d44",
}

// serveBadge draws "status | Major outage" in the style of shields.io badges.
func (h *PublicHandler) serveBadge(w http.ResponseWriter, _ *http.Request) {
	m := h.current()
	label, message := "status", m.Overall.Words()
	lw, mw := textWidth(label), textWidth(message)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`, lw+mw, label, message)
	fmt.Fprintf(&b, `<title>%s: %s</title><rect width="%d" height="20" rx="3" fill="#555"/>`, label, message, lw+mw)
	fmt.Fprintf(&b, `<rect x="%d" width="%d" height="20" rx="3" fill="%s"/><rect x="%d" width="4" height="20" fill="%s"/>`, lw, mw, badgeColours[m.Overall], lw, badgeColours[m.Overall])
	fmt.Fprintf(&b, `<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">`)
	fmt.Fprintf(&b, `<text x="%d" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`, lw/2, label, lw+mw/2, message)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-cache, max-age=0") // README badges are proxied; keep them fresh
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(b.Bytes())
}

// textWidth estimates the width of text at 11px Verdana, with padding.
func textWidth(s string) int { return utf8.RuneCountInString(s)*7 + 12 }
