package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate adapts the cluster to memberlist's callbacks. memberlist may call these while
// holding its own locks, so they only take the cluster's lock and never call memberlist.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
	_ memberlist.PingDelegate  = delegate{}
)

func (d delegate) NodeMeta(limit int) []byte { return nil }

// NotifyMsg receives one broadcast: a verdict change, a page record or a leave notice.
// News to us is passed on, so that it spreads epidemically rather than only from its
// origin.
func (d delegate) NotifyMsg(b []byte) {
	if len(b) > 0 {
		switch b[0] {
		case kindBye:
			d.notifyBye(b)
			return
		case kindPage:
			d.notifyPage(b)
			return
		}
	}
	ch, err := decodeDelta(b)
	if err != nil {
		d.c.logger.Warn("cluster: dropped a malformed verdict change", "err", err)
		return
	}
	if d.c.applyDelta(ch) {
		d.c.queue.QueueBroadcast(newBroadcast(ch.member, ch.target, append([]byte(nil), b...)))
	}
}

func (d delegate) notifyBye(b []byte) {
	msg, err := decodeBye(b)
	if err != nil {
		d.c.logger.Warn("cluster: dropped a malformed leave notice", "err", err)
		return
	}
	if d.c.memberLeaving(msg) {
		d.c.queue.QueueBroadcast(&broadcast{name: "bye\x00" + msg.member, msg: append([]byte(nil), b...)})
	}
}

func (d delegate) notifyPage(b []byte) {
	p, err := decodePage(b)
	if err != nil {
		d.c.logger.Warn("cluster: dropped a malformed page record", "err", err)
		return
	}
	if d.c.applyPage(p) {
		d.c.queue.QueueBroadcast(newPageBroadcast(p.Key, append([]byte(nil), b...)))
	}
}

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(join bool) []byte { return d.c.encodeState() }

func (d delegate) MergeRemoteState(buf []byte, join bool) {
	st, err := decodeState(buf)
	if err != nil {
		d.c.logger.Warn("cluster: dropped a malformed state from a peer", "err", err)
		return
	}
	d.c.mergeState(st)
}

func (d delegate) NotifyJoin(n *memberlist.Node) {
	d.c.memberAlive(n.Name, n.Address())
}

// NotifyLeave cannot tell a member that left from one that died (memberlist keeps that in
// its private node state), so the member's own leave notice decides (memberLeaving).
func (d delegate) NotifyLeave(n *memberlist.Node) {
	d.c.memberGone(n.Name, StateDead)
}

func (d delegate) NotifyUpdate(n *memberlist.Node) { d.c.heard(n.Name) }

func (d delegate) AckPayload() []byte { return nil }

func (d delegate) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	d.c.heard(n.Name)
}

// broadcast is one message in memberlist's transmit queue; a newer one of the same name
// (a verdict change of the same member and target, a page record of the same key, a
// leave notice of the same member) replaces an older one still queued.
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func newBroadcast(member, target string, msg []byte) *broadcast {
	return &broadcast{name: member + "\x00" + target, msg: msg}
}

// newPageBroadcast names a page record by its key, apart from verdict changes: their
// names start with a member name, which is not empty.
func newPageBroadcast(key string, msg []byte) *broadcast {
	return &broadcast{name: "\x00page\x00" + key, msg: msg}
}

func (b *broadcast) Name() string { return b.name }

func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*broadcast)
	return ok && ob.name == b.name
}

func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
