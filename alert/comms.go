package alert

import (
	"fmt"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// commsMark is in the id of every notification of the communications cadence (update
// due, human updates, reminders): they tell chat, they page nobody, so a fleet does not
// take their acceptance for a confirmed page (IsComms).
const commsMark = "|comms|"

// IsComms reports whether a notification id is one of the communications cadence's.
func IsComms(notificationID string) bool { return strings.Contains(notificationID, commsMark) }

// commsNotification is a notification of inc for chat: the incident's key (a webhook
// sees it as an update of the incident), scope and place, the matrix, no targets.
func (e *Engine) commsNotification(now time.Time, inc *Incident, action, kind, summary string) notify.Notification {
	e.sent++
	n := notify.Notification{
		ID:       fmt.Sprintf("%s%s%s|%d.%d", inc.Key, commsMark, kind, now.UnixNano(), e.sent),
		Action:   action,
		DedupKey: inc.Key, Scope: inc.Scope, Subject: inc.Subject, Priority: inc.Priority,
		Summary: summary, Severity: notify.SeverityInfo, Source: e.cfg.Vantage,
		Created: now.UTC(), Opened: inc.Opened.UTC(),
		Details: map[string]any{"scope": inc.Scope, "opened": inc.Opened.UTC().Format(time.RFC3339),
			"regions": inc.Regions, "products": inc.Products, "matrix": Matrix(e.cfg, e.states), "vantage": e.cfg.Vantage},
	}
	if len(inc.Products) == 1 {
		n.Component = inc.Products[0]
	}
	if len(inc.Regions) == 1 {
		n.Group = inc.Regions[0]
	}
	return n
}

// enqueueComms hands n to the outbox for the notifiers given (no fallback: a reminder
// that cannot be delivered is retried, not escalated) and notes it on the timeline.
func (e *Engine) enqueueComms(now time.Time, inc *Incident, n notify.Notification, to []string, what string) bool {
	if len(to) == 0 || e.outbox == nil {
		return false
	}
	e.flush() // what the message stands on is on disk before it is queued (as send's)
	if err := e.outbox.Enqueue(notify.Delivery{Notification: n, Notify: to}); err != nil {
		e.log.Error("could not queue a communications message", "key", inc.Key, "err", err)
		inc.note(now, "failed", "could not queue "+what+" "+strings.Join(to, ", ")+": "+err.Error())
		return false
	}
	inc.note(now, "comms", what+" "+strings.Join(to, ", "))
	return true
}

// commsScope: the incidents a customer update is due for are the wide ones (a region, a
// product, the platform): one journey failing in one region is the on-call's business.
func commsScope(inc *Incident) bool {
	return inc.Condition == ConditionDown && (inc.Scope == ScopeRegion || inc.Scope == ScopeProduct || inc.Scope == ScopeGlobal)
}

// sendComms sends what the cadence has due (from Tick): "update due" with a drafted
// update for each wide incident whose last customer update is older than
// comms.every, and a reminder to each open incident's chat notifiers when they have
// not heard of it for comms.renotify. Only paged incidents that no wider one absorbed,
// and only from the vantage that sends the incident's follow-ups.
func (e *Engine) sendComms(now time.Time) {
	c := e.cfg.Comms
	if c == nil || e.impaired || e.peers.Holding() {
		return
	}
	for _, inc := range e.incidents.Open() {
		if !inc.Triggered || inc.AbsorbedInto != "" || !inc.Public() || !e.peers.FirstSender(e.view(), inc.Key) {
			continue
		}
		sent := false
		if c.Every > 0 && commsScope(inc) && !now.Before(e.lastWord(inc).Add(c.Every)) {
			sent = e.sendUpdateDue(now, inc, c)
		}
		if c.Renotify > 0 && !now.Before(latest(inc.Opened, inc.ToldAt).Add(c.Renotify)) {
			sent = e.sendReminder(now, inc, c.Renotify) || sent
		}
		if sent {
			e.saveIncident(inc)
		}
	}
}

// lastWord is when customers were last told of inc, or its comms channel was last
// reminded: the latest human update of inc or of what it absorbed, the last "update
// due", else the opening.
func (e *Engine) lastWord(inc *Incident) time.Time {
	at := latest(inc.Opened, inc.CommsDueAt)
	if u, ok := e.lastUpdate(inc); ok {
		at = latest(at, u.At)
	}
	return at
}

// lastUpdate is the latest human update of inc and of the open incidents it absorbed
// (the team may have written about the region before it was known to be global).
func (e *Engine) lastUpdate(inc *Incident) (Update, bool) {
	last, ok := inc.LatestUpdate()
	for _, x := range e.incidents.Open() {
		if x.AbsorbedInto != inc.Key {
			continue
		}
		if u, has := x.LatestUpdate(); has && (!ok || u.At.After(last.At)) {
			last, ok = u, true
		}
	}
	return last, ok
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sendUpdateDue tells comms.notify that a customer update is due, with a draft.
func (e *Engine) sendUpdateDue(now time.Time, inc *Incident, c *config.Comms) bool {
	since := "no customer update has been posted"
	status := UpdateInvestigating
	if u, ok := e.lastUpdate(inc); ok {
		since = "the last customer update was " + humanAgo(now.Sub(u.At)) + " ago"
		status = u.Status
	}
	draft := e.draftUpdate(now, inc)
	summary := fmt.Sprintf("[UPDATE DUE] %s: %s (every %s)", scopeLabel(inc), since, humanAgo(c.Every))
	n := e.commsNotification(now, inc, notify.ActionTrigger, "due", summary)
	n.Details["text"] = "Drafted update:\n" + draft + "\n\nPost it (edit first): picket update post " + inc.Key +
		" --status " + status + " --text '…'"
	n.Details["draft"] = draft
	n.Details["suggested_status"] = status
	if !e.enqueueComms(now, inc, n, c.Notify, "update due sent to") {
		return false // the next tick tries again
	}
	inc.CommsDueAt = now
	return true
}

// sendReminder reminds the chat notifiers of inc's routes that it is still open; its
// pagers are not told again (PagerDuty keeps the incident open by itself).
func (e *Engine) sendReminder(now time.Time, inc *Incident, every time.Duration) bool {
	var to []string
	for _, d := range e.router.Deliveries(inc, e.cfg.Alerting.Degraded) {
		to = append(to, e.cfg.ChatNotifiers(d.Notify)...)
	}
	inc.ToldAt = now // also when there is no chat to tell: the next look is a period away
	if len(to) == 0 {
		return true
	}
	e.sent++
	n := buildNotification(e.cfg, inc, notify.ActionTrigger, "reminder: still open after "+humanAgo(now.Sub(inc.Opened)), e.states, now, e.sent)
	n.ID = fmt.Sprintf("%s%sremind|%d.%d", inc.Key, commsMark, now.UnixNano(), e.sent)
	return e.enqueueComms(now, inc, n, uniqueNames(to), fmt.Sprintf("reminder (every %s) sent to", humanAgo(every)))
}

// commsResolved tells comms.notify that an incident it was told an update is due for
// has resolved: the final customer update is the last one due.
func (e *Engine) commsResolved(now time.Time, inc *Incident) {
	c := e.cfg.Comms
	if c == nil || len(c.Notify) == 0 || inc.CommsDueAt.IsZero() || !e.peers.FirstSender(e.view(), inc.Key) {
		return
	}
	summary := fmt.Sprintf("[RESOLVED] %s after %s: post the final customer update", scopeLabel(inc), humanAgo(now.Sub(inc.Opened)))
	n := e.commsNotification(now, inc, notify.ActionResolve, "resolved", summary)
	n.Details["text"] = "Post it: picket update post " + inc.Key + " --status resolved --text '…'"
	e.enqueueComms(now, inc, n, c.Notify, "resolved sent to")
}

// humanAgo: "45s", "14m", "2h", "3h12m" (rounded down).
func humanAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Truncate(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d%time.Hour < time.Minute:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func uniqueNames(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
