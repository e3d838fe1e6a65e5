package daemon

import (
	"context"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/cluster"
	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
)

// clusterGossip adapts a cluster member to the fleet protocol's gossip layer
// (fleet.Gossip): the cluster's types as the fleet's, and nothing more.
type clusterGossip struct{ c *cluster.Cluster }

var _ fleet.Gossip = clusterGossip{}

// newFleet is the fleet protocol's view of the cluster, for vantage (its shards share
// it); clk nil: the real clock.
func newFleet(c *cluster.Cluster, vantage string, clk clock.Clock) *fleet.GossipFleet {
	return fleet.NewGossipFleet(clusterGossip{c}, vantage, clk)
}

func (g clusterGossip) Name() string                      { return g.c.Name() }
func (g clusterGossip) SetLocal(keys map[string]bool)     { g.c.SetLocal(keys) }
func (g clusterGossip) Generation() uint64                { return g.c.Generation() }
func (g clusterGossip) IsLive(member string) bool         { return g.c.IsLive(member) }
func (g clusterGossip) Reported(member string) bool       { return g.c.Reported(member) }
func (g clusterGossip) Says(member, key string) bool      { return g.c.Says(member, key) }
func (g clusterGossip) Views() map[string][]string        { return g.c.Views() }
func (g clusterGossip) RecordPage(key string, open bool)  { g.c.RecordPage(key, open) }
func (g clusterGossip) ConfirmPage(key string, open bool) { g.c.ConfirmPage(key, open) }

func (g clusterGossip) Tally() map[string]int {
	votes, _ := g.c.Tally()
	return votes
}

func (g clusterGossip) Page(key string) (fleet.Page, bool) {
	p, ok := g.c.Page(key)
	return fleet.Page{Open: p.Open, Confirmed: p.Confirmed, By: p.By, At: p.At}, ok
}

// memberStates are the cluster's member states as the fleet's.
var memberStates = map[string]string{
	cluster.StateAlive: fleet.StateAlive, cluster.StateSuspect: fleet.StateSuspect,
	cluster.StateDead: fleet.StateDead, cluster.StateLeft: fleet.StateLeft,
}

func (g clusterGossip) Members() []fleet.GossipMember {
	ms := g.c.Members()
	out := make([]fleet.GossipMember, len(ms))
	for i, m := range ms {
		out[i] = fleet.GossipMember{Name: m.Name, Addr: m.Addr, State: memberStates[m.State], LastHeard: m.LastHeard,
			Self: m.Self, Reported: m.Reported, Retained: m.Retained}
	}
	return out
}

// startCluster joins the fleet, with the page records kept in st (so that a fleet
// restarted all at once still knows what it paged); o.WrapGossip, if set, wraps the
// gossip transport (tests cut a vantage off with it).
func startCluster(cc *config.Cluster, o Options, st cluster.PageStore) (*cluster.Cluster, error) {
	var secret []byte
	if k := cc.Secret.Reveal(); k != "" {
		secret = []byte(k)
	}
	return cluster.Start(cluster.Options{
		Name: cc.Member, Bind: cc.Bind, Advertise: cc.Advertise, Peers: cc.Peers, Secret: secret,
		Logger:         o.Logger.With("component", "cluster"),
		GossipInterval: cc.GossipInterval, ProbeInterval: cc.ProbeInterval, PushPullInterval: cc.PushPullInterval,
		WrapTransport:     o.WrapGossip,
		Store:             st,
		ReconnectInterval: reconnectEvery(cc),
		Retain:            cc.AloneAfter,
	})
}

// reconnectEvery: a healed partition rejoins within 10 s, or within a push-pull period
// when that is shorter (tests).
func reconnectEvery(cc *config.Cluster) time.Duration {
	if cc.PushPullInterval > 0 && cc.PushPullInterval < 10*time.Second {
		return cc.PushPullInterval
	}
	return 10 * time.Second
}

// engineConfig is what the engine judges: in a fleet, every target (the vantages'
// shared verdicts cover the targets of other shards too); alone, the probed ones.
func engineConfig(cfg *config.Config) *config.Config {
	if cfg.Cluster == nil || cfg.Shard == nil {
		return cfg
	}
	out := *cfg
	out.Targets = cfg.AllTargets
	return &out
}

// enginePeers is the engine's seam to the fleet; nil (Solo) without a cluster.
func enginePeers(cfg *config.Config, f *fleet.GossipFleet) alert.Peers {
	if f == nil {
		return nil
	}
	return fleet.New(fleet.Options{Fleet: f, Quorum: cfg.Cluster.Quorum, AloneAfter: cfg.Cluster.AloneAfter, TakeoverAfter: cfg.Cluster.TakeoverAfter})
}

// watchFleet makes the fleet monitor its own members: a vantage that went silent (dead,
// not departed) is a notice, sent once by one live vantage, and resolved when it is back.
func (d *daemon) watchFleet(ctx context.Context) {
	if d.cluster == nil {
		return
	}
	clock.Every(ctx, d.clock, time.Second, nil, d.checkMembers)
}

// checkMembers sends the fleet's notices due now (fleet.GossipFleet.Notices).
func (d *daemon) checkMembers() {
	for _, n := range d.fleet.Notices(d.config().Cluster.AloneAfter) {
		d.notice(n)
	}
}

// notice queues a fleet notice (trigger or resolve) to cluster.notify and records it, so
// that no other vantage repeats it; without notify it is only logged and recorded.
func (d *daemon) notice(fn fleet.Notice) {
	cfg := d.config()
	d.log.Warn("fleet: "+fn.Summary, "key", fn.Key)
	if len(cfg.Cluster.Notify) == 0 {
		d.cluster.RecordPage(fn.Key, fn.Open)
		return
	}
	n := fn.Notification(cfg.Vantage, cfg.Cluster.Member, d.clock.Now())
	// Queued and recorded under pageMu: its confirmation (OnResult) waits for the record.
	d.pageMu.Lock()
	defer d.pageMu.Unlock()
	if err := d.outbox.Enqueue(notify.Delivery{Notification: n, Notify: cfg.Cluster.Notify}); err != nil {
		d.log.Error("could not queue a fleet notice; trying again in a second", "key", fn.Key, "err", err)
		return
	}
	d.cluster.RecordPage(fn.Key, fn.Open)
}

// clusterCollector reads the cluster at scrape time.
type clusterCollector struct {
	c                                      *cluster.Cluster
	engine                                 *alert.Engine
	members, alone, isolated, quorum, sent *prometheus.Desc
	received, live                         *prometheus.Desc
}

func newClusterCollector(c *cluster.Cluster, e *alert.Engine) *clusterCollector {
	return &clusterCollector{
		c: c, engine: e,
		members:  prometheus.NewDesc("picket_cluster_members", "Members of the fleet by state, as this vantage sees them (itself included).", []string{"state"}, nil),
		live:     prometheus.NewDesc("picket_cluster_live_vantages", "Live vantages, this one included (shards of one vantage count once).", nil, nil),
		alone:    prometheus.NewDesc("picket_cluster_alone", "1 while no peer is live.", nil, nil),
		isolated: prometheus.NewDesc("picket_cluster_isolated", "1 while alone for longer than alone_after: pages go out on this vantage's evidence alone.", nil, nil),
		quorum:   prometheus.NewDesc("picket_cluster_quorum", "Vantages that must agree before a target counts as failing, now.", nil, nil),
		sent:     prometheus.NewDesc("picket_cluster_gossip_sent_bytes_total", "Bytes of gossip sent (UDP packets and TCP streams).", nil, nil),
		received: prometheus.NewDesc("picket_cluster_gossip_received_bytes_total", "Bytes of gossip received.", nil, nil),
	}
}

func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.members, cc.live, cc.alone, cc.isolated, cc.quorum, cc.sent, cc.received} {
		ch <- d
	}
}

func (cc *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{cluster.StateAlive: 0, cluster.StateSuspect: 0, cluster.StateDead: 0, cluster.StateLeft: 0}
	for _, m := range cc.c.Members() {
		counts[m.State]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(cc.members, prometheus.GaugeValue, float64(n), state)
	}
	fs := cc.engine.FleetStatus()
	if fs != nil {
		ch <- prometheus.MustNewConstMetric(cc.live, prometheus.GaugeValue, float64(fs.Live))
		ch <- prometheus.MustNewConstMetric(cc.alone, prometheus.GaugeValue, boolFloat(fs.Alone))
		ch <- prometheus.MustNewConstMetric(cc.isolated, prometheus.GaugeValue, boolFloat(fs.Isolated))
		ch <- prometheus.MustNewConstMetric(cc.quorum, prometheus.GaugeValue, float64(fs.Quorum))
	}
	st := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(cc.sent, prometheus.CounterValue, float64(st.SentBytes))
	ch <- prometheus.MustNewConstMetric(cc.received, prometheus.CounterValue, float64(st.ReceivedBytes))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// WrapGossip is the type of Options.WrapGossip.
type WrapGossip = func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
