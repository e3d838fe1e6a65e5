package statuspage

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/internal/store"
)

// Segment statuses of an uptime bar.
const (
	segUp       = "up"       // every result up
	segDegraded = "degraded" // some slow or down, most not down
	segDown     = "down"     // at least half the results down
	segNone     = "none"     // no result
)

type uptimeView struct {
	Target       string
	Votes        string // with a cluster: "down from 2 of 3"
	Day, Quarter barView
}

type barView struct {
	Summary  string // for screen readers: "last 24 hours: 99.65% up"
	Percent  string
	Segments []segmentView
}

type segmentView struct{ Status, Tooltip string }

// SegmentsHTML writes the bar's segments without the template: a page has thousands,
// too many for its reflection (it took two thirds of the render time). Status is one
// of the seg constants and the tooltip is dates and counts, escaped all the same.
func (b barView) SegmentsHTML() template.HTML {
	var sb strings.Builder
	sb.Grow(len(b.Segments) * 40)
	for _, s := range b.Segments {
		sb.WriteString(`<i class="g-`)
		sb.WriteString(template.HTMLEscapeString(s.Status))
		sb.WriteString(`" title="`)
		sb.WriteString(template.HTMLEscapeString(s.Tooltip))
		sb.WriteString(`"></i>`)
	}
	return template.HTML(sb.String())
}

// addUptime reads two windows of history per target, for at most maxUptimeTargets.
// One failed read hides the bars (a note says why) but not the rest of the page.
func (h *Handler) addUptime(view *pageView, st alert.Status, now time.Time) {
	day, _ := windowFor("24h", now)
	quarter, _ := windowFor("90d", now)
	targets := st.Targets
	if len(targets) > maxUptimeTargets {
		view.UptimeMore = len(targets) - maxUptimeTargets
		targets = targets[:maxUptimeTargets]
	}
	for _, t := range targets {
		u, err := h.uptimeOf(t.Target, day, quarter)
		if err != nil {
			h.log.Warn("status page: read history", "target", t.Target, "err", err)
			view.UptimeErr = "Uptime history is unavailable: " + err.Error()
			view.Uptime = nil
			return
		}
		u.Votes = t.Votes
		view.Uptime = append(view.Uptime, u)
	}
}

func (h *Handler) uptimeOf(target string, day, quarter window) (uptimeView, error) {
	fine, coarse, err := readWindows(h.src, target, day, quarter)
	if err != nil {
		return uptimeView{}, err
	}
	return uptimeView{Target: target, Day: fineBar(fine), Quarter: dailyBar(coarse)}, nil
}

// historyReader is the history half of Source and PublicSource.
type historyReader interface {
	History(target string, from, to time.Time, step time.Duration) ([]store.Bucket, error)
}

// readWindows reads a target's history in the day's and the quarter's buckets: the two
// reads behind both pages' uptime.
func readWindows(src historyReader, target string, day, quarter window) (fine, coarse []store.Bucket, err error) {
	if fine, err = src.History(target, day.from, day.to, day.step); err != nil {
		return nil, nil, err
	}
	if coarse, err = src.History(target, quarter.from, quarter.to, quarter.step); err != nil {
		return nil, nil, err
	}
	return fine, coarse, nil
}

// fineBar: one segment per 5-minute bucket.
func fineBar(buckets []store.Bucket) barView {
	bar := barView{Segments: make([]segmentView, 0, len(buckets))}
	var sum counts
	for _, b := range buckets {
		c := counts{b.Up, b.Degraded, b.Down}
		sum = sum.add(c)
		tip := b.Start.UTC().Format("Jan 2 15:04") + ": " + c.describe()
		bar.Segments = append(bar.Segments, segmentView{Status: c.status(), Tooltip: tip})
	}
	bar.Percent = sum.percent()
	bar.Summary = "last 24 hours: " + sum.percentWords()
	return bar
}

// dailyBar: hour buckets added up per UTC day, one segment a day.
func dailyBar(buckets []store.Bucket) barView {
	var days []time.Time
	perDay := map[time.Time]counts{}
	for _, b := range buckets {
		s := b.Start.UTC()
		day := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, time.UTC)
		if _, seen := perDay[day]; !seen {
			days = append(days, day)
		}
		perDay[day] = perDay[day].add(counts{b.Up, b.Degraded, b.Down})
	}
	bar := barView{Segments: make([]segmentView, 0, len(days))}
	var sum counts
	for _, day := range days {
		c := perDay[day]
		sum = sum.add(c)
		tip := day.Format("2006-01-02") + ": no data"
		if c.total() > 0 {
			tip = day.Format("2006-01-02") + ": " + c.percentWords() + " (" + c.describe() + ")"
		}
		bar.Segments = append(bar.Segments, segmentView{Status: c.status(), Tooltip: tip})
	}
	bar.Percent = sum.percent()
	bar.Summary = fmt.Sprintf("last %d days: %s", historyDays, sum.percentWords())
	return bar
}

// counts of results: up, degraded, down.
type counts [3]int

func (c counts) add(o counts) counts { return counts{c[0] + o[0], c[1] + o[1], c[2] + o[2]} }
func (c counts) total() int          { return c[0] + c[1] + c[2] }

func (c counts) status() string {
	switch {
	case c.total() == 0:
		return segNone
	case 2*c[2] >= c.total():
		return segDown
	case c[1]+c[2] > 0:
		return segDegraded
	}
	return segUp
}

// describe names the non-zero counts: "12 up", "10 up, 2 down", "no data". Tooltips
// stay short: the page has hundreds of them.
func (c counts) describe() string {
	var parts []string
	for i, name := range [3]string{"up", "degraded", "down"} {
		if c[i] > 0 {
			parts = append(parts, strconv.Itoa(c[i])+" "+name)
		}
	}
	if len(parts) == 0 {
		return "no data"
	}
	return strings.Join(parts, ", ")
}

// percent of results that passed (degraded is a pass), rounded down so that one
// failure never shows as 100%.
func (c counts) percent() string {
	if c.total() == 0 {
		return "no data"
	}
	p := math.Floor(float64(c[0]+c[1])*10000/float64(c.total())) / 100
	return fmt.Sprintf("%.2f%%", p)
}

func (c counts) percentWords() string {
	if c.total() == 0 {
		return "no data"
	}
	return c.percent() + " up"
}
