package httpguard

import (
	"testing"

	"github.com/picket-dev/picket/config"
)

func TestBearerMatches(t *testing.T) {
	token := config.NewSecret("s3cr3t-token")
	cases := map[string]bool{
		"Bearer s3cr3t-token":   true,
		"bearer s3cr3t-token":   true,
		"Bearer  s3cr3t-token ": true,
		"Bearer s3cr3t-toke":    false,
		"Bearer s3cr3t-tokenX":  false,
		"Basic s3cr3t-token":    false,
		"s3cr3t-token":          false,
		"Bearer ":               false,
		"":                      false,
	}
	for header, want := range cases {
		if got := BearerMatches(header, token); got != want {
			t.Errorf("BearerMatches(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	names := []string{"picket.internal"}
	cases := map[string]bool{
		"localhost:9115":          true,
		"LocalHost":               true,
		"localhost.:9115":         true,
		"127.0.0.1:9115":          true,
		"10.0.0.5":                true,
		"[::1]:9115":              true,
		"[::1]":                   true,
		"[fe80::1%eth0]:9115":     true,
		"picket.internal:9115":    true,
		"PICKET.internal.":        true,
		"evil.example:9115":       false,
		"picket.internal.evil.io": false,
		"x.picket.internal":       false,
		"localhost.evil.io":       false,
		"127.0.0.1.nip.io":        false,
		"":                        false,
		":9115":                   false,
	}
	for host, want := range cases {
		if got := HostAllowed(host, names); got != want {
			t.Errorf("HostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}
