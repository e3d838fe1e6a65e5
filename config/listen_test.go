package config

import (
	"slices"
	"testing"
)

// TestListenKeys: public_listen is empty unless set; allowed_hosts compare in lower
// case without the trailing dot, and IP literals are accepted as written.
func TestListenKeys(t *testing.T) {
	const base = "regions: {eu1: {vars: {api: \"http://127.0.0.1:1\"}}}\n" +
		"products: [{name: web, journeys: [{name: home, steps: [{http: {url: \"{{.region.api}}/\"}}]}]}]\n"
	cfg, err := Parse("a.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen || cfg.PublicListen != "" || cfg.AllowedHosts != nil {
		t.Errorf("defaults: listen %q, public_listen %q, allowed_hosts %q", cfg.Listen, cfg.PublicListen, cfg.AllowedHosts)
	}
	cfg, err = Parse("b.yaml", []byte(base+"listen: \":9115\"\npublic_listen: \"0.0.0.0:8080\"\n"+
		"allowed_hosts: [Picket.Internal., status-1.example.com, \"10.0.0.5\", \"[::1]\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"picket.internal", "status-1.example.com", "10.0.0.5", "[::1]"}; !slices.Equal(cfg.AllowedHosts, want) {
		t.Errorf("allowed_hosts %q, want %q", cfg.AllowedHosts, want)
	}
	if cfg.Listen != ":9115" || cfg.PublicListen != "0.0.0.0:8080" {
		t.Errorf("listen %q, public_listen %q", cfg.Listen, cfg.PublicListen)
	}
	// The same port on every address and on one of them: the second bind would fail.
	if _, err := Parse("c.yaml", []byte(base+"listen: \":9115\"\npublic_listen: \"127.0.0.1:9115\"\n")); err == nil {
		t.Error("public_listen on the listen port of every address: want an error")
	}
}
