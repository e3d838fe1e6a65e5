package alert

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// maxDetailTargets bounds custom_details: PagerDuty takes 512 KB, an on-call reads 20.
const maxDetailTargets = 50

// scopeLabel is the start of every summary: the width first, as DESIGN.md asks.
func scopeLabel(inc *Incident) string {
	switch inc.Scope {
	case ScopeGlobal:
		return "[GLOBAL]"
	case ScopeRegion:
		return "[REGION " + inc.Subject + "]"
	case ScopeProduct:
		return "[PRODUCT " + inc.Subject + "]"
	}
	return inc.Subject
}

// summarize writes the one line a pager shows.
func summarize(cfg *config.Config, inc *Incident, states map[string]*TargetState) string {
	if inc.Condition == ConditionCertExpiry {
		return certSummary(inc, states)
	}
	n := len(inc.Targets)
	switch inc.Scope {
	case ScopeGlobal:
		return fmt.Sprintf("[GLOBAL] Platform outage: %d of %d regions (%s); products %s; %d targets failing",
			len(inc.Regions), len(cfg.Regions), strings.Join(inc.Regions, ", "), strings.Join(inc.Products, ", "), n)
	case ScopeRegion:
		return fmt.Sprintf("[REGION %s] %s: %s down; %d targets failing", inc.Subject, regionTitle(cfg, inc.Subject),
			strings.Join(inc.Products, ", "), n)
	case ScopeProduct:
		return fmt.Sprintf("[PRODUCT %s] %s down in %d regions (%s); %d targets failing", inc.Subject,
			productTitle(cfg, inc.Subject), len(inc.Regions), strings.Join(inc.Regions, ", "), n)
	}
	reason := ""
	if s := states[inc.Subject]; s != nil {
		reason = s.LastError
	}
	return fmt.Sprintf("%s %s: %s", inc.Subject, inc.Condition, reason)
}

func regionTitle(cfg *config.Config, name string) string {
	for _, r := range cfg.Regions {
		if r.Name == name {
			return r.Title
		}
	}
	return name
}

func productTitle(cfg *config.Config, name string) string {
	for _, p := range cfg.Products {
		if p.Name == name {
			return p.Title
		}
	}
	return name
}

// buildNotification turns an incident into what notifiers send.
// seq tells apart notifications of one key and action made at one instant (a trigger
// and its widening): the outbox counts a notification's parts by id.
func buildNotification(cfg *config.Config, inc *Incident, action, note string, states map[string]*TargetState, now time.Time, seq uint64) notify.Notification {
	summary := summarize(cfg, inc, states)
	if note != "" {
		summary += " — " + note
	}
	n := notify.Notification{
		ID:       fmt.Sprintf("%s|%s|%d.%d", inc.Key, action, now.UnixNano(), seq),
		Action:   action,
		DedupKey: inc.Key,
		Scope:    inc.Scope,
		Priority: inc.Priority,
		Subject:  inc.Subject,
		Summary:  summary,
		Severity: Severity(inc),
		Source:   cfg.Vantage,
		Created:  now.UTC(),
		Opened:   inc.Opened.UTC(),
		Details:  details(cfg, inc, states),
	}
	if len(inc.Products) == 1 {
		n.Component = inc.Products[0]
	}
	if len(inc.Regions) == 1 {
		n.Group = inc.Regions[0]
	}
	if inc.Scope == ScopeTarget {
		if s := states[inc.Subject]; s != nil {
			n.Class = s.Journey
		}
	}
	if cfg.Alerting.StatusURL != "" {
		base := strings.TrimRight(cfg.Alerting.StatusURL, "/")
		n.Links = []notify.Link{
			{Href: base + "/", Text: "Status matrix"},
			{Href: base + "/api/v1/incidents/" + urlKey(inc.Key) + "/timeline", Text: "Incident timeline"},
		}
		addScreenshots(&n, base, inc, states)
	}
	return n
}

// maxScreenshotLinks bounds the screenshots a page links to: the first failing targets'.
const maxScreenshotLinks = 3

// addScreenshots links the failure screenshots of the incident's first targets (served
// by the status page), and shows them as images where the receiver takes images:
// PagerDuty shows only images served over HTTPS.
func addScreenshots(n *notify.Notification, base string, inc *Incident, states map[string]*TargetState) {
	for _, id := range inc.Targets {
		if len(n.Images) == maxScreenshotLinks {
			break
		}
		s := states[id]
		if s == nil || s.LastScreenshot == "" || s.Last.Status == "up" {
			continue
		}
		href := ScreenshotURL(base, s.LastScreenshot)
		n.Links = append(n.Links, notify.Link{Href: href, Text: "Screenshot: " + id})
		if strings.HasPrefix(base, "https://") {
			n.Images = append(n.Images, notify.Image{Src: href, Href: href, Alt: "Screenshot of " + id + " when it failed"})
		}
	}
}

// ScreenshotURL is where the status page at base serves a screenshot.
func ScreenshotURL(base, name string) string {
	return strings.TrimRight(base, "/") + "/screenshots/" + url.PathEscape(name)
}

// urlKey makes a dedup key safe in a path segment.
func urlKey(key string) string { return strings.NewReplacer("/", "~", "@", "%40").Replace(key) }

// details is the evidence: which targets, since when, their last errors and timings, and
// the matrix of products x regions. It never carries a secret: errors were redacted by
// the prober, and nothing else here comes from secrets.
func details(cfg *config.Config, inc *Incident, states map[string]*TargetState) map[string]any {
	targets := make([]map[string]any, 0, min(len(inc.Targets), maxDetailTargets))
	for i, id := range inc.Targets {
		if i == maxDetailTargets {
			break
		}
		s := states[id]
		if s == nil {
			continue
		}
		t := map[string]any{
			"target": id, "status": s.Last.Status, "error": s.LastError, "since": s.FailingFrom.UTC().Format(time.RFC3339),
			"failed_step": s.Last.FailedStep, "duration_ms": s.Last.Duration.Milliseconds(), "tries": s.Last.Tries,
		}
		if s.LastScreenshot != "" && cfg.Alerting.StatusURL != "" {
			t["screenshot"] = ScreenshotURL(cfg.Alerting.StatusURL, s.LastScreenshot)
		} else if s.LastScreenshot != "" {
			t["screenshot"] = s.LastScreenshot
		}
		targets = append(targets, t)
	}
	d := map[string]any{
		"scope":         inc.Scope,
		"opened":        inc.Opened.UTC().Format(time.RFC3339),
		"regions":       inc.Regions,
		"products":      inc.Products,
		"targets_total": len(inc.Targets),
		"targets":       targets,
		"matrix":        Matrix(cfg, states),
		"vantage":       cfg.Vantage,
	}
	if inc.AbsorbedInto != "" {
		d["part_of"] = inc.AbsorbedInto
	}
	if inc.Condition == ConditionCertExpiry {
		d["certificate"] = certDetails(states[inc.Subject])
	}
	return d
}

// Matrix is products x regions -> up, degraded, down or no_data (the worst target wins).
func Matrix(cfg *config.Config, states map[string]*TargetState) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, t := range cfg.Targets {
		row := m[t.Product]
		if row == nil {
			row = map[string]string{}
			m[t.Product] = row
		}
		row[t.Region] = worse(row[t.Region], cellStatus(states[t.ID]))
	}
	return m
}

func cellStatus(s *TargetState) string {
	switch {
	case s == nil || s.Runs == 0 && s.State == "":
		return "no_data"
	case s.State == StateFiring && s.Condition == ConditionDown:
		return "down"
	case s.State == StateFiring:
		return "degraded"
	case s.Last.Status == "degraded":
		return "degraded"
	case s.Last.Status == "":
		return "no_data"
	}
	return "up"
}

var cellRank = map[string]int{"": -1, "no_data": 0, "up": 1, "degraded": 2, "down": 3}

func worse(a, b string) string {
	if cellRank[b] > cellRank[a] {
		return b
	}
	return a
}
