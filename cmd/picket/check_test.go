package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/picket-dev/picket/probe/probetest"
)

// TestCheckScopeNamesOnlyTheWidestScope: eu1 fully down plus one stray failing journey
// in ap1 and one in us1 is REGION eu1 with eu1's products, the strays told apart.
func TestCheckScopeNamesOnlyTheWidestScope(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	e.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	e.plat.SetFault("ap1", "logs", probetest.Fault{Kind: probetest.FaultError})
	e.plat.SetFault("us1", "web", probetest.Fault{Kind: probetest.FaultError})
	r := picket(t, "check", "-c", cfg, "-o", "json")
	var out struct {
		Scope struct {
			Kind              string
			Regions, Products []string
			OtherTargets      int `json:"other_targets"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("exit %d, not JSON: %v\n%s", r.code, err, r.stdout)
	}
	s := out.Scope
	if s.Kind != "region" || strings.Join(s.Regions, ",") != "eu1" ||
		strings.Join(s.Products, ",") != "logs,metrics,web" || s.OtherTargets != 2 {
		t.Errorf("scope %+v, want region [eu1] [logs metrics web] and 2 other targets", s)
	}
	r = picket(t, "check", "-c", cfg)
	paras := strings.Split(strings.TrimSpace(r.stdout), "\n\n")
	footer := strings.Join(strings.Fields(paras[len(paras)-1]), " ")
	if want := "7 up, 0 degraded, 5 down; scope REGION eu1 (logs, metrics, web); also 2 other failing targets"; footer != want {
		t.Errorf("table footer %q, want %q", footer, want)
	}
}
