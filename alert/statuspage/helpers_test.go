package statuspage_test

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// product is one product of a generated test config.
type product struct {
	name, title string
	priority    int
	regions     []string // empty: every region
	journeys    []string
}

// smallPlatform is what most tests watch: three regions, three products.
var smallPlatform = platform{
	regions: [][2]string{{"eu1", "Europe 1"}, {"us1", "US East 1"}, {"ap1", "Asia Pacific 1"}},
	products: []product{
		{name: "logs", title: "Log Management", priority: 1, journeys: []string{"submit-and-read"}},
		{name: "metrics", title: "Metrics", priority: 1, journeys: []string{"write-and-query"}},
		{name: "events", title: "Events API", priority: 2, regions: []string{"eu1", "us1"}, journeys: []string{"submit-and-read"}},
	},
}

// realisticPlatform is the README screenshot's (and the browser test's): four regions,
// four products, as in examples/platform.yaml.
var realisticPlatform = platform{
	vantage: "fsn1-vps",
	regions: [][2]string{{"eu1", "Europe 1"}, {"us1", "US East 1"}, {"us3", "US West 3"}, {"ap1", "Asia Pacific 1"}},
	products: []product{
		{name: "logs", title: "Log Management", priority: 1, journeys: []string{"submit-and-read"}},
		{name: "metrics", title: "Metrics", priority: 1, journeys: []string{"write-and-query"}},
		{name: "events", title: "Events API", priority: 2, regions: []string{"eu1", "us1", "us3"}, journeys: []string{"submit-and-read"}},
		{name: "web", title: "Web App", priority: 2, journeys: []string{"home", "login-page"}},
	},
}

type platform struct {
	vantage  string
	regions  [][2]string // name, title
	products []product
	extra    string // more top-level YAML (public:, comms:)
}

// yaml writes the config: thresholds of 1 and no group wait, so one round of results
// makes targets fire and incidents open at once.
func (p platform) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vantage: %s\n", cmp.Or(p.vantage, "test-vantage"))
	b.WriteString(`defaults: {interval: 30s, timeout: 5s, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 0s}
blast_radius: {region_min_products: 2, product_min_regions: 2, global_min_regions: 3}
notifiers:
  hook: {webhook: {url: "http://127.0.0.1:1/hook"}}
routes:
  - match: {scope: [global, region, product, target]}
    notify: [hook]
regions:
`)
	for _, r := range p.regions {
		fmt.Fprintf(&b, "  %s: {title: %q, vars: {api: \"http://127.0.0.1:1\"}}\n", r[0], r[1])
	}
	b.WriteString("products:\n")
	for _, pr := range p.products {
		fmt.Fprintf(&b, "  - name: %s\n    title: %q\n    priority: %d\n", pr.name, pr.title, pr.priority)
		if len(pr.regions) > 0 {
			fmt.Fprintf(&b, "    regions: [%s]\n", strings.Join(pr.regions, ", "))
		}
		b.WriteString("    journeys:\n")
		for _, j := range pr.journeys {
			fmt.Fprintf(&b, "      - name: %s\n        steps:\n          - http: {url: \"{{.region.api}}/%s\"}\n", j, j)
		}
	}
	b.WriteString(p.extra)
	return b.String()
}

// clock is the one time source of a rig's engine and handler.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// rig is a real engine on a real store with a real (not running) outbox.
type rig struct {
	t      testing.TB
	clock  *clock
	cfg    *config.Config
	store  *store.Store
	outbox *notify.Outbox
	engine *alert.Engine
}

func newRig(t testing.TB, p platform, start time.Time) *rig {
	t.Helper()
	cfg, err := config.Parse("statuspage-test.yaml", []byte(p.yaml()))
	if err != nil {
		t.Fatalf("parse test config: %v", err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: start}
	// Never Run: its entries stay pending, which is what /api/v1/outbox shows.
	ob, err := notify.NewOutbox(notify.OutboxOptions{Store: st, Now: clk.Now})
	if err != nil {
		t.Fatalf("new outbox: %v", err)
	}
	eng, err := alert.NewEngine(alert.EngineOptions{Config: cfg, Store: st, Outbox: ob, Now: clk.Now})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	return &rig{t: t, clock: clk, cfg: cfg, store: st, outbox: ob, engine: eng}
}

// source is what the daemon wires: the engine, the store's history, the outbox.
func (r *rig) source() statuspage.Source { return engineSource{r.engine, r.store, r.outbox} }

type engineSource struct {
	engine *alert.Engine
	store  *store.Store
	outbox *notify.Outbox
}

func (s engineSource) Snapshot() alert.Status { return s.engine.Snapshot() }
func (s engineSource) FindIncident(key string) (alert.Incident, bool, error) {
	return s.engine.FindIncident(key)
}
func (s engineSource) Closed(limit int) ([]alert.Incident, error) { return s.engine.Closed(limit) }
func (s engineSource) History(target string, from, to time.Time, step time.Duration) ([]store.Bucket, error) {
	return s.store.History(target, from, to, step)
}
func (s engineSource) Silences() []alert.Silence { return s.engine.Silences() }
func (s engineSource) AddSilence(x alert.Silence) (alert.Silence, error) {
	return s.engine.AddSilence(x)
}
func (s engineSource) DeleteSilence(id string) error { return s.engine.DeleteSilence(id) }
func (s engineSource) Outbox() []notify.EntryInfo    { return s.outbox.Entries() }
func (s engineSource) PostUpdate(key string, u alert.Update) (alert.Incident, alert.Update, error) {
	return s.engine.PostUpdate(key, u)
}

// round gives every target one result at the rig's time: down where down says so,
// else up; the results go to the engine (as one round) and to the history.
func (r *rig) round(down func(t *config.Target) bool) {
	r.t.Helper()
	now := r.clock.Now()
	var results []probe.Result
	var history []store.Result
	for _, t := range r.cfg.Targets {
		res := probe.Result{
			Target: t.ID, Product: t.Product, Journey: t.Journey, Region: t.Region,
			Started: now, Duration: 180 * time.Millisecond, Status: probe.StatusUp, Tries: 1,
		}
		if down != nil && down(t) {
			res.Status = probe.StatusDown
			res.Error = fmt.Sprintf("step %s: status 503 Service Unavailable, want 200", t.Journey)
			res.FailedStep = t.Journey
		}
		results = append(results, res)
		history = append(history, store.Result{Target: t.ID, At: now, Status: string(res.Status)})
	}
	r.engine.ObserveAll(results)
	if err := r.store.RecordResults(history); err != nil {
		r.t.Fatalf("record history: %v", err)
	}
}

// failing selects targets by region and, when given, products.
func failing(region string, products ...string) func(t *config.Target) bool {
	return func(t *config.Target) bool {
		return t.Region == region && (len(products) == 0 || slices.Contains(products, t.Product))
	}
}

// anyOf fails a target when any of the selectors does.
func anyOf(sel ...func(t *config.Target) bool) func(t *config.Target) bool {
	return func(t *config.Target) bool {
		for _, s := range sel {
			if s(t) {
				return true
			}
		}
		return false
	}
}

func (r *rig) targetID(product, journey, region string) string {
	for _, t := range r.cfg.Targets {
		if t.Product == product && t.Journey == journey && t.Region == region {
			return t.ID
		}
	}
	r.t.Fatalf("no target %s/%s@%s in the test config", product, journey, region)
	return ""
}

// regionalFault: eu1 is out for logs and metrics (a region incident), after a round
// of all-up results that every cell has data for.
func (r *rig) regionalFault() {
	r.round(nil)
	r.clock.Advance(30 * time.Second)
	r.round(failing("eu1", "logs", "metrics"))
}

// answer is one HTTP exchange's result.
type answer struct {
	status int
	header http.Header
	body   string
}

// serve starts h on a loopback test server, closed when the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path string, body io.Reader, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatalf("request %s %s: %v", method, path, err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer of %s %s: %v", method, path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
