package daemon

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// TestFleetRestartedAtOnceRemembersItsPages: a and b are cut off from each other, so
// each one is isolated and says so (cluster.notify). The whole fleet then restarts at
// once, healed. No peer remembers those notices, yet each vantage resolves its own, once:
// it knows from its store what it paged. (With the records in memory only, nobody knew,
// and both notices stayed open at the paging service.)
func TestFleetRestartedAtOnceRemembersItsPages(t *testing.T) {
	f := newInProcessFleet(t)
	const settings = "alone_after: 1s, takeover_after: 1s"
	cut := &atomic.Bool{}
	members := f.start(t, settings, memberSpec{name: "a"}, memberSpec{name: "b", wrap: cutter(cut)})
	cut.Store(true)
	keys := []string{"picket/isolated/a", "picket/isolated/b"}
	for _, key := range keys {
		testkit.WaitFor(t, 10*time.Second, key+" paged", func() bool { return f.pd.Count(key, "trigger") >= 1 })
	}
	stopAll(t, members)

	cut.Store(false)
	f.start(t, settings, memberSpec{name: "a"}, memberSpec{name: "b"})
	for _, key := range keys {
		testkit.WaitFor(t, 5*time.Second, key+" resolved after the restart", func() bool { return f.pd.Count(key, "resolve") >= 1 })
	}
	time.Sleep(1200 * time.Millisecond) // a watch round more: nothing else may come
	for _, key := range keys {
		if tr, res := f.pd.Count(key, "trigger"), f.pd.Count(key, "resolve"); tr != 1 || res != 1 {
			t.Errorf("%s: %d triggers and %d resolves, want 1 and 1: %s", key, tr, res, events(f.pd))
		}
	}
}

// stopAll stops the members at once, as a fleet-wide restart does (each waits for its
// leave notice to go out).
func stopAll(t *testing.T, members []*member) {
	t.Helper()
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() {
			if err := m.stop(); err != nil {
				t.Errorf("stop %s: %v", m.name, err)
			}
		})
	}
	wg.Wait()
}
