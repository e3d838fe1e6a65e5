package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"time"
)

func (b *builder) buildCluster() {
	cs := b.f.Cluster
	if cs == nil {
		return
	}
	c := &Cluster{
		Member:           b.cfg.Vantage,
		Bind:             orDefault(cs.Bind, DefaultClusterBind),
		Advertise:        cs.Advertise,
		Peers:            cs.Peers,
		Quorum:           cs.Quorum,
		AloneAfter:       pickDur(cs.AloneAfter, nil, DefaultAloneAfter),
		TakeoverAfter:    pickDur(cs.TakeoverAfter, nil, DefaultTakeoverAfter),
		Notify:           b.notifierList(cs, "notify", cs.Notify),
		GossipInterval:   pickDur(cs.GossipInterval, nil, 0),
		ProbeInterval:    pickDur(cs.ProbeInterval, nil, 0),
		PushPullInterval: pickDur(cs.PushPullInterval, nil, 0),
	}
	if len(c.Notify) == 0 && b.cfg.SelfCheck != nil {
		c.Notify = b.cfg.SelfCheck.Notify
	}
	b.checkGossipAddr(cs, "bind", c.Bind, true)
	if cs.Advertise != "" {
		b.checkGossipAddr(cs, "advertise", cs.Advertise, false)
	}
	for i, p := range cs.Peers {
		if err := hostPort(p, false); err != nil {
			b.d.errorf(item(b.d.at(cs, "peers"), i), "cluster peer %q: %v", p, err)
		}
	}
	if cs.Quorum < 0 {
		b.d.errorf(b.d.at(cs, "quorum"), "cluster.quorum must be at least 1 (or 0 for a majority of the live vantages), got %d", cs.Quorum)
	}
	for key, v := range map[string]*time.Duration{"alone_after": cs.AloneAfter, "takeover_after": cs.TakeoverAfter,
		"gossip_interval": cs.GossipInterval, "probe_interval": cs.ProbeInterval, "push_pull_interval": cs.PushPullInterval} {
		b.positiveDuration(cs, key, v)
	}
	c.Insecure = cs.Insecure
	if cs.Secret == "" && !cs.Insecure {
		// A stranger who joins votes: two of them voting "up" silenced a real outage.
		b.d.errorf(b.d.at(b.f, "cluster"), "cluster: no secret: anyone who reaches %s could join the fleet and vote a real outage away; set secret: (a key from openssl rand -base64 32, usually {{.secret.gossip_key}}), or insecure: true to gossip in plaintext on a network only the fleet reaches", c.Bind)
	}
	if cs.Secret != "" {
		raw := b.secretValue(cs, "secret", cs.Secret)
		key, err := GossipKey(raw.Reveal())
		if err != nil {
			b.d.errorf(b.d.at(cs, "secret"), "cluster.secret: %v", err)
		}
		c.Secret = NewSecret(string(key))
	}
	b.cfg.Cluster = c
}

// GossipKey reads a gossip encryption key: base64 of 16, 24 or 32 bytes (what
// `openssl rand -base64 32` prints), or 16, 24 or 32 raw characters.
func GossipKey(s string) ([]byte, error) {
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && validKeyLen(len(k)) {
		return k, nil
	}
	if validKeyLen(len(s)) {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("want a key of 16, 24 or 32 bytes, raw or base64 (openssl rand -base64 32), got %d characters", len(s))
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

func (b *builder) checkGossipAddr(owner any, key, v string, portZeroOK bool) {
	if err := hostPort(v, portZeroOK); err != nil {
		b.d.errorf(b.d.at(owner, key), "cluster.%s %q: %v", key, v, err)
	}
}

func hostPort(v string, portZeroOK bool) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !portZeroOK) {
		return fmt.Errorf("want a port between 1 and 65535, got %q", port)
	}
	return nil
}

// memberName is unique per instance: shards of one vantage are separate members.
func memberName(vantage string, s *Shard) string {
	if s == nil {
		return vantage
	}
	return fmt.Sprintf("%s#%d", vantage, s.Index)
}
