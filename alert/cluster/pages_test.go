package cluster

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// bare is a Cluster without networking, for the bookkeeping of pages.
func bare(name string) *Cluster {
	c := &Cluster{
		name:    name,
		local:   newRecord(1),
		records: map[string]*record{},
		members: map[string]*memberInfo{},
		pages:   map[string]pageRecord{},
	}
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 1 }, RetransmitMult: 4}
	return c
}

func TestPageRecordsConvergeWhateverTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	writers := []string{"fsn1", "hel1", "ash1"}
	for round := range 200 {
		// Records of one key as writers would make them: some concurrent (equal versions).
		var sent []pageRecord
		for range 12 {
			sent = append(sent, pageRecord{
				Page: Page{
					Key:       "k",
					Open:      rng.IntN(2) == 0,
					Confirmed: rng.IntN(2) == 0,
					By:        writers[rng.IntN(len(writers))],
					At:        time.UnixMilli(int64(rng.IntN(3))),
				},
				version: uint64(1 + rng.IntN(4)),
			})
		}
		want := sent[0]
		for _, p := range sent[1:] {
			if p.outranks(want) {
				want = p
			}
		}
		var got []Page
		for range 3 {
			m := bare("m")
			msgs := append(append([]pageRecord(nil), sent...), sent[:4]...)
			rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
			half := len(msgs) / 2
			for _, p := range msgs[:half] {
				m.applyPage(p)
			}
			m.mergeState(clusterState{pages: msgs[half:]}) // the rest in one push-pull
			p, _ := m.Page("k")
			got = append(got, p)
		}
		for i, p := range got {
			if p != want.Page {
				t.Fatalf("round %d, receiver %d: expected %+v, got %+v", round, i, want.Page, p)
			}
		}
	}
}

func TestPageOutranksIsATotalOrder(t *testing.T) {
	base := pageRecord{Page: Page{Key: "k", By: "b", At: time.UnixMilli(5)}, version: 2}
	variants := []func(p *pageRecord){
		func(p *pageRecord) { p.version++ },
		func(p *pageRecord) { p.By = "c" },
		func(p *pageRecord) { p.At = p.At.Add(time.Millisecond) },
		func(p *pageRecord) { p.Confirmed = true },
		func(p *pageRecord) { p.Open = true },
	}
	for i, change := range variants {
		higher := base
		change(&higher)
		if !higher.outranks(base) || base.outranks(higher) {
			t.Errorf("variant %d: expected %+v to outrank %+v and not the reverse", i, higher, base)
		}
	}
	if base.outranks(base) {
		t.Errorf("a record outranks itself")
	}
}

func TestRecordAndConfirmPage(t *testing.T) {
	c := bare("fsn1")
	if _, ok := c.Page("k"); ok {
		t.Fatalf("expected no record before any page")
	}
	g := c.Generation()
	c.RecordPage("k", true)
	p, ok := c.Page("k")
	if !ok || !p.Open || p.Confirmed || p.By != "fsn1" || p.Key != "k" || time.Since(p.At) > time.Minute {
		t.Fatalf("expected an open unconfirmed record by fsn1 made now, got %+v (found %v)", p, ok)
	}
	if c.Generation() == g {
		t.Fatalf("expected a recorded page to move the generation")
	}

	g = c.Generation()
	c.ConfirmPage("k", false) // a resolve was not what was sent
	if got, _ := c.Page("k"); got != p || c.Generation() != g {
		t.Fatalf("confirming a resolve over a trigger: expected no change, got %+v", got)
	}
	c.ConfirmPage("k", true)
	confirmed, _ := c.Page("k")
	if !confirmed.Confirmed || !confirmed.Open || confirmed.By != "fsn1" || c.pages["k"].version <= 1 {
		t.Fatalf("expected the trigger confirmed under a new version, got %+v", c.pages["k"])
	}
	g = c.Generation()
	c.ConfirmPage("k", true) // twice: nothing new
	if c.Generation() != g {
		t.Fatalf("expected a second confirmation to change nothing")
	}

	// A later action of this member supersedes the trigger: its confirmation is late.
	c.RecordPage("k", false)
	resolve, _ := c.Page("k")
	c.ConfirmPage("k", true)
	if got, _ := c.Page("k"); got != resolve {
		t.Fatalf("expected the late confirmation of the trigger to leave %+v, got %+v", resolve, got)
	}
	// Three page messages are queued, one per change, each replacing the one before.
	if n := c.queue.NumQueued(); n != 1 {
		t.Fatalf("expected one queued page message for the key, got %d", n)
	}
}

func TestPageEvictionDropsOldestClosedFirst(t *testing.T) {
	c := bare("fsn1")
	c.pageLimit = 10
	for i := range 10 {
		c.applyPage(pageRecord{Page: Page{Key: fmt.Sprintf("k%02d", i), Open: i%2 == 0, By: "hel1", At: time.UnixMilli(int64(100 + i))}, version: uint64(50 + i)})
	}
	if len(c.pages) != 10 {
		t.Fatalf("expected 10 records at the limit, got %d", len(c.pages))
	}
	c.applyPage(pageRecord{Page: Page{Key: "k10", Open: true, By: "hel1", At: time.UnixMilli(1)}, version: 1})
	// Over the limit: down to 9, the two oldest closed (k01, k03) go, not the oldest open.
	for _, gone := range []string{"k01", "k03"} {
		if _, ok := c.Page(gone); ok {
			t.Errorf("expected %s (closed, among the oldest) dropped", gone)
		}
	}
	if len(c.pages) != 9 {
		t.Fatalf("expected 9 records after dropping a tenth, got %d", len(c.pages))
	}
	if _, ok := c.Page("k10"); !ok {
		t.Errorf("expected the oldest record, open, kept")
	}

	// Only open ones left after the closed: the oldest open go next.
	c.pageLimit = 4
	c.applyPage(pageRecord{Page: Page{Key: "k11", Open: true, By: "hel1", At: time.UnixMilli(200)}, version: 1})
	if len(c.pages) != 4 {
		t.Fatalf("expected 4 records, got %d: %v", len(c.pages), c.pages)
	}
	for _, kept := range []string{"k06", "k08", "k11"} {
		if p, ok := c.Page(kept); !ok || !p.Open {
			t.Errorf("expected the newest open %s kept", kept)
		}
	}

	// A dropped key recorded again outranks the version it had before it was dropped.
	c.RecordPage("k01", true)
	if v := c.pages["k01"].version; v <= 51 {
		t.Fatalf("expected k01 recorded again above its dropped version 51, got %d", v)
	}
}

func TestPageCodecRoundTrip(t *testing.T) {
	p := pageRecord{Page: Page{Key: "logs/search@eu1", Open: true, Confirmed: true, By: "fsn1", At: time.UnixMilli(1_764_000_000_042)}, version: 1 << 33}
	got, err := decodePage(encodePage(p))
	if err != nil || got != p {
		t.Fatalf("expected %+v, got %+v (err %v)", p, got, err)
	}
}

func TestDecodePageRejectsMalformed(t *testing.T) {
	good := encodePage(pageRecord{Page: Page{Key: "k", By: "m", At: time.UnixMilli(3)}, version: 2})
	cases := map[string][]byte{
		"empty":          nil,
		"wrong kind":     append([]byte{kindDelta}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"bad flags":      {kindPage, 1, 'k', 2, 4, 1, 'm', 6},
		"huge length":    {kindPage, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodePage(b); err == nil {
				t.Fatalf("expected an error for %x", b)
			}
		})
	}
	states := map[string][]byte{
		"billions of pages": {kindState, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		// Each page of five zero bytes is well formed: only the count is too high.
		"more pages than a member keeps": append([]byte{kindState, 0, 0x91, 0x4e}, make([]byte, 5*(maxPages+1))...),
		"unknown state kind":             {'X', 0, 0},
	}
	atLimit := append([]byte{kindState, 0, 0x90, 0x4e}, make([]byte, 5*maxPages)...)
	if st, err := decodeState(atLimit); err != nil || len(st.pages) != maxPages {
		t.Fatalf("expected a state of %d pages accepted, got %d pages, err %v", maxPages, len(st.pages), err)
	}
	for name, b := range states {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeState(b); err == nil {
				t.Fatalf("expected an error")
			}
		})
	}
}
