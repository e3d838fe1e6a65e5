package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/picket-dev/picket/alert/notify"
)

// Update statuses: Atlassian Statuspage's incident statuses.
const (
	UpdateInvestigating = "investigating"
	UpdateIdentified    = "identified"
	UpdateMonitoring    = "monitoring"
	UpdateResolved      = "resolved"
)

// UpdateStatuses are the statuses an update may have, in their usual order.
var UpdateStatuses = []string{UpdateInvestigating, UpdateIdentified, UpdateMonitoring, UpdateResolved}

// Bounds of human updates.
const (
	MaxUpdateRunes     = 4000 // one update's text
	MaxUpdateAuthor    = 100
	maxUpdatesPerIssue = 200 // an incident's updates; the oldest ones go first
)

// Update is a human's word on an incident, for customers: shown on both status pages,
// in the feed, the JSON summary and the export, and optionally sent to chat.
type Update struct {
	ID     int       `json:"id"` // 1, 2, … within the incident
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Text   string    `json:"text"`
	Author string    `json:"author,omitempty"`
	// Cells are the cells ("product@region") the incident covered when it was posted,
	// so that the next drafted update can say what recovered since.
	Cells []string `json:"cells,omitempty"`
}

// ErrInvalidUpdate marks an update refused for what it says (the API's 400).
var ErrInvalidUpdate = errors.New("invalid update")

// checkUpdate refuses an unknown status, an empty or overlong text.
func checkUpdate(u Update) error {
	switch {
	case !slices.Contains(UpdateStatuses, u.Status):
		return fmt.Errorf("%w: status: expected one of %s, got %q", ErrInvalidUpdate, strings.Join(UpdateStatuses, ", "), u.Status)
	case strings.TrimSpace(u.Text) == "":
		return fmt.Errorf("%w: text: expected what customers should read, got nothing", ErrInvalidUpdate)
	case utf8.RuneCountInString(u.Text) > MaxUpdateRunes:
		return fmt.Errorf("%w: text: expected at most %d characters, got %d", ErrInvalidUpdate, MaxUpdateRunes, utf8.RuneCountInString(u.Text))
	case utf8.RuneCountInString(u.Author) > MaxUpdateAuthor:
		return fmt.Errorf("%w: author: expected at most %d characters", ErrInvalidUpdate, MaxUpdateAuthor)
	}
	return nil
}

// PostUpdate adds a human update to the incident with this dedup key: the open one,
// else the latest closed one (a final word after Picket resolved it). It is stored
// with the incident, noted on its timeline, restarts the comms cadence, and goes to
// comms.updates_notify. It returns the incident as it is now and the update made.
func (e *Engine) PostUpdate(key string, u Update) (Incident, Update, error) {
	if err := checkUpdate(u); err != nil {
		return Incident{}, Update{}, err
	}
	e.mu.Lock()
	defer e.unlock() // the update is on disk when the caller hears it was made
	now := e.now()
	u.At, u.Text, u.Author = now.UTC(), strings.TrimSpace(u.Text), strings.TrimSpace(u.Author)
	if inc := e.incidents.Get(key); inc != nil {
		made := e.addUpdate(now, inc, u)
		e.saveIncident(inc)
		if e.sendUpdate(now, inc, made) {
			e.saveIncident(inc) // with the timeline's note of the message
		}
		return copyIncident(inc), made, nil
	}
	storeKey, inc, ok, err := e.latestClosed(key)
	switch {
	case err != nil:
		return Incident{}, Update{}, err
	case !ok:
		return Incident{}, Update{}, fmt.Errorf("%w: no open or closed incident with key %q", ErrNotFound, key)
	}
	made := e.addUpdate(now, &inc, u)
	if err := e.store.Put(BucketClosed, storeKey, &inc); err != nil {
		return Incident{}, Update{}, fmt.Errorf("save the update of closed incident %s: %w", key, err)
	}
	if e.sendUpdate(now, &inc, made) {
		e.j.put("save closed incident", BucketClosed, storeKey, &inc) // with the timeline's note of the message
	}
	return inc, made, nil
}

// addUpdate numbers u, records what the incident covers now, and keeps it.
func (e *Engine) addUpdate(now time.Time, inc *Incident, u Update) Update {
	u.ID = 1
	if n := len(inc.Updates); n > 0 {
		u.ID = inc.Updates[n-1].ID + 1
	}
	u.Cells = cellNames(CellsOfConfig(e.cfg).IncidentCells(*inc))
	inc.Updates = append(inc.Updates, u)
	if len(inc.Updates) > maxUpdatesPerIssue {
		inc.Updates = slices.Delete(inc.Updates, 0, len(inc.Updates)-maxUpdatesPerIssue)
	}
	by := ""
	if u.Author != "" {
		by = " (" + u.Author + ")"
	}
	inc.note(now, "update", u.Status+by+": "+u.Text)
	return u
}

// cellNames lists cells as "product@region", sorted.
func cellNames(states map[Cell]ComponentState) []string {
	out := make([]string, 0, len(states))
	for c := range states {
		out = append(out, c.Product+"@"+c.Region)
	}
	slices.Sort(out)
	return out
}

// latestClosed reads the latest closed incident with key, and the key it is stored
// under, once the journal's pending writes are committed (an incident closed a moment
// ago may still be in the journal). Without a store there is none.
func (e *Engine) latestClosed(key string) (storeKey string, found Incident, ok bool, err error) {
	if e.store == nil {
		return "", Incident{}, false, nil
	}
	e.flush()
	return findClosed(e.store, key)
}

// findClosed reads the latest closed incident with key from st, and the key it is
// stored under. A damaged record is skipped: whatever it was, it cannot be the one
// asked for.
func findClosed(st Store, key string) (storeKey string, found Incident, ok bool, err error) {
	err = st.ForEach(BucketClosed, func(k string, raw []byte) error {
		var inc Incident
		if json.Unmarshal(raw, &inc) != nil || inc.Key != key {
			return nil // damaged, or another incident
		}
		storeKey, found, ok = k, inc, true // keys sort by opening time: the last one wins
		return nil
	})
	if err != nil {
		return "", Incident{}, false, fmt.Errorf("read closed incidents: %w", err)
	}
	return storeKey, found, ok, nil
}

// sendUpdate posts an update to comms.updates_notify: a trigger of the incident's key
// while it is open, a resolve once it is closed (a webhook reading dedup keys must not
// see a closed incident reopen). It reports whether it noted anything on inc's timeline.
func (e *Engine) sendUpdate(now time.Time, inc *Incident, u Update) bool {
	if e.cfg.Comms == nil || len(e.cfg.Comms.UpdatesNotify) == 0 || e.outbox == nil {
		return false
	}
	action := notify.ActionTrigger
	if !inc.Open() {
		action = notify.ActionResolve
	}
	summary := "[UPDATE] " + scopeLabel(inc) + " " + u.Status + ": " + u.Text
	n := e.commsNotification(now, inc, action, "update", summary)
	n.Details["update"] = map[string]any{"id": u.ID, "status": u.Status, "text": u.Text, "author": u.Author, "at": u.At.Format(time.RFC3339)}
	n.Details["text"] = u.Text
	e.enqueueComms(now, inc, n, e.cfg.Comms.UpdatesNotify, "update sent to")
	return true
}

// LatestUpdate is the incident's last human update, if any.
func (i Incident) LatestUpdate() (Update, bool) {
	if len(i.Updates) == 0 {
		return Update{}, false
	}
	return i.Updates[len(i.Updates)-1], true
}

// copyIncident copies an incident for a reader: nothing in it aliases engine state.
func copyIncident(inc *Incident) Incident {
	c := *inc
	c.Targets, c.Regions, c.Products = slices.Clone(inc.Targets), slices.Clone(inc.Regions), slices.Clone(inc.Products)
	c.PeakTargets, c.PeakRegions, c.PeakProducts = slices.Clone(inc.PeakTargets), slices.Clone(inc.PeakRegions), slices.Clone(inc.PeakProducts)
	c.Timeline = slices.Clone(inc.Timeline)
	c.Updates = slices.Clone(inc.Updates)
	// The maps too: the engine writes an open incident's reasons and screenshots while
	// the status API encodes its copy (the race detector saw the shared map).
	c.Reasons, c.Screenshots = maps.Clone(inc.Reasons), maps.Clone(inc.Screenshots)
	return c
}
