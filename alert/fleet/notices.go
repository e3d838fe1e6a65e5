package fleet

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/alert/notify"
)

// Notice is news about the fleet itself: a vantage gone silent or back, this vantage
// isolated or not. One live vantage sends each, and records it (RecordPage) so that no
// other repeats it.
type Notice struct {
	Key     string // the dedup key: picket/vantage/<member>, picket/isolated/<vantage>
	Subject string
	Open    bool // trigger; false: resolve
	Summary string
	Details map[string]any
}

// Notices is what this vantage has to tell about the fleet now, given alone_after: its
// own isolation, then the members gone silent or back. Called about once a second.
func (f *GossipFleet) Notices(aloneAfter time.Duration) []Notice {
	var out []Notice
	alone, since := f.Alone()
	if n, ok := f.isolationNotice(alone && since >= aloneAfter, since); ok {
		out = append(out, n)
	}
	if alone {
		return out // cut off: the silence is ours, not theirs
	}
	for _, m := range f.g.Members() {
		if m.Self {
			continue
		}
		key := "picket/vantage/" + m.Name
		rec, known := f.g.Page(key)
		// Silent once dead for alone_after (no longer retained), as losses are believed
		// no faster than being alone: a cut-off view loses its peers one by one, and
		// until the last is gone it is not alone yet and would report the first.
		silent := m.State == StateDead && !m.Retained
		if silent == (known && rec.Open) {
			continue
		}
		// The subject does not rank for its own notice: it is back, but it is the news.
		if f.rank(key, func(n string) bool { return n != m.Name && f.g.Reported(n) && !f.abstains(n) }) != 0 {
			continue
		}
		summary := fmt.Sprintf("[VANTAGE %s] silent since %s: the fleet has not heard from it", m.Name, m.LastHeard.UTC().Format(time.RFC3339))
		if !silent {
			summary = fmt.Sprintf("[VANTAGE %s] back (%s)", m.Name, m.State)
		}
		out = append(out, Notice{Key: key, Subject: m.Name, Open: silent, Summary: summary,
			Details: map[string]any{"vantage": m.Name, "state": m.State, "last_heard": m.LastHeard.UTC(), "addr": m.Addr}})
	}
	return out
}

// isolationNotice says once that this vantage is cut off from the fleet's majority for
// longer than alone_after, and pages on its own evidence; it resolves when that ends. In
// a fleet of two it is also the only word that the other vantage is gone.
func (f *GossipFleet) isolationNotice(isolated bool, since time.Duration) (Notice, bool) {
	key := "picket/isolated/" + f.vantage
	rec, known := f.g.Page(key)
	if isolated == (known && rec.Open) {
		return Notice{}, false
	}
	// One notice per vantage: of its shards, the first for the key sends it.
	if f.rank(key, func(n string) bool { return vantageOf(n) == f.vantage && f.g.Reported(n) }) != 0 {
		return Notice{}, false
	}
	summary := fmt.Sprintf("[ISOLATED %s] has not heard a majority of the fleet for %s: it pages on its own evidence", f.vantage, since.Round(time.Second))
	if !isolated {
		summary = fmt.Sprintf("[ISOLATED %s] hears the fleet again", f.vantage)
	}
	return Notice{Key: key, Subject: f.vantage, Open: isolated, Summary: summary, Details: map[string]any{"vantage": f.vantage}}, true
}

// Notification is the notice as the outbox sends it, made at now by member of vantage.
func (n Notice) Notification(vantage, member string, now time.Time) notify.Notification {
	action := notify.ActionResolve
	if n.Open {
		action = notify.ActionTrigger
	}
	n.Details["reported_by"] = member
	return notify.Notification{
		ID: fmt.Sprintf("%s|%s|%d", n.Key, action, now.UnixNano()), Action: action,
		DedupKey: n.Key, Scope: "vantage", Subject: n.Subject, Summary: n.Summary,
		Severity: notify.SeverityWarning, Source: vantage, Created: now.UTC(), Details: n.Details,
	}
}
