package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
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

// clusterFleet adapts a cluster member to what the engine needs. It counts vantages, not
// members: the shards of one vantage ("fsn1#0", "fsn1#1") each probe part of the targets
// and together give one verdict per target, and they can reach each other while cut off
// from every other vantage.
type clusterFleet struct {
	c       *cluster.Cluster
	vantage string
	clock   clock.Clock

	mu         sync.Mutex
	aloneSince time.Time // zero while a member of another vantage is live
}

var _ fleet.Fleet = (*clusterFleet)(nil)

func newFleet(c *cluster.Cluster, vantage string, clk clock.Clock) *clusterFleet {
	clk = clock.Or(clk)
	return &clusterFleet{c: c, vantage: vantage, clock: clk, aloneSince: clk.Now()}
}

func (f *clusterFleet) SetLocal(b fleet.Ballot)          { f.c.SetLocal(b.Keys()) }
func (f *clusterFleet) Generation() uint64               { return f.c.Generation() }
func (f *clusterFleet) RecordPage(key string, open bool) { f.c.RecordPage(key, open) }

func (f *clusterFleet) Tally() map[string]fleet.Count {
	votes, _ := f.c.Tally()
	return fleet.ParseTally(votes)
}

// abstains: the member gives no verdicts (its self-check fails).
func (f *clusterFleet) abstains(member string) bool { return f.c.Says(member, fleet.AbstainKey) }

// live: alive (or suspect: not yet declared dead) and its verdicts have arrived.
func live(m cluster.Member) bool {
	return (m.State == cluster.StateAlive || m.State == cluster.StateSuspect) && m.Reported
}

// counts: a member whose verdicts count: live, or dead for less than alone_after (its
// last verdicts stand meanwhile: the fleet believes a loss no faster than it believes
// being alone), and not abstaining. This one included.
func (f *clusterFleet) counts(m cluster.Member) bool {
	return (live(m) || m.Retained) && !f.abstains(m.Name)
}

// Position ranks this vantage among the members that may send: live, reported, not
// abstaining.
func (f *clusterFleet) Position(key string) int {
	return f.c.Rank(key, func(m string) bool { return f.c.Reported(m) && !f.abstains(m) })
}

func (f *clusterFleet) IsLive(member string) bool { return f.c.IsLive(member) }

// LiveVantages counts the vantages whose verdicts count.
func (f *clusterFleet) LiveVantages() int {
	seen := map[string]bool{}
	for _, m := range f.c.Members() {
		if f.counts(m) {
			seen[vantageOf(m.Name)] = true
		}
	}
	return len(seen)
}

// Alone: cut off from the fleet's majority. No member of another vantage is live (shards
// of this one do not keep it company), or the live vantages are no more than half of
// those known (dead ones included, departed ones not): the minority side of a partition
// must not judge for the fleet either.
func (f *clusterFleet) Alone() (bool, time.Duration) {
	known, seen, others := map[string]bool{}, map[string]bool{}, false
	for _, m := range f.c.Members() {
		if m.State == cluster.StateLeft {
			continue
		}
		v := vantageOf(m.Name)
		known[v] = true
		if m.Self || live(m) {
			seen[v] = true
			others = others || v != f.vantage
		}
	}
	alone := !others || 2*len(seen) <= len(known)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !alone:
		f.aloneSince = time.Time{}
		return false, 0
	case f.aloneSince.IsZero():
		f.aloneSince = f.clock.Now()
	}
	return true, f.clock.Now().Sub(f.aloneSince)
}

func vantageOf(member string) string {
	v, _, _ := strings.Cut(member, "#")
	return v
}

func (f *clusterFleet) Page(key string) (fleet.Page, bool) {
	p, ok := f.c.Page(key)
	return fleet.Page{Open: p.Open, Confirmed: p.Confirmed, By: p.By, At: p.At}, ok
}

func (f *clusterFleet) Status() alert.FleetStatus {
	views := f.c.Views()
	var st alert.FleetStatus
	for _, m := range f.c.Members() {
		if m.Self {
			st.Member = m.Name
		}
		failing := fleet.Shown(views[m.Name])
		st.Members = append(st.Members, alert.FleetMember{Name: m.Name, Addr: m.Addr, State: m.State, LastHeard: m.LastHeard.UTC(), Self: m.Self, Failing: failing})
	}
	st.Live = f.LiveVantages()
	return st
}

// pageRecords is the cluster's page records as the outbox hooks in package alert need
// them.
type pageRecords struct{ c *cluster.Cluster }

var _ fleet.PageRecords = pageRecords{}

func (p pageRecords) Name() string                      { return p.c.Name() }
func (p pageRecords) RecordPage(key string, open bool)  { p.c.RecordPage(key, open) }
func (p pageRecords) ConfirmPage(key string, open bool) { p.c.ConfirmPage(key, open) }
func (p pageRecords) Page(key string) (fleet.Page, bool) {
	rec, ok := p.c.Page(key)
	return fleet.Page{Open: rec.Open, Confirmed: rec.Confirmed, By: rec.By, At: rec.At}, ok
}

// confirmPage tells the fleet the paging service accepted a notification
// (fleet.ConfirmPage).
func confirmPage(c *cluster.Cluster, r notify.AttemptResult) { fleet.ConfirmPage(pageRecords{c}, r) }

// obsolete drops a queued notification another vantage has superseded
// (fleet.ObsoletePage).
func obsolete(c *cluster.Cluster, n notify.Notification) string {
	return fleet.ObsoletePage(pageRecords{c}, n)
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
func enginePeers(cfg *config.Config, f *clusterFleet) alert.Peers {
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
	t := clock.NewTicker(d.clock, time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			d.checkMembers()
		}
	}
}

func (d *daemon) checkMembers() {
	c := d.cluster
	alone, since := d.fleet.Alone()
	d.isolationNotice(alone && since >= d.config().Cluster.AloneAfter, since)
	if alone {
		return // cut off: the silence is ours, not theirs
	}
	for _, m := range c.Members() {
		if m.Self {
			continue
		}
		key := "picket/vantage/" + m.Name
		rec, known := c.Page(key)
		// Silent once dead for alone_after (no longer retained), as losses are believed
		// no faster than being alone: a cut-off view loses its peers one by one, and
		// until the last is gone it is not alone yet and would report the first.
		silent := m.State == cluster.StateDead && !m.Retained
		if silent == (known && rec.Open) {
			continue
		}
		// The subject does not rank for its own notice: it is back, but it is the news.
		if c.Rank(key, func(n string) bool { return n != m.Name && c.Reported(n) && !d.fleet.abstains(n) }) != 0 {
			continue
		}
		summary := fmt.Sprintf("[VANTAGE %s] silent since %s: the fleet has not heard from it", m.Name, m.LastHeard.UTC().Format(time.RFC3339))
		if !silent {
			summary = fmt.Sprintf("[VANTAGE %s] back (%s)", m.Name, m.State)
		}
		d.notice(key, m.Name, silent, summary, map[string]any{"vantage": m.Name, "state": m.State, "last_heard": m.LastHeard.UTC(), "addr": m.Addr})
	}
}

// isolationNotice says once that this vantage is cut off from the fleet's majority for
// longer than alone_after, and pages on its own evidence; it resolves when that ends. In
// a fleet of two it is also the only word that the other vantage is gone.
func (d *daemon) isolationNotice(isolated bool, since time.Duration) {
	c, vantage := d.cluster, d.fleet.vantage
	key := "picket/isolated/" + vantage
	rec, known := c.Page(key)
	if isolated == (known && rec.Open) {
		return
	}
	// One notice per vantage: of its shards, the first for the key sends it.
	if c.Rank(key, func(n string) bool { return vantageOf(n) == vantage && c.Reported(n) }) != 0 {
		return
	}
	summary := fmt.Sprintf("[ISOLATED %s] has not heard a majority of the fleet for %s: it pages on its own evidence", vantage, since.Round(time.Second))
	if !isolated {
		summary = fmt.Sprintf("[ISOLATED %s] hears the fleet again", vantage)
	}
	d.notice(key, vantage, isolated, summary, map[string]any{"vantage": vantage})
}

// notice queues a fleet notice (trigger or resolve) to cluster.notify and records it, so
// that no other vantage repeats it; without notify it is only logged and recorded.
func (d *daemon) notice(key, subject string, open bool, summary string, details map[string]any) {
	cfg := d.config()
	d.log.Warn("fleet: "+summary, "key", key)
	if len(cfg.Cluster.Notify) == 0 {
		d.cluster.RecordPage(key, open)
		return
	}
	action := notify.ActionResolve
	if open {
		action = notify.ActionTrigger
	}
	now := d.clock.Now()
	details["reported_by"] = cfg.Cluster.Member
	n := notify.Notification{
		ID: fmt.Sprintf("%s|%s|%d", key, action, now.UnixNano()), Action: action,
		DedupKey: key, Scope: "vantage", Subject: subject, Summary: summary,
		Severity: notify.SeverityWarning, Source: cfg.Vantage, Created: now.UTC(), Details: details,
	}
	// Queued and recorded under pageMu: its confirmation (OnResult) waits for the record.
	d.pageMu.Lock()
	defer d.pageMu.Unlock()
	if err := d.outbox.Enqueue(notify.Delivery{Notification: n, Notify: cfg.Cluster.Notify}); err != nil {
		d.log.Error("could not queue a fleet notice; trying again in a second", "key", key, "err", err)
		return
	}
	d.cluster.RecordPage(key, open)
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
