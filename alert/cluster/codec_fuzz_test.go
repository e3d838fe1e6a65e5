package cluster

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// FuzzDecodeBye: a leave notice from the network decodes to an error or to a notice that
// encodes back to the same notice; and whatever a peer sends, the receive path (every
// message kind, through the delegate a real member uses) does not panic.
func FuzzDecodeBye(f *testing.F) {
	f.Add(encodeBye(bye{member: "fsn1-vps", version: uint64(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMicro())}))
	f.Add(encodeBye(bye{member: "hel1-vps#1", version: 1}))
	f.Add(encodeBye(bye{}))
	f.Add([]byte{kindBye, 0xff, 0xff, 0xff, 0xff, 0x0f})   // a huge name length
	f.Add([]byte{kindBye, 1, 'm', 0x80, 0x80, 0x80, 0x80}) // a version cut short
	f.Add(encodeDelta(delta{member: "m", target: "t", verdict: verdict{version: 3, firing: true}}))
	f.Add(encodePage(pageRecord{Page: Page{Key: "picket/region/eu1", Open: true, By: "m", At: time.UnixMilli(99)}, version: 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := decodeBye(b); err == nil {
			again, err := decodeBye(encodeBye(got))
			if err != nil || again != got {
				t.Fatalf("re-encoding %+v gave %+v, %v", got, again, err)
			}
		}
		c := bare("self")
		c.logger = slog.New(slog.DiscardHandler)
		c.members["m"] = &memberInfo{state: StateAlive}
		c.records["m"] = newRecord(2)
		delegate{c: c}.NotifyMsg(b)
	})
}

// FuzzStoredPage: a page record as the store holds it (JSON of its wire encoding, under
// its dedup key) loads as that record or is skipped; a loaded record saves back to the
// same bytes, and never stops the load of the others.
func FuzzStoredPage(f *testing.F) {
	real := pageRecord{Page: Page{Key: "picket/region/eu1", Open: true, Confirmed: true, By: "fsn1-vps",
		At: time.UnixMilli(1_772_445_600_000)}, version: 7}
	raw, _ := json.Marshal(encodePage(real))
	f.Add(real.Key, raw)
	f.Add("picket/vantage/hel1-vps", raw) // the record of another key
	f.Add("k", []byte(`"UAFrAAAAAA=="`))
	f.Add("k", []byte(`"not base64"`))
	f.Add("k", []byte(`{"key":"k"}`))
	f.Fuzz(func(t *testing.T, key string, raw []byte) {
		p, err := decodeStoredPage(key, raw)
		st := &countingStore{records: map[string][]byte{key: raw, "~other": mustStored(t, real, "~other")}}
		c := bareWithStore("m", st)
		if lerr := c.loadPages(); lerr != nil {
			t.Fatalf("load: %v", lerr)
		}
		if _, ok := c.Page("~other"); !ok {
			t.Fatalf("a record stored under %q as %q stopped the load of another", key, raw)
		}
		if err != nil {
			return
		}
		if got, ok := c.pages[key]; !ok || got != p {
			t.Fatalf("loaded %+v, %v; decoded %+v", got, ok, p)
		}
		again, err := json.Marshal(encodePage(p))
		if err != nil {
			t.Fatal(err)
		}
		if back, err := decodeStoredPage(key, again); err != nil || back != p {
			t.Fatalf("saved back, %+v reads %+v, %v", p, back, err)
		}
	})
}

// mustStored is a record as flushPages stores it, under key.
func mustStored(t *testing.T, p pageRecord, key string) []byte {
	p.Key = key
	raw, err := json.Marshal(encodePage(p))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
