package statuspage

import (
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/internal/store"
)

// cellUptime is one component's uptime: the share of its journeys' results that
// passed (degraded counts as a pass) over 24 hours, 30 and 90 days, and a bar of the
// last 90 days.
type cellUptime struct {
	Day, Month, Quarter string // "99.95%", or "no data"
	Bar                 barView
}

// uptimeDays is the middle window.
const uptimeDays = 30

// uptimeOf reads every cell's targets' history: two reads per target.
func uptimeOf(src historyReader, cells alert.Cells, now time.Time) (map[alert.Cell]cellUptime, error) {
	day, _ := windowFor("24h", now)
	quarter, _ := windowFor("90d", now)
	monthFrom := quarter.to.Add(-uptimeDays * 24 * time.Hour)
	out := make(map[alert.Cell]cellUptime, len(cells))
	for c, targets := range cells {
		var fine, coarse []store.Bucket
		for _, t := range targets {
			f, q, err := readWindows(src, t, day, quarter)
			if err != nil {
				return nil, err
			}
			fine, coarse = addBuckets(fine, f), addBuckets(coarse, q)
		}
		var month counts
		for _, b := range coarse {
			if !b.Start.Before(monthFrom) {
				month = month.add(counts{b.Up, b.Degraded, b.Down})
			}
		}
		bar := dailyBar(coarse)
		out[c] = cellUptime{Day: fineBar(fine).Percent, Month: month.percent(), Quarter: bar.Percent, Bar: bar}
	}
	return out, nil
}

// addBuckets adds b's counts into sum slot by slot (one window: the same slots).
func addBuckets(sum, b []store.Bucket) []store.Bucket {
	if sum == nil {
		return append([]store.Bucket(nil), b...)
	}
	for i := range min(len(sum), len(b)) {
		sum[i].Up += b[i].Up
		sum[i].Degraded += b[i].Degraded
		sum[i].Down += b[i].Down
	}
	return sum
}
