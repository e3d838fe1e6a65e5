package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// firingSet is what a record says fires, for comparisons.
func firingSet(r *record) map[string]bool {
	out := map[string]bool{}
	for t, v := range r.entries {
		if v.firing {
			out[t] = true
		}
	}
	return out
}

// owner mimics SetLocal's bookkeeping, producing the deltas and snapshots a member sends.
type owner struct {
	seq    uint64
	rec    *record
	deltas []delta
	snaps  []*record
}

func newOwner(seq uint64) *owner { return &owner{seq: seq, rec: newRecord(seq)} }

func (o *owner) set(target string, firing bool) {
	o.seq++
	v := verdict{version: o.seq, firing: firing}
	o.rec.apply(target, v)
	o.rec.floor = o.seq
	o.rec.prune()
	o.deltas = append(o.deltas, delta{member: "m", target: target, verdict: v})
}

func (o *owner) snapshot() { o.snaps = append(o.snaps, o.rec.clone()) }

func TestRecordConvergesWhateverTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		o := newOwner(1000)
		targets := []string{"a", "b", "c", "d"}
		for i := range 30 {
			o.set(targets[rng.IntN(len(targets))], rng.IntN(2) == 0)
			if i%7 == 0 {
				o.snapshot()
			}
		}
		o.snapshot() // the final snapshot, as a push-pull would carry it eventually
		want := firingSet(o.rec)

		// Everything the owner sent, shuffled, some of it twice.
		type msg struct {
			d    *delta
			snap *record
		}
		var msgs []msg
		for i := range o.deltas {
			msgs = append(msgs, msg{d: &o.deltas[i]})
		}
		for _, s := range o.snaps {
			msgs = append(msgs, msg{snap: s})
		}
		msgs = append(msgs, msgs[:len(msgs)/3]...)
		rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

		got := newRecord(0)
		for _, m := range msgs {
			if m.d != nil {
				got.apply(m.d.target, m.d.verdict)
			} else {
				got.merge(m.snap.clone())
			}
		}
		if g := firingSet(got); !maps.Equal(g, want) {
			t.Fatalf("round %d: receiver says %v fire, owner says %v", round, g, want)
		}
	}
}

func TestRecordRestartedOwnerOutranksItsPast(t *testing.T) {
	old := newOwner(1000)
	old.set("a", true)
	old.set("b", true)
	view := newRecord(0)
	view.merge(old.rec.clone())
	if !view.firing("a") || !view.firing("b") {
		t.Fatalf("before restart: expected a and b firing, got %v", firingSet(view))
	}
	restarted := newOwner(5000) // a later start time
	restarted.set("b", true)
	view.merge(restarted.rec.clone())
	if view.firing("a") || !view.firing("b") {
		t.Fatalf("after restart: expected only b firing, got %v", firingSet(view))
	}
	// A late delta of the old process changes nothing.
	if view.apply("a", verdict{version: 1003, firing: true}) {
		t.Fatalf("a delta of the previous process was applied over the restarted one")
	}
}

func TestStateCodecRoundTrip(t *testing.T) {
	r := newRecord(1_000_000)
	r.entries["p/j@eu1"] = verdict{version: 999_990, firing: true}
	r.entries["p/j@us1"] = verdict{version: 1_000_003, firing: false}
	in := map[string]*record{"fsn1": r, "hel1": newRecord(7)}
	pages := []pageRecord{
		{Page: Page{Key: "p/j@eu1", Open: true, By: "fsn1", At: time.UnixMilli(1_764_000_000_123)}, version: 3},
		{Page: Page{Key: "p/k@us1", Confirmed: true, By: "hel1", At: time.UnixMilli(-5)}, version: 1 << 40},
	}
	st, err := decodeState(encodeState(clusterState{records: in, pages: pages}))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	out := st.records
	if len(out) != 2 || out["hel1"].floor != 7 || len(out["hel1"].entries) != 0 {
		t.Fatalf("expected fsn1 and an empty hel1 at floor 7, got %+v", out)
	}
	if got := out["fsn1"]; got.floor != r.floor || !maps.Equal(got.entries, r.entries) {
		t.Fatalf("fsn1: expected %+v, got %+v", r, got)
	}
	if !slices.Equal(st.pages, pages) {
		t.Fatalf("expected pages %+v, got %+v", pages, st.pages)
	}
}

// A member of the previous version sends states without pages ('S'); they still merge.
func TestStateCodecReadsFirstVersion(t *testing.T) {
	r := newRecord(10)
	r.entries["x"] = verdict{version: 12, firing: true}
	b := encodeState(clusterState{records: map[string]*record{"m": r}})
	if b[len(b)-1] != 0 {
		t.Fatalf("expected the state to end with an empty page list, got %x", b)
	}
	v1 := append([]byte{kindStateV1}, b[1:len(b)-1]...) // the same records, no page list
	st, err := decodeState(v1)
	if err != nil {
		t.Fatalf("decode a first-version state: %v", err)
	}
	if len(st.pages) != 0 || !maps.Equal(st.records["m"].entries, r.entries) {
		t.Fatalf("expected m's record and no pages, got %+v", st)
	}
	if _, err := decodeState(append(v1, 0)); err == nil {
		t.Fatalf("expected a first-version state with a page list to be rejected")
	}
}

func TestDeltaCodecRoundTrip(t *testing.T) {
	d := delta{member: "fsn1", target: "logs/search@eu1", verdict: verdict{version: 1 << 50, firing: true}}
	got, err := decodeDelta(encodeDelta(d))
	if err != nil || got != d {
		t.Fatalf("expected %+v, got %+v (err %v)", d, got, err)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := encodeDelta(delta{member: "m", target: "t", verdict: verdict{version: 3, firing: true}})
	cases := map[string][]byte{
		"empty":          nil,
		"wrong kind":     append([]byte{kindState}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"bad flag":       {kindDelta, 1, 'm', 3, 2, 1, 't'},
		"huge length":    {kindDelta, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeDelta(b); err == nil {
				t.Fatalf("expected an error for %x", b)
			}
		})
	}
	if _, err := decodeState([]byte{kindState, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatalf("expected an error for a state claiming billions of records")
	}
}

func sameRecord(a, b *record) bool { return a.floor == b.floor && maps.Equal(a.entries, b.entries) }

// FuzzDecodeState: a state, a page record or a verdict change from the network decodes
// to an error or to what encodes back to the same value.
func FuzzDecodeState(f *testing.F) {
	r := newRecord(10)
	r.entries["x"] = verdict{version: 9, firing: true}
	page := pageRecord{Page: Page{Key: "k", Open: true, By: "m", At: time.UnixMilli(99)}, version: 4}
	f.Add(encodeState(clusterState{records: map[string]*record{"m": r}, pages: []pageRecord{page}}))
	f.Add(encodeDelta(delta{member: "m", target: "t"}))
	f.Add(encodePage(page))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := decodeState(b); err == nil {
			again, err := decodeState(encodeState(st))
			if err != nil {
				t.Fatalf("re-encoding a decoded state failed: %v", err)
			}
			if !slices.Equal(again.pages, st.pages) {
				t.Fatalf("re-encoding pages %+v gave %+v", st.pages, again.pages)
			}
			if !maps.EqualFunc(again.records, st.records, sameRecord) {
				t.Fatalf("re-encoding records %v gave %v", st.records, again.records)
			}
		}
		if p, err := decodePage(b); err == nil {
			if got, err := decodePage(encodePage(p)); err != nil || got != p {
				t.Fatalf("re-encoding %+v gave %+v, %v", p, got, err)
			}
		}
		if d, err := decodeDelta(b); err == nil {
			if got, err := decodeDelta(encodeDelta(d)); err != nil || got != d {
				t.Fatalf("re-encoding %+v gave %+v, %v", d, got, err)
			}
		}
	})
}

// TestStateSize measures one member's snapshot with 10,000 targets of which 1,000 fire.
func TestStateSize(t *testing.T) {
	c := &Cluster{name: "fsn1-vps", seq: 1_764_000_000_000_000, records: map[string]*record{}, members: map[string]*memberInfo{}}
	c.local = newRecord(c.seq)
	verdicts := make(map[string]bool, 10_000)
	idBytes := 0
	for i := range 10_000 {
		id := fmt.Sprintf("product%02d/journey%04d@region%02d", i%20, i, i%50)
		verdicts[id] = i%10 == 0
		if i%10 == 0 {
			idBytes += len(id)
		}
	}
	deltas := c.setLocal(verdicts)
	if len(deltas) != 1000 {
		t.Fatalf("expected 1000 changes, got %d", len(deltas))
	}
	size := len(c.encodeState())
	t.Logf("state of one member, 10000 targets, 1000 firing: %d bytes (ids alone %d bytes); one change: %d bytes",
		size, idBytes, len(encodeDelta(deltas[0])))
	if limit := idBytes + 1000*4 + 64; size > limit {
		t.Fatalf("expected at most %d bytes (ids plus 4 per entry), got %d", limit, size)
	}

	// As many page records as a member keeps, every target paged once by one vantage.
	c.pages = map[string]pageRecord{}
	keyBytes := 0
	at := time.UnixMilli(1_764_000_000_000)
	for id := range verdicts {
		c.pages[id] = pageRecord{Page: Page{Key: id, Open: true, Confirmed: true, By: "hel1-vps", At: at}, version: 3}
		keyBytes += len(id)
	}
	withPages := len(c.encodeState())
	t.Logf("the same with %d page records: %d bytes (%d for the pages, keys alone %d bytes)",
		len(c.pages), withPages, withPages-size, keyBytes)
	if limit := size + keyBytes + len(c.pages)*20; withPages > limit {
		t.Fatalf("expected at most %d bytes (keys plus 20 per record), got %d", limit, withPages)
	}
}
