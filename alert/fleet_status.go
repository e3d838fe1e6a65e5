package alert

import "time"

// FleetStatus is the fleet of vantages as this one sees it (Status.Fleet; nil without a
// cluster:). It is what /api/v1/cluster answers and the status page's "Vantages" shows.
type FleetStatus struct {
	Member        string        `json:"member"`         // this instance
	Quorum        int           `json:"quorum"`         // vantages that must agree before a page, now
	QuorumSetting int           `json:"quorum_setting"` // cluster.quorum; 0: a majority of the live vantages
	Live          int           `json:"live"`           // live vantages, this one included
	Alone         bool          `json:"alone"`          // no peer is live
	AloneSince    time.Time     `json:"alone_since,omitzero"`
	Isolated      bool          `json:"isolated"` // alone for alone_after: pages on its own evidence
	AloneAfter    string        `json:"alone_after"`
	Members       []FleetMember `json:"members"` // this one first
}

// FleetMember is one vantage of the fleet and its view.
type FleetMember struct {
	Name      string    `json:"name"`
	Addr      string    `json:"addr"`
	State     string    `json:"state"` // alive | suspect | dead | left
	LastHeard time.Time `json:"last_heard,omitzero"`
	Self      bool      `json:"self"`
	Failing   []string  `json:"failing"` // the targets it says fail (ids; "#degraded" when only degraded)
}
