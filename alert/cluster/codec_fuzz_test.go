package cluster

import (
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
