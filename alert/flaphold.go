package alert

import (
	"time"

	"github.com/picket-dev/picket/config"
)

// Flapping at the level of an incident's key. A target that fails again soon after
// recovering is flapping (state.go); but different targets taking turns under one key
// (a product's journeys in one region, then another) re-open the key as often, and
// the on-call gets the same page again and again. The rule: a key is paged at most
// twice within its flap window. An incident whose key was first seen open at a
// receiver less than a window before this incident's page is flapping: when its
// targets recover it stays open, covering nothing, until a window has passed since
// that earlier opening, so that a third failure within the window joins the open page
// (as an update) instead of paging anew.

// BucketOpenings holds, per key, when its latest closed incident was first open at a
// receiver: a restart must judge the next incident's flapping as the run before it
// would have.
const BucketOpenings = "openings"

// opening is a key's latest opening, as stored.
type opening struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
}

// flapWindowOf is the flap window of an incident's scope: the longest failure window
// (runs times the interval) of the configured targets the scope covers; zero when none
// has a failure window (failure_window failures: 0 turns flapping off).
func flapWindowOf(targets map[string]*config.Target, scope, subject string) time.Duration {
	var window time.Duration
	for _, t := range targets {
		covered := scope == ScopeGlobal || (scope == ScopeProduct && t.Product == subject) ||
			(scope == ScopeRegion && t.Region == subject) || t.ID == subject
		if covered && t.FailureWindow.Failures > 0 {
			window = max(window, time.Duration(t.FailureWindow.Runs)*t.Interval)
		}
	}
	return window
}

// notePaged is told that inc's first trigger went to the outbox: if its key opened
// within the flap window before, inc is flapping and holds its resolve.
func (m *Incidents) notePaged(inc *Incident, now moment) {
	inc.paged = now
	last, ok := m.lastOpening[inc.Key]
	window := m.flapWindow(inc)
	if !ok || window <= 0 || last.since(now) >= window {
		return
	}
	inc.flapUntil = last.add(window)
	inc.FlapUntil = inc.flapUntil.wall
	inc.note(now.wall, "flapping", "paged again within "+window.String()+" of the key's last page: when it recovers, its resolve waits until "+
		inc.FlapUntil.UTC().Format(time.RFC3339)+" so that another failure joins this page")
}

// noteAccepted is told that a receiver accepted a trigger of key: the first one
// marks when the incident was open there. One accepted after its incident closed (a
// slow receiver) moves the key's latest opening.
func (m *Incidents) noteAccepted(key string, now moment) (closedOpening *opening) {
	if inc := m.open[key]; inc != nil {
		if inc.OpenAtReceiver.IsZero() {
			inc.OpenAtReceiver, inc.openAtReceiver = now.wall, now
		}
		return nil
	}
	if last, ok := m.lastOpening[key]; ok && last.since(now) > 0 {
		m.lastOpening[key] = now
		return &opening{Key: key, At: now.wall}
	}
	return nil
}

// holdsFlap reports whether a paged incident whose targets all recovered stays open:
// it is flapping and its hold has not passed.
func (m *Incidents) holdsFlap(inc *Incident, now moment) bool {
	return inc.Triggered && !inc.FlapUntil.IsZero() && inc.flapUntil.orPersisted(inc.FlapUntil).since(now) < 0
}

// flapHoldOver reports whether some incident held open by flapping may close now.
func (m *Incidents) flapHoldOver(now moment) bool {
	for _, inc := range m.open {
		if len(inc.Targets) == 0 && !inc.FlapUntil.IsZero() && !m.holdsFlap(inc, now) {
			return true
		}
	}
	return false
}

// closedOpening records, as inc closes, when its key was open at a receiver: the
// first acceptance, else (nothing confirmed) its page. Nothing when it never paged.
func (m *Incidents) closedOpening(inc *Incident) *opening {
	if !inc.Triggered {
		return nil
	}
	at := inc.openAtReceiver.orPersisted(inc.OpenAtReceiver)
	if at.isZero() {
		at = inc.paged
	}
	if at.isZero() {
		at = wallMoment(inc.PagedAt)
	}
	if at.isZero() {
		return nil
	}
	if last, ok := m.lastOpening[inc.Key]; ok && at.since(last) > 0 {
		return nil // a later opening is known (a late acceptance)
	}
	m.lastOpening[inc.Key] = at
	return &opening{Key: inc.Key, At: at.wall}
}
