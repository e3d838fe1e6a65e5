package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseShard: --shard is INDEX/COUNT in decimal digits with 0 <= INDEX < COUNT, or an
// error; what it accepts prints back to the same shard, and the shard takes targets.
func FuzzParseShard(f *testing.F) {
	for _, seed := range []string{"0/3", "2/3", "0/1", "3/3", "-1/2", "1", "a/b", "0/0", "1/2/3", " 1/2", "+1/3", "-0/3",
		"01/03", "0/9223372036854775807", "0/9223372036854775808", "/", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShard(s)
		if err != nil {
			if !strings.Contains(err.Error(), "shard") {
				t.Fatalf("ParseShard(%q): %v does not say what it read", s, err)
			}
			return
		}
		if sh.Index < 0 || sh.Index >= sh.Count {
			t.Fatalf("ParseShard(%q) = %+v: want 0 <= index < count", s, sh)
		}
		if i, n, _ := strings.Cut(s, "/"); !decimal(i) || !decimal(n) {
			t.Fatalf("ParseShard(%q) = %+v: want only digits on either side", s, sh)
		}
		if again, err := ParseShard(fmt.Sprintf("%d/%d", sh.Index, sh.Count)); err != nil || again != sh {
			t.Fatalf("ParseShard(%q) = %+v; printed back it reads %+v, %v", s, sh, again, err)
		}
		if got := ShardOf("logs/search@eu1", sh.Count); got < 0 || got >= sh.Count {
			t.Fatalf("ShardOf(_, %d) = %d", sh.Count, got)
		}
	})
}

func decimal(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// FuzzGossipKey: a gossip key is 16, 24 or 32 bytes or an error; base64 of such a key
// (what openssl rand -base64 prints) reads back as that key, and any other accepted
// string is taken as it is.
func FuzzGossipKey(f *testing.F) {
	for _, seed := range []string{
		"ZmxlZXQtdGVzdC1nb3NzaXAta2V5LTMyYnl0ZXMhISE=", // openssl rand -base64 32
		"ZmxlZXQtdGVzdC1nb3NzaXAta2V5LTMyYnl0ZXMhISE=\n", "0123456789abcdef", "0123456789abcdef01234567",
		"0123456789abcdef0123456789abcdef", "short", "", "ZmxlZXQ=", "!!!!!!!!!!!!!!!!", "ZmxlZXQtdGVzdC1nb3NzaXAta2V5LTMyYnl0ZXMhISE",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := GossipKey(s)
		if err != nil {
			if k != nil {
				t.Fatalf("GossipKey(%q) = %q with error %v", s, k, err)
			}
			return
		}
		if !validKeyLen(len(k)) {
			t.Fatalf("GossipKey(%q) = %d bytes, want 16, 24 or 32", s, len(k))
		}
		if dec, derr := base64.StdEncoding.DecodeString(s); derr != nil || !validKeyLen(len(dec)) {
			if string(k) != s {
				t.Fatalf("GossipKey(%q) = %q: not base64 of a key, so want the string itself", s, k)
			}
		}
		if again, err := GossipKey(base64.StdEncoding.EncodeToString(k)); err != nil || !bytes.Equal(again, k) {
			t.Fatalf("GossipKey(%q) = %q; as base64 it reads %q, %v", s, k, again, err)
		}
	})
}
