package notifiers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
)

// TestNotifierTimeoutIsHonoured: a PagerDuty notifier configured with `timeout: 2s`
// whose receiver answers 202 after 600ms is confirmed at its first attempt, although
// the outbox's own attempt timeout is shorter (200ms here, standing for the default
// 10 s against an answer after 15 s): the configured timeout is the attempt's.
func TestNotifierTimeoutIsHonoured(t *testing.T) {
	recv, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Close() })
	recv.SetFault(pdtest.Fault{Delay: 600 * time.Millisecond})
	yaml := fmt.Sprintf(`
regions:
  eu1: {vars: {api: "http://127.0.0.1:1"}}
products:
  - name: web
    journeys:
      - name: home
        steps:
          - http: {url: "{{.region.api}}/"}
notifiers:
  pd: {pagerduty: {routing_key: %q, events_url: %q}, timeout: 2s}
routes:
  - notify: [pd]
`, routingKey, recv.URL())
	cfg, err := config.Parse("picket.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var results []notify.AttemptResult
	ob, err := notify.NewOutbox(notify.OutboxOptions{Store: st, Notifiers: notifiers.Build(cfg, nil, nil),
		AttemptTimeout: 200 * time.Millisecond, OnResult: func(r notify.AttemptResult) { results = append(results, r) }})
	if err != nil {
		t.Fatal(err)
	}
	n := notify.Notification{ID: "n1", Action: notify.ActionTrigger, DedupKey: "picket/region/eu1", Scope: "region",
		Summary: "[REGION eu1] down", Severity: notify.SeverityCritical, Source: "test", Created: time.Now()}
	if err := ob.Enqueue(notify.Delivery{Notification: n, Notify: []string{"pd"}}); err != nil {
		t.Fatal(err)
	}
	ob.Step(t.Context()) // one attempt, synchronously
	if len(results) != 1 || !results[0].OK {
		t.Fatalf("first attempt: %+v, want accepted: the notifier's 2s timeout, not the outbox's 200ms, bounds it", results)
	}
	if got := recv.Requests(); got != 1 {
		t.Errorf("receiver got %d requests, want 1", got)
	}
}
