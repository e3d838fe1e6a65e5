package statuspage

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/fleet"
)

// votesTitle explains a vote text ("down from 2 of 3") wherever the page shows one.
const votesTitle = "vantages that see this failing, of the live ones"

// notInCluster is the 404 of /api/v1/cluster on a vantage without cluster: settings.
const notInCluster = "this vantage is not in a cluster (no cluster: in its config)"

// memberStates are the states a member can be in; each has its own class (colour) on
// the page, and anything else gets m-unknown: the state is text from the cluster.
var memberStates = []string{"alive", "suspect", "dead", "left"}

// degradedSuffix marks a vote for "degraded" rather than "down" in a member's list.
var degradedSuffix = fleet.Key("", fleet.Degraded)

// fleetView is the "Vantages" section.
type fleetView struct {
	Quorum  string // "Quorum 2 of 3 live vantages (majority)"
	Members []memberView
}

type memberView struct {
	Name, Addr, State, StateClass string
	Self                          bool
	LastHeard                     time.Time // zero: never heard
	Ago                           string    // "12s ago", relative to the snapshot
	Failing                       string    // "2" or "2 (1 degraded)"
	FailingList                   string    // the targets, for the tooltip
}

// fleetOf builds the section from the snapshot's fleet, nil when there is none.
func fleetOf(f *alert.FleetStatus, generated time.Time) *fleetView {
	if f == nil {
		return nil
	}
	v := &fleetView{Quorum: quorumLine(f)}
	for _, m := range f.Members {
		v.Members = append(v.Members, memberOf(m, generated))
	}
	return v
}

// quorumLine: app.js builds the same.
func quorumLine(f *alert.FleetStatus) string {
	line := fmt.Sprintf("Quorum %d of %d live vantages", f.Quorum, f.Live)
	if f.QuorumSetting == 0 {
		line += " (majority)"
	}
	return line
}

func memberOf(m alert.FleetMember, generated time.Time) memberView {
	class := "m-unknown"
	if slices.Contains(memberStates, m.State) {
		class = "m-" + m.State
	}
	mv := memberView{Name: m.Name, Addr: m.Addr, State: m.State, StateClass: class, Self: m.Self, LastHeard: m.LastHeard}
	if !m.LastHeard.IsZero() {
		mv.Ago = humanDuration(generated.Sub(m.LastHeard)) + " ago"
	}
	mv.Failing, mv.FailingList = failingOf(m.Failing)
	return mv
}

// failingOf counts the targets a member reports failing: an id is down, an id with the
// degraded suffix is degraded (a target listed both ways counts once, as down). app.js
// has the same.
func failingOf(ids []string) (count, list string) {
	condition := map[string]string{}
	var order []string
	for _, id := range ids {
		target, isDegraded := strings.CutSuffix(id, degradedSuffix)
		if _, seen := condition[target]; !seen {
			order = append(order, target)
			condition[target] = "degraded"
		}
		if !isDegraded {
			condition[target] = "down"
		}
	}
	degraded := 0
	lines := make([]string, 0, len(order))
	for _, target := range order {
		if condition[target] == "degraded" {
			degraded++
		}
		lines = append(lines, target+": "+condition[target])
	}
	count = fmt.Sprint(len(order))
	if degraded > 0 {
		count += fmt.Sprintf(" (%d degraded)", degraded)
	}
	return count, strings.Join(lines, "\n")
}

// fleetBanners: the lines that say this vantage decides on its own. app.js builds the same.
func fleetBanners(f *alert.FleetStatus) (alone, isolated string) {
	if f == nil {
		return "", ""
	}
	if f.Alone {
		alone = "This vantage is alone: no peer answers"
		if !f.AloneSince.IsZero() {
			alone += " since " + f.AloneSince.UTC().Format(timeLayout)
		}
		alone += "; it pages on its own evidence after " + f.AloneAfter
	}
	if f.Isolated {
		isolated = "This vantage is isolated: its pages say so"
	}
	return alone, isolated
}

// apiCluster answers the fleet as this vantage sees it.
func (h *Handler) apiCluster(w http.ResponseWriter, _ *http.Request) {
	f := h.src.Snapshot().Fleet
	if f == nil {
		writeError(w, h.scrub, http.StatusNotFound, notInCluster)
		return
	}
	// A copy with [] for empty lists, so that clients need not tell null from none.
	out := *f
	out.Members = make([]alert.FleetMember, len(f.Members))
	for i, m := range f.Members {
		m.Failing = nonNil(m.Failing)
		out.Members[i] = m
	}
	writeJSON(w, h.scrub, http.StatusOK, out)
}
