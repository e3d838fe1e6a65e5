package statuspage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/probe"
)

// A certificate near expiry leaves the cell up and says so in its tooltip.
func TestPageCellShowsCertWarning(t *testing.T) {
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	r := newRig(t, smallPlatform, start)
	id := r.targetID("logs", "submit-and-read", "eu1")
	r.engine.Observe(probe.Result{Target: id, Product: "logs", Journey: "submit-and-read", Region: "eu1",
		Started: start, Status: probe.StatusUp, Tries: 1,
		CertWarnings: []probe.CertWarning{{Step: "get", NotAfter: start.Add(9*24*time.Hour + time.Hour), DaysLeft: 9, MinDays: 14}}})
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	c := cells(t, do(t, srv, "GET", "/", nil, nil).body)["logs"]["eu1"]
	if c.status != "up" || !strings.Contains(c.title, "submit-and-read: certificate expires in 9 days (2026-12-12)") {
		t.Errorf("cell %+v: want up, the warning in its tooltip", c)
	}
}
