package alert

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
	"github.com/picket-dev/picket/probe/expect"
)

// ConditionCertExpiry is a certificate near expiry (cert_min_days): a warning kept
// apart from a target's up/down state. Its incidents are of target scope, one per
// warned target, never widened into a region or global outage and never absorbed into
// one (a target both down and warned has both incidents), and are routed like degraded.
const ConditionCertExpiry = "cert_expiry"

// CertWarning is what a target state keeps of its latest result's certificate warning.
// A certificate does not flap: it is set while the latest result carries it and cleared
// by a result without it, with no thresholds.
type CertWarning struct {
	Step     string    `json:"step"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	MinDays  int       `json:"min_days"`
	Subject  string    `json:"subject,omitempty"`
	Issuer   string    `json:"issuer,omitempty"`
	Since    time.Time `json:"since"` // the first result that carried it
}

// Text is the warning as people read it: "certificate expires in 9 days (2026-12-12)".
func (w *CertWarning) Text() string {
	return fmt.Sprintf("certificate expires in %s (%s)", expect.Days(w.DaysLeft), w.NotAfter.UTC().Format(time.DateOnly))
}

// CertKey is the dedup key of a target's certificate warning.
func CertKey(target string) string { return "picket/cert/" + target }

// warningOnly reports whether a condition is a warning rather than an outage: routed
// to chat and webhooks only unless alerting.degraded is "page", of warning severity,
// and left out of the banner and scope.
func warningOnly(condition string) bool {
	return condition == ConditionDegraded || condition == ConditionCertExpiry
}

// standsApart reports whether incidents of the condition are reconciled on their own:
// they neither explain nor are explained by incidents of other conditions.
func standsApart(condition string) bool { return condition == ConditionCertExpiry }

// applyCert takes the result's certificate warning into the state. moved reports that
// the warning appeared or went (incidents need a look), changed that anything about it
// did (the state needs saving).
func (s *TargetState) applyCert(r *probe.Result) (moved, changed bool) {
	w := r.EarliestCertWarning()
	if w == nil {
		moved = s.Cert != nil
		s.Cert = nil
		return moved, moved
	}
	next := &CertWarning{Step: w.Step, NotAfter: w.NotAfter.UTC(), DaysLeft: w.DaysLeft, MinDays: w.MinDays,
		Subject: w.Subject, Issuer: w.Issuer, Since: r.Started}
	if s.Cert == nil {
		s.Cert = next
		return true, true
	}
	next.Since = s.Cert.Since
	changed = *next != *s.Cert
	s.Cert = next
	return false, changed
}

// CertGroups makes one target-scope group per warned target, like DegradedGroups:
// told (to chat, by default), never widened.
func CertGroups(warned []Failing) []Group { return targetGroups(warned, ConditionCertExpiry) }

// certWarned lists the targets whose certificate warning alerting goes by: none under
// alerting.degraded "ignore"; in a fleet, only the targets this vantage probes.
func (e *Engine) certWarned() []Failing {
	if e.cfg.Alerting.Degraded == "ignore" {
		return nil
	}
	var out []Failing
	for id, s := range e.states {
		t := e.targets[id]
		if s.Cert == nil || t == nil || !e.probes(id) {
			continue
		}
		out = append(out, Failing{Target: id, Product: t.Product, Region: t.Region})
	}
	return out
}

// checksCert reports whether any step of the target has cert_min_days, so can warn.
func checksCert(t *config.Target) bool {
	for _, s := range t.Steps {
		if s.Checks.HasCertMinDays() {
			return true
		}
	}
	return false
}

// splitApart takes the groups of stand-apart conditions out of groups.
func splitApart(groups []Group) (rest, apart []Group) {
	for _, g := range groups {
		if standsApart(g.Condition) {
			apart = append(apart, g)
		} else {
			rest = append(rest, g)
		}
	}
	return rest, apart
}

// reconcileApart keeps exactly one open incident per stand-apart group: it opens the
// missing ones and resolves those whose group is gone. They are of target scope, so
// nothing widens, narrows or absorbs them.
func (m *Incidents) reconcileApart(now time.Time, groups []Group, priorities map[string]int) []Change {
	var changes []Change
	want := make(map[string]bool, len(groups))
	for _, g := range groups {
		want[g.Key()] = true
		if m.open[g.Key()] == nil {
			changes = append(changes, Change{ChangeOpened, m.openIncident(now, g, priorities)})
		}
	}
	for _, inc := range m.Open() {
		if standsApart(inc.Condition) && !want[inc.Key] {
			changes = append(changes, m.settle(now, inc, nil, nil)...) // nothing failing: resolved
		}
	}
	return changes
}

// certSummary is the one line of a certificate incident:
// "logs/home@eu1 certificate expires in 9 days (2026-12-12)".
func certSummary(inc *Incident, states map[string]*TargetState) string {
	if s := states[inc.Subject]; s != nil && s.Cert != nil {
		return inc.Subject + " " + s.Cert.Text()
	}
	return inc.Subject + " certificate no longer near expiry"
}

// certDetails is a certificate incident's evidence.
func certDetails(s *TargetState) map[string]any {
	if s == nil || s.Cert == nil {
		return nil
	}
	c := s.Cert
	d := map[string]any{
		"step": c.Step, "expires": c.NotAfter.UTC().Format(time.RFC3339), "days_left": c.DaysLeft,
		"min_days": c.MinDays, "since": c.Since.UTC().Format(time.RFC3339),
	}
	if c.Subject != "" {
		d["subject"] = c.Subject
	}
	if c.Issuer != "" {
		d["issuer"] = c.Issuer
	}
	return d
}

// certView is what the status snapshot shows of a target's warning.
func certView(s *TargetState) (expires *time.Time, warning string) {
	if s == nil || s.Cert == nil {
		return nil, ""
	}
	t := s.Cert.NotAfter.UTC()
	return &t, s.Cert.Text()
}
