package statuspage

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/internal/store"
)

// Bounds of /api/v1/incidents?limit=N for the closed incidents.
const (
	defaultClosedLimit = 50
	maxClosedLimit     = 1000
)

func (h *Handler) apiStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, h.scrub, http.StatusOK, h.src.Snapshot())
}

type incidentsAnswer struct {
	Open   []alert.Incident `json:"open"`
	Closed []alert.Incident `json:"closed"`
}

func (h *Handler) apiIncidents(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", defaultClosedLimit, 1, maxClosedLimit)
	if err != nil {
		writeError(w, h.scrub, http.StatusBadRequest, err.Error())
		return
	}
	closed, err := h.src.Closed(limit)
	if err != nil {
		h.fail(w, "read closed incidents", err)
		return
	}
	open := h.src.Snapshot().Incidents
	writeJSON(w, h.scrub, http.StatusOK, incidentsAnswer{Open: nonNil(open), Closed: nonNil(closed)})
}

type timelineAnswer struct {
	Incident alert.Incident `json:"incident"`
	Timeline []alert.Event  `json:"timeline"`
}

// apiTimeline takes the dedup key with "/" written as "~" (picket~region~eu1), or
// URL-escaped as %2F, since a raw "/" would end the path segment.
func (h *Handler) apiTimeline(w http.ResponseWriter, r *http.Request) {
	inc, ok := h.incidentOfPath(w, r)
	if !ok {
		return
	}
	timeline := nonNil(inc.Timeline)
	inc.Timeline = nil // once is enough: the answer carries it beside the incident
	writeJSON(w, h.scrub, http.StatusOK, timelineAnswer{Incident: inc, Timeline: timeline})
}

// incidentOfPath finds the incident the path's {key} names, open or closed; else it
// answers the error (404, or 500 when the store failed) and reports false.
func (h *Handler) incidentOfPath(w http.ResponseWriter, r *http.Request) (alert.Incident, bool) {
	key := keyFromPath(r.PathValue("key"))
	inc, ok, err := h.src.FindIncident(key)
	switch {
	case err != nil:
		h.fail(w, "find incident", err)
	case !ok:
		writeError(w, h.scrub, http.StatusNotFound, fmt.Sprintf("no open or closed incident with key %q", key))
	}
	return inc, err == nil && ok
}

// keyFromPath undoes the "~" spelling of a dedup key's slashes.
func keyFromPath(segment string) string { return strings.ReplaceAll(segment, "~", "/") }

// keyToPath is the "~" spelling the page links with.
func keyToPath(key string) string { return strings.ReplaceAll(key, "/", "~") }

// apiHistory answers a target's buckets: ?range=24h (5-minute buckets, the default)
// or 90d (hour buckets). The target id is URL-escaped, or has its "/" written as "~"
// like the incident keys.
func (h *Handler) apiHistory(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("target")
	win, err := windowFor(r.URL.Query().Get("range"), h.now())
	if err != nil {
		writeError(w, h.scrub, http.StatusBadRequest, err.Error())
		return
	}
	st := h.src.Snapshot()
	if !hasTarget(st, target) && hasTarget(st, keyFromPath(target)) {
		target = keyFromPath(target)
	}
	if !hasTarget(st, target) {
		writeError(w, h.scrub, http.StatusNotFound, fmt.Sprintf("no target %q (ids look like product/journey@region, URL-escaped)", target))
		return
	}
	buckets, err := h.src.History(target, win.from, win.to, win.step)
	if err != nil {
		h.fail(w, "read history of "+target, err)
		return
	}
	writeJSON(w, h.scrub, http.StatusOK, nonNil(buckets))
}

func hasTarget(st alert.Status, id string) bool {
	for _, t := range st.Targets {
		if t.Target == id {
			return true
		}
	}
	return false
}

// window is one span of history at one resolution.
type window struct {
	from, to time.Time
	step     time.Duration
}

// windowFor: the last 24 hours in 5-minute slots, or the last 90 days (whole UTC days,
// today included) in hour slots; both end with the slot that holds now.
func windowFor(rng string, now time.Time) (window, error) {
	now = now.UTC()
	switch rng {
	case "", "24h":
		to := now.Truncate(store.FineStep).Add(store.FineStep)
		return window{from: to.Add(-store.FineRetention), to: to, step: store.FineStep}, nil
	case "90d":
		to := now.Truncate(store.CoarseStep).Add(store.CoarseStep)
		today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		return window{from: today.AddDate(0, 0, -(historyDays - 1)), to: to, step: store.CoarseStep}, nil
	}
	return window{}, fmt.Errorf("range: expected 24h or 90d, got %q", rng)
}

// historyDays is how many days the long uptime bar shows.
const historyDays = 90

func (h *Handler) apiOutbox(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, h.scrub, http.StatusOK, nonNil[notify.EntryInfo](h.src.Outbox()))
}

// fail answers 500 and logs why; the cause goes to the client too (it is ours, not a
// secret: the token is scrubbed from every answer anyway).
func (h *Handler) fail(w http.ResponseWriter, what string, err error) {
	h.log.Warn("status API: "+what+" failed", "err", err)
	writeError(w, h.scrub, http.StatusInternalServerError, what+": "+err.Error())
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: expected an integer from %d to %d, got %q", name, lo, hi, raw)
	}
	return n, nil
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
