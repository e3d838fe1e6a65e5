package fleet

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/alert"
)

// Note marks pages sent by a vantage that no peer can confirm.
func (f *Member) Note(v alert.EngineView) string {
	if _, isolated, since := f.alone(); isolated {
		return fmt.Sprintf("sent by an isolated vantage (%s has not heard a majority of the fleet for %s)", f.Member(v), since.Round(time.Second))
	}
	return ""
}

// Details is the fleet's part of a notification's evidence.
func (f *Member) Details(v alert.EngineView, inc *alert.Incident) map[string]any {
	live := f.Fleet.LiveVantages()
	seen := map[string]string{}
	for i, id := range inc.Targets {
		if i == alert.MaxDetailTargets {
			break
		}
		seen[id] = f.votesText(id, live)
	}
	_, isolated, _ := f.alone()
	return map[string]any{"sender": f.Member(v), "quorum": f.quorum, "live_vantages": live, "isolated": isolated, "seen_by": seen}
}

func (f *Member) Status(v alert.EngineView) *alert.FleetStatus {
	fs := f.Fleet.Status()
	fs.Quorum, fs.QuorumSetting = f.effectiveQuorum(), f.Quorum
	fs.AloneAfter = f.AloneAfter.String()
	alone, isolated, since := f.alone()
	fs.Alone, fs.Isolated = alone, isolated
	if alone {
		fs.AloneSince = v.Now().Add(-since).UTC()
	}
	return &fs
}

// Snapshot fills the fleet's part of a status snapshot.
func (f *Member) Snapshot(v alert.EngineView, st *alert.Status) {
	st.Fleet = f.Status(v)
	live := f.Fleet.LiveVantages()
	st.Votes = map[string]map[string]string{}
	best := map[[2]string]int{}
	for i := range st.Targets {
		tv := &st.Targets[i]
		tv.Votes = f.votesText(tv.Target, live)
		if tv.Votes == "" {
			continue
		}
		n := f.votes[tv.Target].Down + f.votes[tv.Target].Degraded
		cell := [2]string{tv.Product, tv.Region}
		if n <= best[cell] {
			continue
		}
		best[cell] = n
		if st.Votes[tv.Product] == nil {
			st.Votes[tv.Product] = map[string]string{}
		}
		st.Votes[tv.Product][tv.Region] = tv.Votes
	}
}
