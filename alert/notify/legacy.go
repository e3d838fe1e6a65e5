package notify

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// The layout before one record per delivery stored one record per notifier of a
// delivery, under its own number and notifier, each naming the delivery's first key as
// its Group, with the delivery's fallback state copied onto every sibling still pending.
// A daemon upgraded while its queue is full (mid-outage) reads those records into
// deliveries and rewrites each as one record at load, in the transaction that deletes
// the old ones; until that succeeds they are read so at every start.

// legacyRecord is one record of the old layout.
type legacyRecord struct {
	Notifier     string       `json:"notifier"`
	Identity     string       `json:"identity,omitempty"`
	Member       string       `json:"member,omitempty"` // the name at enqueue, once a rename changed Notifier
	Notification Notification `json:"notification"`
	Group        string       `json:"group"`
	Primaries    []string     `json:"primaries,omitempty"`
	Fallback     []string     `json:"fallback,omitempty"`
	// FallbackIdentity, FallbackAfter and Told are the delivery's, on each primary.
	FallbackIdentity map[string]string `json:"fallback_identity,omitempty"`
	FallbackAfter    time.Duration     `json:"fallback_after,omitempty"`
	IsFallback       bool              `json:"is_fallback,omitempty"`
	Closes           []string          `json:"closes,omitempty"`
	Told             []string          `json:"told,omitempty"`
	FailedPeers      []string          `json:"failed_peers,omitempty"` // primaries refused for good
	Settled          bool              `json:"settled,omitempty"`      // the fallback was enqueued
	Enqueued         time.Time         `json:"enqueued"`
}

// legacyGroup is the records of one old delivery, in key order.
type legacyGroup struct {
	keys []string
	recs []legacyRecord
}

// readLegacy decodes raw as an old record; false if it is not one.
func readLegacy(raw []byte) (legacyRecord, bool) {
	var rec legacyRecord
	err := json.Unmarshal(raw, &rec)
	return rec, err == nil && rec.Notifier != ""
}

// fromLegacy is the delivery of an old group, keyed by its least key. Primaries
// without a record left were delivered (or dropped: the same for the fallback) unless a
// sibling says they were refused; a group of fallbacks alone has no primary left to
// decide a fallback, as before.
func fromLegacy(g *legacyGroup) *delivery {
	d := &delivery{key: g.keys[0], stored: true, legacy: g.keys, rec: deliveryRecord{Notification: g.recs[0].Notification}}
	var members []string // the primaries, by their names at enqueue
	pendingAt, refused, anyPrimary := map[string]int{}, map[string]bool{}, false
	for i, r := range g.recs {
		if r.IsFallback {
			continue
		}
		if !anyPrimary { // each primary carries the delivery's settings: take the first's
			anyPrimary = true
			members = slices.Clone(r.Primaries)
			d.rec.Fallback, d.rec.FallbackIdentity, d.rec.FallbackAfter = r.Fallback, r.FallbackIdentity, r.FallbackAfter
		}
		m := cmp.Or(r.Member, r.Notifier)
		if !slices.Contains(members, m) { // a damaged record: it is its own primary
			members = append(members, m)
		}
		pendingAt[m] = i
		d.rec.FellBack = d.rec.FellBack || r.Settled
		for _, p := range r.FailedPeers {
			refused[p] = true
		}
		for _, n := range r.Told {
			if !d.told(n) {
				d.rec.Told = append(d.rec.Told, n)
			}
		}
	}
	d.rec.FellBack = d.rec.FellBack || !anyPrimary
	for _, m := range members {
		if i, ok := pendingAt[m]; ok {
			d.parts = append(d.parts, legacyPart(d, g.keys[i], g.recs[i]))
			continue
		}
		gone := &entry{d: d, part: partRecord{Notifier: m, Outcome: partDone}}
		if refused[m] {
			gone.part.Outcome = partRefused
		}
		d.parts = append(d.parts, gone)
	}
	for i, r := range g.recs {
		if r.IsFallback {
			d.parts = append(d.parts, legacyPart(d, g.keys[i], r))
		}
	}
	return d
}

// legacyPart is the pending part an old record stored under key was.
func legacyPart(d *delivery, key string, r legacyRecord) *entry {
	seq, _ := strconv.ParseUint(keySeq(key), 10, 64)
	return &entry{d: d, key: key, part: partRecord{Seq: seq, Notifier: r.Notifier, Identity: r.Identity,
		Fallback: r.IsFallback, Closes: r.Closes, Enqueued: r.Enqueued}}
}
