package daemon

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/testkit"
	"github.com/picket-dev/picket/probe/probetest"
)

// TestConfirmationPagesTheRegionWithinItsFirstRound: interval 30 s, the default
// thresholds (2 and 2) and the default group wait (30 s), on a fake clock that is
// moved only to the end of the first round. eu1 is down: each of its targets fails its
// first planned run, is run again at once (its second failure: firing), its region's
// and its journey's targets run at once, and the region's page goes out without
// waiting out the group wait; the clock never passes 30 s. Without confirmation runs
// the page came after the second round and the group wait: 60 to 90 s.
func TestConfirmationPagesTheRegionWithinItsFirstRound(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		wantPage    bool
	}{{"confirmation on (the default)", "", true}, {"confirmation off", "confirm: {enabled: false}\n", false}} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			fake := clock.NewFake(start)
			f := newFixture(t, c.extra)
			f.edit("interval: 300ms, timeout: 250ms, failure_threshold: 1, success_threshold: 1", "interval: 30s, timeout: 2s",
				"alerting: {group_wait: 0s}\n", "")
			f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
			base, stop := f.startWith(Options{Clock: fake})
			defer func() {
				if err := stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
			}()
			const key = "picket/region/eu1"
			fake.Set(start.Add(30 * time.Second)) // every target has run once, by its plan
			if !c.wantPage {
				time.Sleep(time.Second)
				if n := f.pd.Count(key, "trigger"); n != 0 {
					t.Fatalf("paged %s within the first round without confirmation runs", key)
				}
				return
			}
			testkit.WaitFor(t, 10*time.Second, "the region's page at 30s of the fake clock", func() bool { return f.pd.Count(key, "trigger") == 1 })
			for _, ev := range f.pd.Events() {
				if ev.Action == "trigger" && ev.DedupKey != key {
					t.Errorf("also paged %s: the first page must already have the region's scope", ev.DedupKey)
				}
			}
			code, tl := body(t, base+"/api/v1/incidents/picket~region~eu1/timeline")
			if code != http.StatusOK || !strings.Contains(tl, "scope confirmed") {
				t.Errorf("timeline (%d) does not say the scope was confirmed: %s", code, tl)
			}
		})
	}
}
