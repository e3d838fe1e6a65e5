package fleet

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
)

// MayTrigger decides whether this vantage sends an incident's first trigger now. It
// returns false while another vantage is expected to send; the incident is then marked
// triggered without a send when the fleet's record shows the page is out (adopted).
func (f *Member) MayTrigger(v alert.EngineView, now time.Time, inc *alert.Incident) (send, adopted bool) {
	// Only an accepted page counts, as in Alertmanager's notification log: a sender whose
	// paging service keeps failing is taken over after the wait below. The record is the
	// fleet's last word on the key: an accepted trigger, however old, means the incident
	// is open at the paging service (a resolve would have replaced it). Also this
	// vantage's own, from before a restart.
	alone, isolated, since := f.alone()
	if rec, ok := f.Fleet.Page(inc.Key); ok && rec.Open && rec.Confirmed && (!alone || !rec.At.Before(now.Add(-since))) {
		// (Cut off, a record from before the cut may be stale: the fleet may have
		// resolved it since; paging again is harmless, the dedup key is the same.)
		inc.PagedBy, inc.PagedAt = rec.By, rec.At
		v.Note(inc, now, "triggered", "paged by vantage "+rec.By)
		return false, true
	}
	if alone && !isolated {
		return false, false // held until alone_after, then paged on this side's evidence
	}
	// Cut off, the rank is among the members on this side: one of them sends.
	pos := f.Fleet.Position(inc.Key)
	if pos == 0 {
		return true, false
	}
	// (Asked at every position, so that each vantage sees who sent first.)
	if underWay := f.takeoverUnderWay(v, inc); underWay || pos > maxTakeoverPosition {
		return false, false
	}
	if now.Before(inc.SendAfter.Add(time.Duration(pos) * f.TakeoverAfter)) {
		return false, false
	}
	v.Note(inc, now, "takeover", fmt.Sprintf("no vantage before this one (position %d) confirmed the page within %s; sending it", pos, time.Duration(pos)*f.TakeoverAfter))
	return true, false
}

// takeoverUnderWay reports whether another live vantage already took the page over: the
// fleet's record of this incident names someone other than the vantage seen sending it
// first. Ranks shift as members come and go, so "the second sender" can name a
// different vantage a minute later; without this each of them took over in turn.
func (f *Member) takeoverUnderWay(v alert.EngineView, inc *alert.Incident) bool {
	rec, ok := f.Fleet.Page(inc.Key)
	if !ok || !rec.Open || rec.At.Before(inc.Opened.Add(-openingSpread)) || rec.By == f.Member(v) {
		return false
	}
	if inc.FirstSender == "" {
		inc.FirstSender = rec.By
		return false
	}
	return rec.By != inc.FirstSender && f.Fleet.IsLive(rec.By)
}

// maxTakeoverPosition: only the second sender takes over. A takeover helps when the
// first sender's own path to the paging service is broken; when the service fails for
// everyone (429s, timeouts), each further takeover only repeats the page (chat got it
// from every vantage). Both keep retrying, and the route's fallback still applies.
const maxTakeoverPosition = 1

// waitsForFleet: cut off from the majority, an incident the fleet paged is left for the
// fleet to resolve: paged by a vantage not on this side, or before this side was cut off
// (then it was the fleet's page whichever side its sender ended up on, and the majority
// may still see the outage). Only what this side paged while alone is its own to resolve.
func (f *Member) waitsForFleet(now time.Time, inc *alert.Incident) bool {
	alone, since := f.Fleet.Alone()
	if !alone || inc.PagedBy == "" {
		return false
	}
	return !f.Fleet.IsLive(inc.PagedBy) || inc.PagedAt.Before(now.Add(-since))
}

// resolvedBy reports whether the record is an accepted resolve of this incident, not of
// an earlier one with the same key: made after the incident opened, and after this
// vantage's own trigger if it sent one (after a partition, an isolated vantage's later
// trigger may lose to an older resolve in the records' order).
func (f *Member) resolvedBy(v alert.EngineView, rec Page, inc *alert.Incident) bool {
	if rec.Open || !rec.Confirmed || rec.At.Before(inc.Opened.Add(-openingSpread)) {
		return false
	}
	return inc.PagedBy != f.Member(v) || !rec.At.Before(inc.PagedAt)
}

// FirstSender reports whether this vantage sends follow-ups (widened, part of) for key.
func (f *Member) FirstSender(v alert.EngineView, key string) bool {
	if v.Impaired() || f.Holding() {
		return false // the others do not count it among the senders / nothing while held
	}
	return f.Fleet.Position(key) == 0
}

// Resolve sends the resolve of a paged incident, or, when another vantage is first to
// send it, waits for that vantage's record (sendPending).
func (f *Member) Resolve(v alert.EngineView, now time.Time, inc *alert.Incident) {
	if rec, ok := f.Fleet.Page(inc.Key); ok && f.resolvedBy(v, rec, inc) {
		v.Note(inc, now, "resolved", "resolve sent by vantage "+rec.By)
		return
	}
	// Cut off, a vantage resolves only what its side paged: the fleet's pages wait for
	// the fleet.
	if f.waitsForFleet(now, inc) {
		v.Note(inc, now, "resolved", "waiting for the fleet to resolve what it paged")
		f.resolves[inc.Key] = &pendingResolve{inc: inc, since: now}
		return
	}
	if f.FirstSender(v, inc.Key) {
		f.sendRecorded(v, now, inc)
		return
	}
	v.Note(inc, now, "resolved", "waiting for the first sender's resolve")
	f.resolves[inc.Key] = &pendingResolve{inc: inc, since: now}
}

// SendPending drops resolves another vantage has sent, and sends those whose first
// sender stayed silent past this vantage's takeover wait.
func (f *Member) SendPending(v alert.EngineView, now time.Time) {
	if v.Impaired() {
		return // the others do not wait for it
	}
	for key, p := range f.resolves {
		rec, ok := f.Fleet.Page(key)
		switch {
		case f.waitsForFleet(now, p.inc):
			continue
		case v.Incident(key) != nil:
			delete(f.resolves, key) // failing again: the open incident owns the key
		case ok && f.resolvedBy(v, rec, p.inc):
			delete(f.resolves, key)
		case f.FirstSender(v, key) || now.Sub(p.since) >= time.Duration(f.Fleet.Position(key))*f.TakeoverAfter:
			delete(f.resolves, key)
			f.sendRecorded(v, now, p.inc)
		}
	}
}

// sendRecorded sends a resolve and tells the other vantages, so none of them repeats it.
func (f *Member) sendRecorded(v alert.EngineView, now time.Time, inc *alert.Incident) {
	if v.Send(now, inc, notify.ActionResolve, "resolved") {
		f.Sent(v, now, inc, notify.ActionResolve)
	}
}

// Sent records the page in the fleet.
func (f *Member) Sent(v alert.EngineView, now time.Time, inc *alert.Incident, action string) {
	f.Fleet.RecordPage(inc.Key, action == notify.ActionTrigger)
	if action == notify.ActionTrigger {
		inc.PagedBy, inc.PagedAt = f.Member(v), now
	}
}

func (f *Member) Member(v alert.EngineView) string {
	return v.Name()
}
