package notifiers_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/alert/notify/webhook"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// destination is one real receiver and the notifier configs that reach it.
type destination struct {
	config  func(name string) *config.Notifier // this receiver, under any name
	other   func(name string) *config.Notifier // the same kind, somewhere else
	setDown func(down bool)                    // 503 to everything while down
	got     func() []string                    // "action:dedup" accepted here, in order
	secrets []string                           // must never reach a log line or the store
}

const (
	routingKey      = "R0UT1NGKEY0123456789abcdefABCDEF" // 32 characters, as PagerDuty's
	otherRoutingKey = "0THERKEY0123456789abcdefABCDEF00"
	hookToken       = "T0KEN-4f9c2a7d1e8b6035"
)

func pagerDuty(t *testing.T) destination {
	recv, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatalf("pdtest.New: %v", err)
	}
	t.Cleanup(func() { _ = recv.Close() })
	pd := func(key string) func(string) *config.Notifier {
		return func(name string) *config.Notifier {
			return &config.Notifier{Name: name, Timeout: 2 * time.Second,
				PagerDuty: &config.PagerDuty{RoutingKey: config.NewSecret(key), EventsURL: recv.URL()}}
		}
	}
	return destination{
		config: pd(routingKey),
		other:  pd(otherRoutingKey),
		setDown: func(down bool) {
			if down {
				recv.SetFault(pdtest.Fault{Status: http.StatusServiceUnavailable})
			} else {
				recv.ClearFault()
			}
		},
		got: func() []string {
			var out []string
			for _, ev := range recv.Events() {
				if ev.RoutingKey == routingKey {
					out = append(out, ev.Action+":"+ev.DedupKey)
				}
			}
			return out
		},
		secrets: []string{routingKey, otherRoutingKey},
	}
}

// hookServer is a webhook receiver on 127.0.0.1 that keeps what it accepted.
type hookServer struct {
	mu   sync.Mutex
	down bool
	got  []string
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p webhook.Payload
	if err := json.NewDecoder(req.Body).Decode(&p); err != nil || !strings.HasSuffix(req.URL.Path, hookToken) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.got = append(h.got, p.Notification.Action+":"+p.Notification.DedupKey)
}

func webhookDestination(t *testing.T) destination {
	h := &hookServer{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hook := func(path string) func(string) *config.Notifier {
		return func(name string) *config.Notifier {
			return &config.Notifier{Name: name, Timeout: 2 * time.Second,
				Webhook: &config.Webhook{URL: config.NewSecret(srv.URL + path)}}
		}
	}
	return destination{
		config:  hook("/hooks/" + hookToken),
		other:   hook("/elsewhere/" + hookToken + "-other"),
		setDown: func(down bool) { h.mu.Lock(); h.down = down; h.mu.Unlock() },
		got: func() []string {
			h.mu.Lock()
			defer h.mu.Unlock()
			return append([]string(nil), h.got...)
		},
		secrets: []string{hookToken},
	}
}

// rig is the daemon's outbox wiring on a real bbolt file: notifiers built from config,
// SetNotifiers on a reload, a new outbox on the reopened store on a restart. It is
// driven by Step on a fake clock.
type rig struct {
	t      *testing.T
	dir    string
	store  *store.Store
	outbox *notify.Outbox
	clock  *clock.Fake
	logs   *testkit.Buffer
	log    *slog.Logger
	client *http.Client // every notifier's, so its connections close with the test
}

func newRig(t *testing.T) *rig {
	logs := &testkit.Buffer{}
	client := notify.NewHTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	return &rig{t: t, dir: t.TempDir(), logs: logs, clock: clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)),
		log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), client: client}
}

func configOf(ns ...*config.Notifier) *config.Config {
	cfg := &config.Config{Notifiers: map[string]*config.Notifier{}}
	for _, n := range ns {
		cfg.Notifiers[n.Name] = n
	}
	return cfg
}

// start is a daemon start: it (re)opens the store file and makes a new outbox on it.
func (r *rig) start(cfg *config.Config) {
	r.t.Helper()
	if r.store != nil {
		if err := r.store.Close(); err != nil {
			r.t.Fatalf("store Close: %v", err)
		}
	}
	s, err := store.Open(r.dir, store.Options{})
	if err != nil {
		r.t.Fatalf("store.Open: %v", err)
	}
	r.store = s
	r.t.Cleanup(func() { _ = s.Close() })
	r.outbox, err = notify.NewOutbox(notify.OutboxOptions{Store: s, Notifiers: notifiers.Build(cfg, r.client, r.log),
		Logger: r.log, Clock: r.clock, Jitter: func() float64 { return 0.5 }, MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
	if err != nil {
		r.t.Fatalf("NewOutbox: %v", err)
	}
}

// reload is the daemon's reload(): the same outbox, new notifiers.
func (r *rig) reload(cfg *config.Config) {
	r.outbox.SetNotifiers(notifiers.Build(cfg, r.client, r.log))
}

func (r *rig) enqueue(action, dedup string, notify_ ...string) {
	r.t.Helper()
	n := notify.Notification{ID: action + "-" + dedup, Action: action, DedupKey: dedup, Scope: "region",
		Summary: "[REGION eu1] logs down", Severity: notify.SeverityCritical, Source: "test", Created: r.clock.Now()}
	if err := r.outbox.Enqueue(notify.Delivery{Notification: n, Notify: notify_}); err != nil {
		r.t.Fatalf("Enqueue: %v", err)
	}
}

// drive steps for at most d of fake time.
func (r *rig) drive(d time.Duration) {
	end := r.clock.Now().Add(d)
	for {
		next := r.outbox.Step(r.t.Context())
		if next.IsZero() || next.After(end) {
			return
		}
		r.clock.Set(next)
	}
}

// labels lists the notifier of each pending entry, as Entries and as the store say.
func (r *rig) labels() (entries, stored []string) {
	r.t.Helper()
	for _, e := range r.outbox.Entries() {
		entries = append(entries, e.Notifier)
	}
	err := r.store.ForEach(notify.OutboxBucket, func(_ string, raw []byte) error {
		var rec struct { // one record per delivery, a part per notifier
			Parts []struct {
				Notifier string `json:"notifier"`
			} `json:"parts"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return err
		}
		for _, p := range rec.Parts {
			stored = append(stored, p.Notifier)
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("store ForEach: %v", err)
	}
	return entries, stored
}

// checkNoSecret: no log line and no stored entry carries a secret of dst, and no log
// line an identity (stored, it is only compared).
func (r *rig) checkNoSecret(dst destination) {
	r.t.Helper()
	var stored strings.Builder
	_ = r.store.ForEach(notify.OutboxBucket, func(_ string, raw []byte) error { stored.Write(raw); return nil })
	for _, s := range dst.secrets {
		if strings.Contains(r.logs.String(), s) {
			r.t.Errorf("a log line carries a secret:\n%s", r.logs.String())
		}
		if strings.Contains(stored.String(), s) {
			r.t.Errorf("a stored entry carries a secret: %s", stored.String())
		}
	}
	for _, n := range notifiers.Build(configOf(dst.config("x"), dst.other("y")), nil, nil) {
		if id := n.(notify.Identifier).Identity(); strings.Contains(r.logs.String(), id) {
			r.t.Errorf("a log line carries the identity of %s:\n%s", n.Name(), r.logs.String())
		}
	}
}

// checkLog: some log line has every one of parts.
func (r *rig) checkLog(parts ...string) {
	r.t.Helper()
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return
		}
	}
	r.t.Errorf("no log line has all of %q:\n%s", parts, r.logs.String())
}

var destinations = []struct {
	name string
	make func(*testing.T) destination
}{
	{"pagerduty", pagerDuty},
	{"webhook", webhookDestination},
}

// TestRenamedNotifierKeepsItsQueuedPages: renaming a notifier (same kind and
// destination) while pages wait for it must not drop them.
func TestRenamedNotifierKeepsItsQueuedPages(t *testing.T) {
	for _, d := range destinations {
		t.Run(d.name+"/reload", func(t *testing.T) {
			dst, r := d.make(t), newRig(t)
			dst.setDown(true)
			r.start(configOf(dst.config("old")))
			r.enqueue(notify.ActionTrigger, "k", "old")
			r.drive(0) // 503: the trigger waits in old's lane

			r.reload(configOf(dst.config("new")))
			if entries, stored := r.labels(); strings.Join(entries, ",") != "new" || strings.Join(stored, ",") != "new" {
				t.Errorf("after the reload the entry is labelled %v in memory and %v in the store, want \"new\"", entries, stored)
			}
			r.enqueue(notify.ActionResolve, "k", "new") // behind the trigger: one lane again
			dst.setDown(false)
			r.drive(time.Minute)
			// In one lane the resolve makes the undelivered trigger moot (coalesced): the
			// receiver gets the resolve alone. In two lanes it would get both.
			if got := strings.Join(dst.got(), " "); got != "resolve:k" || r.outbox.Pending() != 0 {
				t.Errorf("the receiver got %q, %d pending; want the resolve, in the lane of the trigger queued before the rename",
					got, r.outbox.Pending())
			}
			r.checkLog("dropped queued notifications unsent", `"notifier":"new"`, `"dropped":"trigger"`)
			if strings.Contains(r.logs.String(), "refused for good") {
				t.Errorf("a page was dropped:\n%s", r.logs.String())
			}
			r.checkLog(`"level":"WARN"`, "renamed", `"from":"old"`, `"to":"new"`, `"entries":1`)
			r.checkNoSecret(dst)
		})
		t.Run(d.name+"/restart", func(t *testing.T) {
			dst, r := d.make(t), newRig(t)
			dst.setDown(true)
			r.start(configOf(dst.config("old")))
			r.enqueue(notify.ActionTrigger, "k", "old")
			r.drive(0)

			r.start(configOf(dst.config("new")))
			if entries, stored := r.labels(); strings.Join(entries, ",") != "new" || strings.Join(stored, ",") != "new" {
				t.Errorf("after the restart the entry is labelled %v in memory and %v in the store, want \"new\"", entries, stored)
			}
			dst.setDown(false)
			r.drive(time.Minute)
			if got := strings.Join(dst.got(), " "); got != "trigger:k" || r.outbox.Pending() != 0 {
				t.Errorf("the receiver got %q, %d pending; want the trigger queued before the restart", got, r.outbox.Pending())
			}
			r.checkLog("renamed", `"from":"old"`, `"to":"new"`)
			r.checkNoSecret(dst)
		})
		t.Run(d.name+"/removed by a reload: sent with its last settings", func(t *testing.T) {
			dst, r := d.make(t), newRig(t)
			dst.setDown(true)
			r.start(configOf(dst.config("old")))
			r.enqueue(notify.ActionTrigger, "k", "old")
			r.drive(0)

			r.reload(configOf(dst.other("other"))) // nothing left with old's destination
			dst.setDown(false)
			r.drive(time.Minute)
			if got := strings.Join(dst.got(), " "); got != "trigger:k" || r.outbox.Pending() != 0 {
				t.Errorf("old's receiver got %q, %d pending; want the trigger, sent by the retired notifier", got, r.outbox.Pending())
			}
			r.checkLog(`"level":"WARN"`, "left the config", "still sent with its last settings", `"notifier":"old"`)
			r.checkNoSecret(dst)
		})
		t.Run(d.name+"/unknown by name and destination after a restart: refused for good, said clearly", func(t *testing.T) {
			dst, r := d.make(t), newRig(t)
			dst.setDown(true)
			r.start(configOf(dst.config("old")))
			r.enqueue(notify.ActionTrigger, "k", "old")
			r.drive(0)

			r.start(configOf(dst.other("other")))
			dst.setDown(false)
			r.drive(time.Minute)
			if got := dst.got(); len(got) != 0 || r.outbox.Pending() != 0 {
				t.Errorf("the receiver got %q, %d pending; want nothing sent and the entry dropped", got, r.outbox.Pending())
			}
			logs := r.logs.String()
			if !strings.Contains(logs, "refused for good") || !strings.Contains(logs, `expected a notifier named \"old\"`) {
				t.Errorf("the drop is not logged clearly:\n%s", logs)
			}
			r.checkLog(`"level":"ERROR"`, "nor of its kind and destination", `"notifier":"old"`, `"entries":1`)
			r.checkNoSecret(dst)
		})
	}
}
