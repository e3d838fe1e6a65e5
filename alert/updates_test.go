package alert

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/internal/testkit"
	"github.com/picket-dev/picket/probe"
)

// updatesEngine is an engine on a gated real store whose human updates go to the
// webhook (comms.updates_notify), with the region incident of eu1 open.
func updatesEngine(t *testing.T) (*Engine, *gatedStore) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := engineConfigOf(t, "{group_wait: 0s}", `
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}, us1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: logs, priority: 1, journeys: [{name: a, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: metrics, priority: 1, journeys: [{name: q, steps: [{http: {url: "{{.region.api}}/"}}]}]}
comms: {updates_notify: [pd]}
`)
	g := &gatedStore{Store: st}
	e, err := NewEngine(EngineOptions{Config: cfg, Store: g, Outbox: &recordingOutbox{}})
	if err != nil {
		t.Fatal(err)
	}
	e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "down"), resultOf("metrics/q@eu1", "down")})
	return e, g
}

// storedWithUpdate fails unless the store holds the incident with one update and the
// timeline's note that it was sent.
func storedWithUpdate(t *testing.T, st Store, key string) {
	t.Helper()
	inc, ok, err := LoadIncident(st, key)
	if err != nil || !ok {
		t.Fatalf("stored %s: %v %v", key, ok, err)
	}
	sent := slices.ContainsFunc(inc.Timeline, func(ev Event) bool { return ev.Kind == "comms" && strings.Contains(ev.Text, "update sent to pd") })
	if len(inc.Updates) != 1 || !sent {
		t.Errorf("stored %s: updates %+v, timeline %+v; want the update and the note that it was sent", key, inc.Updates, inc.Timeline)
	}
}

// TestPostedUpdateIsOnDiskWhenPostReturns: once PostUpdate answers (the API's 201), the
// update and the note of its message are in the store, not only in the journal.
func TestPostedUpdateIsOnDiskWhenPostReturns(t *testing.T) {
	e, g := updatesEngine(t)
	if _, _, err := e.PostUpdate("picket/region/eu1", Update{Status: UpdateIdentified, Text: "Failing over."}); err != nil {
		t.Fatal(err)
	}
	storedWithUpdate(t, g.Store, "picket/region/eu1")
}

// TestUpdateOfIncidentClosedAMomentAgo: an update posted while the closing commit is
// still under way waits for it and lands on the closed record (it was a 404: the
// archive was still in the journal), with the note of its message.
func TestUpdateOfIncidentClosedAMomentAgo(t *testing.T) {
	e, g := updatesEngine(t)
	g.holdArchives()
	go e.ObserveAll([]probe.Result{resultOf("logs/a@eu1", "up"), resultOf("metrics/q@eu1", "up")}) // resolves; the archive's commit waits at the gate
	testkit.WaitFor(t, 5*time.Second, "the archiving commit at the gate", func() bool { return g.entered.Load() == 1 })
	posted := make(chan error, 1)
	go func() {
		_, _, err := e.PostUpdate("picket/region/eu1", Update{Status: UpdateResolved, Text: "All back."})
		posted <- err
	}()
	select {
	case err := <-posted:
		t.Fatalf("PostUpdate answered (%v) while the closing commit was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	g.open()
	if err := <-posted; err != nil {
		t.Fatalf("update of the incident closed a moment ago: %v", err)
	}
	storedWithUpdate(t, g.Store, "picket/region/eu1")
}
