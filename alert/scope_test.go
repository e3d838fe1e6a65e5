package alert

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var br = config.BlastRadius{RegionMinProducts: 2, ProductMinRegions: 2, GlobalMinRegions: 2}

func fail(ids ...string) []Failing {
	var out []Failing
	for _, id := range ids {
		p, r := splitTarget(id)
		out = append(out, Failing{Target: id, Product: p, Region: r})
	}
	return out
}

func keys(groups []Group) string {
	var out []string
	for _, g := range groups {
		out = append(out, g.Key()+"="+strings.Join(g.Targets, ","))
	}
	return strings.Join(out, " ")
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name    string
		failing []Failing
		want    string
	}{
		{"nothing", nil, ""},
		{"one journey", fail("logs/a@eu1"), "picket/target/logs/a@eu1=logs/a@eu1"},
		{"two journeys of one product in one region stay targets", fail("logs/a@eu1", "logs/b@eu1"),
			"picket/target/logs/a@eu1=logs/a@eu1 picket/target/logs/b@eu1=logs/b@eu1"},
		{"two products in one region is a region", fail("logs/a@eu1", "metrics/q@eu1"),
			"picket/region/eu1=logs/a@eu1,metrics/q@eu1"},
		{"one product in two regions is a product", fail("logs/a@eu1", "logs/a@us1"),
			"picket/product/logs=logs/a@eu1,logs/a@us1"},
		{"two regions out is global", fail("logs/a@eu1", "metrics/q@eu1", "logs/a@us1", "metrics/q@us1"),
			"picket/global=logs/a@eu1,logs/a@us1,metrics/q@eu1,metrics/q@us1"},
		{"region and an unrelated target", fail("logs/a@eu1", "metrics/q@eu1", "web/h@ap1"),
			"picket/region/eu1=logs/a@eu1,metrics/q@eu1 picket/target/web/h@ap1=web/h@ap1"},
		{"region wins over product for its own targets", fail("logs/a@eu1", "metrics/q@eu1", "logs/a@us1"),
			"picket/region/eu1=logs/a@eu1,metrics/q@eu1 picket/target/logs/a@us1=logs/a@us1"},
		{"scattered failures are not global", fail("logs/a@eu1", "metrics/q@us1"),
			"picket/target/logs/a@eu1=logs/a@eu1 picket/target/metrics/q@us1=metrics/q@us1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := keys(Classify(br, c.failing)); got != c.want {
				t.Errorf("\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

// run drives Reconcile like the engine does and records the changes as text.
type scenario struct {
	t   *testing.T
	m   *Incidents
	now time.Time
}

func (s *scenario) step(ids ...string) string {
	s.now = s.now.Add(time.Minute)
	changes := s.m.Reconcile(s.now, Classify(br, fail(ids...)), map[string]int{"logs": 1, "metrics": 1, "web": 2})
	var out []string
	for _, c := range changes {
		out = append(out, c.Kind+" "+c.Incident.Key)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func (s *scenario) expect(got, want string) {
	s.t.Helper()
	if got != want {
		s.t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestReconcileWideningAndShrinking(t *testing.T) {
	s := &scenario{t: t, m: NewIncidents(0, nil), now: time.Unix(0, 0)}
	eu1 := []string{"logs/a@eu1", "metrics/q@eu1"}
	us1 := []string{"logs/a@us1", "metrics/q@us1"}
	s.expect(s.step(eu1...), "opened picket/region/eu1")
	s.expect(s.step(eu1...), "")
	s.expect(s.step(append(eu1, us1...)...), "absorbed picket/region/eu1; opened picket/global")
	s.expect(s.step(append(eu1, us1...)...), "")
	// us1 recovers: the global incident keeps covering eu1 (no change, nothing paged);
	// when eu1 recovers too, both are resolved, once each.
	s.expect(s.step(eu1...), "")
	if g := s.m.Get("picket/global"); g == nil || strings.Join(g.Regions, ",") != "eu1" {
		t.Fatalf("global should cover what is left: %+v", g)
	}
	s.expect(s.step(), "resolved picket/global; resolved picket/region/eu1")
	if len(s.m.Open()) != 0 {
		t.Errorf("open incidents left: %v", s.m.Open())
	}
}

func TestReconcileShrinkingNeverPagesNarrower(t *testing.T) {
	s := &scenario{t: t, m: NewIncidents(0, nil), now: time.Unix(0, 0)}
	all := []string{"logs/a@eu1", "metrics/q@eu1", "logs/a@us1", "metrics/q@us1", "logs/a@ap1", "metrics/q@ap1"}
	s.expect(s.step(all...), "opened picket/global")
	// Regions recover one by one: the global incident keeps covering what is left, and
	// shrinking is not news worth a message.
	s.expect(s.step(all[:4]...), "")
	s.expect(s.step(all[:2]...), "")
	if g := s.m.Get("picket/global"); g == nil || strings.Join(g.Regions, ",") != "eu1" {
		t.Fatalf("global should cover eu1 only now: %+v", g)
	}
	s.expect(s.step(all[:1]...), "")
	s.expect(s.step(), "resolved picket/global")
	// Widening is news.
	s.expect(s.step(all[:1]...), "opened picket/target/logs/a@eu1")
	s.expect(s.step(all[:2]...), "absorbed picket/target/logs/a@eu1; opened picket/region/eu1")
}

func TestReconcileEveryOpenedIncidentResolvedOnce(t *testing.T) {
	// A seeded walk through random failing sets; at the end everything recovers.
	targets := []string{"logs/a@eu1", "metrics/q@eu1", "web/h@eu1", "logs/a@us1", "metrics/q@us1", "logs/a@ap1", "web/h@ap1"}
	for seed := 0; seed < 30; seed++ {
		s := &scenario{t: t, m: NewIncidents(0, nil), now: time.Unix(0, 0)}
		opened, resolved := map[string]int{}, map[string]int{}
		x := uint32(seed*7919 + 1)
		for round := 0; round < 40; round++ {
			var failing []string
			for _, id := range targets {
				x = x*1664525 + 1013904223
				if x>>28 < 5 {
					failing = append(failing, id)
				}
			}
			if round == 39 {
				failing = nil
			}
			s.now = s.now.Add(time.Minute)
			for _, c := range s.m.Reconcile(s.now, Classify(br, fail(failing...)), nil) {
				switch c.Kind {
				case ChangeOpened:
					opened[c.Incident.Key]++
					if c.Incident.Opened != s.now {
						t.Fatal("opened at the wrong time")
					}
				case ChangeResolved:
					resolved[c.Incident.Key]++
				}
			}
			// Coverage: every failing target is in exactly one open, non-absorbed incident.
			cover := map[string]int{}
			for _, inc := range s.m.Open() {
				if inc.AbsorbedInto == "" {
					for _, id := range inc.Targets {
						cover[id]++
					}
				}
			}
			for _, id := range failing {
				if cover[id] != 1 {
					t.Fatalf("seed %d round %d: %s covered %d times (open: %v)", seed, round, id, cover[id], describe(s.m.Open()))
				}
			}
		}
		for key, n := range opened {
			if resolved[key] != n {
				t.Errorf("seed %d: %s opened %d times, resolved %d times", seed, key, n, resolved[key])
			}
		}
	}
}

func describe(incs []*Incident) string {
	var out []string
	for _, i := range incs {
		out = append(out, fmt.Sprintf("%s%v(absorbed=%s)", i.Key, i.Targets, i.AbsorbedInto))
	}
	return strings.Join(out, " ")
}

func TestStateThresholds(t *testing.T) {
	tg := &config.Target{ID: "logs/a@eu1", FailureThreshold: 2, SuccessThreshold: 2}
	s := &TargetState{Target: tg.ID}
	seq := []struct {
		status string
		want   State
	}{
		{"down", StatePending}, {"up", StateOK}, {"down", StatePending}, {"down", StateFiring},
		{"up", StateFiring}, {"down", StateFiring}, {"up", StateFiring}, {"up", StateOK},
		{"degraded", StatePending}, {"degraded", StateFiring},
	}
	for i, step := range seq {
		r := resultOf(tg.ID, step.status)
		s.Apply(tg, &r, "notify")
		if s.State != step.want {
			t.Fatalf("step %d (%s): state %s, want %s", i, step.status, s.State, step.want)
		}
	}
	if s.Condition != ConditionDegraded {
		t.Errorf("condition %q", s.Condition)
	}
	r := resultOf(tg.ID, "down")
	s.Apply(tg, &r, "notify")
	if s.Condition != ConditionDown {
		t.Errorf("down must escalate a degraded target, condition %q", s.Condition)
	}
	ignore := &TargetState{Target: tg.ID}
	for range 3 {
		r := resultOf(tg.ID, "degraded")
		ignore.Apply(tg, &r, "ignore")
	}
	if ignore.State != StateOK {
		t.Errorf("degraded with policy ignore: %s", ignore.State)
	}
}

// TestSummarizeNamesOnlyTheWidestScope: eu1 fully down plus a stray failing journey in
// ap1 and one in us1 is a regional outage of eu1, not a scope of three regions; the
// strays are counted apart.
func TestSummarizeNamesOnlyTheWidestScope(t *testing.T) {
	groups := Classify(br, fail("logs/a@eu1", "metrics/q@eu1", "events/e@eu1", "logs/a@ap1", "metrics/q@us1"))
	s := Summarize(groups)
	if s.Kind != ScopeRegion || strings.Join(s.Regions, ",") != "eu1" ||
		strings.Join(s.Products, ",") != "events,logs,metrics" || s.OtherTargets != 2 {
		t.Errorf("got %+v, want region eu1 (events, logs, metrics) and 2 other targets", s)
	}
	if s := Summarize(nil); s.Kind != "none" || s.Regions == nil || s.Products == nil || s.OtherTargets != 0 {
		t.Errorf("nothing failing: %+v", s)
	}
	// Targets only: every group is of the widest scope, so all of them are covered.
	s = Summarize(Classify(br, fail("logs/a@eu1", "metrics/q@us1")))
	if s.Kind != ScopeTarget || strings.Join(s.Regions, ",") != "eu1,us1" || s.OtherTargets != 0 {
		t.Errorf("targets only: %+v", s)
	}
}
