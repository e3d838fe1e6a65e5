package statussync_test

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/statussync"
	"github.com/picket-dev/picket/alert/statussync/statussynctest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	apiKey = "sp-key-MARKER-5f0c2a9e1b7d"
	pageID = "kctbh9vrtdwd"
)

// syncRig is a syncer of four components on a fake clock, with the states a test sets.
type syncRig struct {
	clock  *clock.Fake
	sync   *statussync.Syncer
	api    *statussynctest.Server
	logs   *testkit.Buffer
	mu     sync.Mutex
	states map[alert.Cell]alert.ComponentState
}

func newSyncRig(t *testing.T, key string) *syncRig {
	api, err := statussynctest.New(statussynctest.Options{PageID: pageID, Key: apiKey, Components: []string{"c-logs-eu1", "c-logs-us1", "c-web-eu1", "c-web-us1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	r := &syncRig{clock: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), api: api, logs: &testkit.Buffer{}, states: map[alert.Cell]alert.ComponentState{}}
	r.sync = statussync.New(statussync.Options{
		Sync: &config.StatusSync{URL: api.URL(), PageID: pageID, APIKey: config.NewSecret(key), Every: 5 * time.Minute,
			Components: map[string]map[string]string{"logs": {"eu1": "c-logs-eu1", "us1": "c-logs-us1"}, "web": {"eu1": "c-web-eu1", "us1": "c-web-us1"}}},
		States: func() map[alert.Cell]alert.ComponentState {
			r.mu.Lock()
			defer r.mu.Unlock()
			return maps.Clone(r.states)
		},
		Clock:  r.clock,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return r
}

func (r *syncRig) set(product, region string, s alert.ComponentState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[alert.Cell{Product: product, Region: region}] = s
}

// seconds steps the fake clock one second at a time, a step of the syncer each.
func (r *syncRig) seconds(n int) {
	for range n {
		r.sync.Step(context.Background())
		r.clock.Advance(time.Second)
	}
}

// TestSyncSetsComponentsAndRetries: the states reach the stand-in one request a second,
// changes before resends and the worst first; a 503 and a 429 with Retry-After are
// retried after their wait; a state put back by hand is set again after sync.every;
// the key is never in the log, although the API quoted it.
func TestSyncSetsComponentsAndRetries(t *testing.T) {
	r := newSyncRig(t, apiKey)
	r.seconds(4) // after a start every component is sent once
	got, n, problems := r.api.Snapshot()
	if n != 4 || len(problems) != 0 || len(r.sync.Acked()) != 4 {
		t.Fatalf("after start: %d requests, problems %q, acked %v", n, problems, r.sync.Acked())
	}
	r.set("logs", "eu1", alert.ComponentMajor)
	r.set("web", "eu1", alert.ComponentDegraded)
	r.api.FailNext("7", 503, 429)
	r.sync.Step(context.Background()) // logs.eu1 (worse first): 503
	r.clock.Advance(time.Second)
	r.sync.Step(context.Background()) // web.eu1: 429, Retry-After 7s
	r.seconds(2)                      // logs.eu1 again after 2s: accepted
	if got, _, _ = r.api.Snapshot(); got["c-logs-eu1"] != "major_outage" || got["c-web-eu1"] != "operational" {
		t.Fatalf("3 s later: %v, want logs.eu1 major and web.eu1 still waiting for its Retry-After", got)
	}
	r.seconds(4)
	if got, _, _ = r.api.Snapshot(); got["c-web-eu1"] != "operational" {
		t.Fatalf("web.eu1 was retried before its Retry-After of 7s: %v", got)
	}
	r.seconds(3)
	if got, _, _ = r.api.Snapshot(); got["c-web-eu1"] != "degraded_performance" {
		t.Fatalf("web.eu1 not set after its Retry-After: %v", got)
	}
	// Someone sets a component by hand; the next resend (sync.every) puts it back.
	r.api.Set("c-logs-us1", "under_maintenance")
	r.seconds(int((5 * time.Minute) / time.Second))
	if got, _, _ = r.api.Snapshot(); got["c-logs-us1"] != "operational" {
		t.Errorf("a hand-set component was not put back within sync.every: %v", got)
	}
	if strings.Contains(r.logs.String(), apiKey) || !strings.Contains(r.logs.String(), "status sync: could not set a component") {
		t.Errorf("log (the key must not be in it, the failure must):\n%s", r.logs.String())
	}
}

// TestSyncRefusedKeyWaitsAndHidesIt: a refused key (401) is not hammered (one try per
// component per sync.every) and never reaches the log.
func TestSyncRefusedKeyWaitsAndHidesIt(t *testing.T) {
	r := newSyncRig(t, "sp-key-WRONG-a1b2c3d4e5f6")
	r.seconds(60)
	_, n, problems := r.api.Snapshot()
	if n != 4 || len(problems) != 4 {
		t.Errorf("%d requests in a minute with a refused key (problems %q), want one per component", n, problems)
	}
	if strings.Contains(r.logs.String(), "sp-key-WRONG-a1b2c3d4e5f6") || !strings.Contains(r.logs.String(), "401") {
		t.Errorf("log:\n%s", r.logs.String())
	}
}
