package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/cluster"
	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe"
)

// BenchmarkFleetReconcile10k: what one state change costs an engine in a fleet of two
// real members with 10,000 targets, 1,000 of them firing: the change is gossiped, the
// fleet's tally taken and scope classified again over every target.
func BenchmarkFleetReconcile10k(b *testing.B) { benchReconcile10k(b, false) }

// BenchmarkLoneReconcile10k is the same without a fleet, for comparison.
func BenchmarkLoneReconcile10k(b *testing.B) { benchReconcile10k(b, true) }

func benchReconcile10k(b *testing.B, lone bool) {
	var y strings.Builder
	y.WriteString("vantage: bench\ndefaults: {interval: 10s, timeout: 5s, failure_threshold: 1, success_threshold: 1}\nregions:\n")
	for r := range 100 {
		fmt.Fprintf(&y, "  r%03d: {vars: {api: \"http://127.0.0.1:1\"}}\n", r)
	}
	y.WriteString("products:\n")
	for p := range 10 {
		fmt.Fprintf(&y, "  - name: p%02d\n    journeys:\n", p)
		for j := range 10 {
			fmt.Fprintf(&y, "      - {name: j%02d, steps: [{http: {url: \"{{.region.api}}/\"}}]}\n", j)
		}
	}
	cfg, err := config.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	members := make([]*cluster.Cluster, 2)
	for i := range members {
		var peers []string
		if i > 0 {
			peers = []string{members[0].Addr()}
		}
		members[i], err = cluster.Start(cluster.Options{Name: fmt.Sprintf("m%d", i), Bind: "127.0.0.1:0", Peers: peers,
			GossipInterval: 50 * time.Millisecond, ProbeInterval: 200 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		defer members[i].Close()
	}
	fo := fleet.New(fleet.Options{
		Fleet: newFleet(members[0], "bench", nil), Quorum: 1, AloneAfter: time.Minute, TakeoverAfter: 15 * time.Second})
	if lone {
		fo = nil
	}
	engine, err := alert.NewEngine(alert.EngineOptions{Config: cfg, Peers: fo})
	if err != nil {
		b.Fatal(err)
	}
	result := func(t *config.Target, up bool) probe.Result {
		r := probe.Result{Target: t.ID, Product: t.Product, Journey: t.Journey, Region: t.Region, Started: time.Now(), Status: probe.StatusUp}
		if !up {
			r.Status, r.Error = probe.StatusDown, "bench: down"
		}
		return r
	}
	var firing []probe.Result
	for i, t := range cfg.Targets {
		if i%10 == 0 {
			firing = append(firing, result(t, false))
		}
	}
	engine.ObserveAll(firing)
	flip := cfg.Targets[1]
	b.ResetTimer()
	for i := range b.N {
		engine.Observe(result(flip, i%2 == 1))
	}
	b.StopTimer()
	if n := len(cfg.Targets); n != 10000 {
		b.Fatalf("%d targets, want 10000", n)
	}
}
