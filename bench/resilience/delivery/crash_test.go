package delivery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	bolt "go.etcd.io/bbolt"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe/probetest"
)

// The crash loop: a seeded run of crashChanges state changes (each breaks or heals
// one target of the simulated platform), with the daemon killed with SIGKILL at
// crashMinKills..crashMaxKills seeded points and restarted on the same state_dir.
// About half the kills come a seeded delay after a change; the others come the moment
// the receiver accepts the change's page, which is where a kill can fall between the
// receiver's acceptance and the outbox's delete (a window of one fsync, which random
// timing alone would almost never hit).
const (
	crashChanges  = 200
	crashMinKills = 10
	crashMaxKills = 20
	// crashKillWithin bounds the seeded delay between a change and the kill that
	// follows it: the kill lands anywhere from before the probe saw the change to
	// after the page was accepted.
	crashKillWithin = 400 * time.Millisecond
	crashSeed       = 6 // PICKET_RESILIENCE_SEED overrides it, to replay another run
	crashBudget     = 150 * time.Second
	crashRoutingKey = "resiliencecrashroutingkey0000001" // 32 characters
)

var (
	crashRegions  = []string{"eu1", "us1", "us3"}
	crashProducts = []string{"logs", "metrics", "events", "web"}
	listenLine    = regexp.MustCompile(`msg="picket running" listen=(127\.0\.0\.1:\d+)`)
)

// target is one (region, product) of the platform: one journey, one dedup key.
type target struct{ region, product string }

func (tg target) id() string {
	journey := map[string]string{"logs": "submit", "metrics": "query", "events": "submit", "web": "home"}[tg.product]
	return tg.product + "/" + journey + "@" + tg.region
}

func (tg target) key() string { return "picket/target/" + tg.id() }

type change struct {
	target target
	broken bool // true: break it; false: heal it
}

// kill is when, after its change, the daemon is killed.
type kill struct {
	onAccept bool          // the moment the receiver accepts the change's page
	delay    time.Duration // else this long after the change
}

// crashPlan is the seeded script: the changes, and after which change a kill comes.
type crashPlan struct {
	changes []change
	kills   map[int]kill
}

func allTargets() []target {
	var out []target
	for _, r := range crashRegions {
		for _, p := range crashProducts {
			out = append(out, target{region: r, product: p})
		}
	}
	return out
}

// newCrashPlan flips seeded targets, forced to heal toward the end so that nothing is
// broken after the last change.
func newCrashPlan(seed uint64) crashPlan {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	targets := allTargets()
	broken := map[target]bool{}
	var changes []change
	for i := range crashChanges {
		left := crashChanges - i
		var tg target
		if len(broken) > left-2 && len(broken) > 0 { // breaking now would leave too few changes to heal
			var down []target
			for _, t := range targets {
				if broken[t] {
					down = append(down, t)
				}
			}
			tg = down[rng.IntN(len(down))]
		} else {
			tg = targets[rng.IntN(len(targets))]
		}
		broken[tg] = !broken[tg]
		if !broken[tg] {
			delete(broken, tg)
		}
		changes = append(changes, change{target: tg, broken: broken[tg]})
	}
	kills := map[int]kill{}
	for _, i := range rng.Perm(crashChanges)[:crashMinKills+rng.IntN(crashMaxKills-crashMinKills+1)] {
		kills[i] = kill{onAccept: rng.IntN(2) == 0, delay: time.Duration(rng.Int64N(int64(crashKillWithin)))}
	}
	return crashPlan{changes: changes, kills: kills}
}

// action is the page a change must cause: a trigger per break, a resolve per heal.
func (c change) action() string {
	if c.broken {
		return notify.ActionTrigger
	}
	return notify.ActionResolve
}

// expected is the sequence each key must see at the receiver.
func (p crashPlan) expected() map[string][]string {
	out := map[string][]string{}
	for _, c := range p.changes {
		out[c.target.key()] = append(out[c.target.key()], c.action())
	}
	return out
}

func crashSeedFromEnv(t *testing.T) uint64 {
	t.Helper()
	s := os.Getenv("PICKET_RESILIENCE_SEED")
	if s == "" {
		return crashSeed
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("PICKET_RESILIENCE_SEED: expected an unsigned integer, got %q", s)
	}
	return seed
}

// buildPicket builds cmd/picket once for this test: the daemon must be a real child
// process to be killed with SIGKILL.
func buildPicket(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(t.TempDir(), "picket")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/picket")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/picket: %v\n%s", err, out)
	}
	return bin
}

// crashConfig: 12 targets probed every 200 ms, thresholds of 1, no group wait, and a
// blast radius no failure reaches, so that every incident is one target's: one key,
// one trigger per break, one resolve per heal.
func crashConfig(stateDir string, plat *probetest.Platform, pd *pdtest.Receiver) string {
	var b strings.Builder
	fmt.Fprintf(&b, `vantage: resilience-crash
listen: 127.0.0.1:0
state_dir: %q
defaults: {interval: 200ms, timeout: 200ms, failure_threshold: 1, success_threshold: 1}
alerting: {group_wait: 0s}
blast_radius: {region_min_products: 100, product_min_regions: 100, global_min_regions: 100}
regions:
`, stateDir)
	for _, r := range crashRegions {
		fmt.Fprintf(&b, "  %s: {vars: {api: %q}}\n", r, plat.URL(r))
	}
	fmt.Fprintf(&b, `products:
  - name: logs
    journeys: [{name: submit, steps: [{http: {method: POST, url: "{{.region.api}}/v1/logs", body: '{"m":"{{.run.id}}"}'}, expect: {status: [202]}}]}]
  - name: metrics
    journeys: [{name: query, steps: [{http: {url: "{{.region.api}}/v1/query?q=up"}, expect: {json: {status: ok}}}]}]
  - name: events
    journeys: [{name: submit, steps: [{http: {method: POST, url: "{{.region.api}}/v1/events", body: '{"e":"{{.run.id}}"}'}, expect: {status: [202]}}]}]
  - name: web
    journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]
notifiers:
  pd: {pagerduty: {routing_key: %q, events_url: %q}}
routes:
  - notify: [pd]
`, crashRoutingKey, pd.BaseURL())
	return b.String()
}

// daemonChild is one `picket run` process.
type daemonChild struct {
	cmd  *exec.Cmd
	logs *testkit.Buffer
	api  daemonAPI
}

// startChild starts `picket run` and waits until it listens.
func startChild(t *testing.T, bin, cfg string) *daemonChild {
	t.Helper()
	c := &daemonChild{logs: &testkit.Buffer{}}
	c.cmd = exec.Command(bin, "run", "-c", cfg, "--log-format", "text")
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start picket run: %v", err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	var addr string
	poll(t, 10*time.Second, 5*time.Millisecond, "picket run to listen", func() (bool, string) {
		m := listenLine.FindStringSubmatch(c.logs.String())
		if m == nil {
			return false, tail(c.logs.String(), 5)
		}
		addr = m[1]
		return true, ""
	})
	c.api = newDaemonAPI("http://" + addr)
	return c
}

func (c *daemonChild) kill() error {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("SIGKILL: %w", err)
	}
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		return nil
	}
	return fmt.Errorf("expected death by SIGKILL, got %v", err)
}

// stop ends the child with SIGTERM, as an operator would, and wants exit 0.
func (c *daemonChild) stop() error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("no exit within 15s of SIGTERM: %w", <-exited)
	}
}

// pendingPage is a pending part of an outbox delivery (the fields this test reads).
type pendingPage struct {
	Seq          uint64
	Notifier     string
	Notification notify.Notification
	IsFallback   bool
}

// storedDelivery is an outbox record as the store holds it: one per delivery, a part
// per notifier (the fields this test reads).
type storedDelivery struct {
	Notification notify.Notification `json:"notification"`
	Parts        []struct {
		Seq      uint64 `json:"seq"`
		Notifier string `json:"notifier"`
		Fallback bool   `json:"fallback"`
		Outcome  string `json:"outcome"` // "" while pending
	} `json:"parts"`
}

// checkStateFile opens the dead daemon's bbolt file, runs bbolt's consistency check
// over it, and returns the pending pages in enqueue order.
func checkStateFile(path string) ([]pendingPage, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var pending []pendingPage
	err = db.View(func(tx *bolt.Tx) error {
		var problems []error
		for err := range tx.Check() {
			problems = append(problems, err)
		}
		if len(problems) > 0 {
			return fmt.Errorf("bbolt consistency check: %d problem(s): %w", len(problems), errors.Join(problems...))
		}
		b := tx.Bucket([]byte(notify.OutboxBucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var d storedDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("outbox entry %s: expected JSON: %w", k, err)
			}
			for _, p := range d.Parts {
				if p.Outcome == "" {
					pending = append(pending, pendingPage{Seq: p.Seq, Notifier: p.Notifier, Notification: d.Notification, IsFallback: p.Fallback})
				}
			}
			return nil
		})
	})
	slices.SortStableFunc(pending, func(a, b pendingPage) int { return cmp.Compare(a.Seq, b.Seq) })
	return pending, err
}

// acceptedNotDeleted lists the keys whose oldest pending page for PagerDuty has the
// same action as the receiver's last event for that key. Actions of a key alternate,
// so that page was accepted before the kill and not yet deleted: the restarted
// daemon will send it again.
func acceptedNotDeleted(pending []pendingPage, events []pdtest.Event) []string {
	last := map[string]string{}
	for _, ev := range events {
		last[ev.DedupKey] = ev.Action
	}
	head := map[string]bool{}
	var out []string
	for _, p := range pending {
		key := p.Notification.DedupKey
		if p.Notifier != "pd" || p.IsFallback || head[key] {
			continue
		}
		head[key] = true
		if last[key] == p.Notification.Action {
			out = append(out, key+" "+p.Notification.Action)
		}
	}
	return out
}

// observeLimit bounds how long a running daemon may take to decide one change: a
// probe round (200 ms) and a delivery take a fraction of it.
const observeLimit = 5 * time.Second

// observed waits until the running daemon has decided the change: a break's incident
// is open and paged, a healed target's incident is closed. When that does not come
// within observeLimit it says what the daemon shows instead.
func observed(c *daemonChild, ch change) error {
	deadline := time.Now().Add(observeLimit)
	for {
		st, err := c.api.status()
		if err == nil {
			i := slices.IndexFunc(st.Incidents, func(inc alert.Incident) bool { return inc.Key == ch.target.key() })
			if (ch.broken && i >= 0 && st.Incidents[i].Triggered) || (!ch.broken && i < 0) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("after %v the daemon shows target state %q and incident %s",
					observeLimit, targetState(st, ch.target.id()), describeIncident(st.Incidents, i))
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", observeLimit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func targetState(st statusView, id string) string {
	for _, tv := range st.Targets {
		if tv.Target == id {
			return string(tv.State)
		}
	}
	return "(no such target)"
}

func describeIncident(incs []alert.Incident, i int) string {
	if i < 0 {
		return "(none open)"
	}
	inc := incs[i]
	var lines []string
	for _, ev := range inc.Timeline[max(0, len(inc.Timeline)-4):] {
		lines = append(lines, ev.Kind+": "+ev.Text)
	}
	return fmt.Sprintf("%s open (triggered %v, targets %v; timeline ends %q)", inc.Key, inc.Triggered, inc.Targets, lines)
}

// waitAccepted returns the moment the receiver has accepted the change's page (one
// more of its key and action than `seen`).
func waitAccepted(t *testing.T, pd *pdtest.Receiver, ch change, seen int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := pd.WaitFor(ctx, func(events []pdtest.Event) bool {
		n := 0
		for _, ev := range events {
			if ev.DedupKey == ch.target.key() && ev.Action == ch.action() {
				n++
			}
		}
		return n > seen
	})
	if err != nil {
		t.Fatalf("the %s for %s: %v", ch.action(), ch.target.id(), err)
	}
}

// cycle is one kill and restart, timed.
type cycle struct {
	kill, check, restart time.Duration
}

// TestCrashLoopLosesNothingAndNeverCorrupts runs `picket run` as a child process
// through 200 seeded state changes, kills it with SIGKILL at 10–20 seeded points
// (each a seeded 0–400 ms after a change) and restarts it on the same state_dir.
// After each kill the bbolt file passes bbolt's consistency check. At the end (all
// healed, outbox empty) the receiver's record, per dedup key, is the expected
// sequence — a trigger per break and a resolve per heal, alternating, starting with a
// trigger and ending with a resolve — except for repeats of the page that a kill left
// accepted-but-not-deleted, which are counted and must not outnumber the kills.
func TestCrashLoopLosesNothingAndNeverCorrupts(t *testing.T) {
	requireResilience(t)
	began := time.Now()
	seed := crashSeedFromEnv(t)
	plan := newCrashPlan(seed)
	bin := buildPicket(t)
	built := time.Since(began)

	plat, err := probetest.Start(probetest.Options{Regions: crashRegions, IngestDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plat.Close() })
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "picket.yaml")
	if err := os.WriteFile(cfg, []byte(crashConfig(stateDir, plat, pd)), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(stateDir, store.FileName)

	var logs []*testkit.Buffer // every incarnation's, for a failure
	t.Cleanup(func() {
		if t.Failed() && len(logs) > 0 {
			t.Logf("last daemon log (tail):\n%s", tail(logs[len(logs)-1].String(), 60))
		}
	})
	c := startChild(t, bin, cfg)
	logs = append(logs, c.logs)
	var cycles []cycle
	var predicted []string // "key action" repeats foreseen at the kills
	onAccept, late := 0, 0 // kills at acceptance; changes not decided within observeLimit
	deadline := began.Add(crashBudget)
	for i, ch := range plan.changes {
		if time.Now().After(deadline) {
			t.Fatalf("over the %v budget after %d of %d changes", crashBudget, i, len(plan.changes))
		}
		seen := pd.Count(ch.target.key(), ch.action())
		if ch.broken {
			plat.SetFault(ch.target.region, ch.target.product, probetest.Fault{Kind: probetest.FaultError})
		} else {
			plat.SetFault(ch.target.region, ch.target.product, probetest.Fault{})
		}
		if k, ok := plan.kills[i]; ok {
			if k.onAccept {
				waitAccepted(t, pd, ch, seen)
				onAccept++
			} else {
				time.Sleep(k.delay) // the seeded point of the kill, not a wait for a condition
			}
			cy, repeats := killAndRestart(t, &c, bin, cfg, dbPath, pd)
			logs = append(logs, c.logs)
			cycles = append(cycles, cy)
			predicted = append(predicted, repeats...)
		}
		if err := observed(c, ch); err != nil {
			late++
			t.Errorf("change %d (%s %s, after kill %d): not decided: %v", i, ch.action(), ch.target.id(), len(cycles), err)
		}
	}
	loopDone := time.Now()

	// Quiet: everything healed, the outbox empty, nothing open at the receiver.
	poll(t, 30*time.Second, 50*time.Millisecond, "an empty outbox and no open alert", func() (bool, string) {
		entries, err := c.api.outbox()
		if err != nil {
			return false, err.Error()
		}
		return len(entries) == 0 && len(pd.Open()) == 0, fmt.Sprintf("outbox %d, open at the receiver %v", len(entries), keysOf(pd.Open()))
	})
	if err := c.stop(); err != nil {
		t.Errorf("picket run after SIGTERM: %v", err)
	}
	if _, err := checkStateFile(dbPath); err != nil {
		t.Errorf("after the final stop: %v", err)
	}

	duplicates := compareRecord(t, plan, pd.Events(), predicted)
	if duplicates > len(cycles) {
		t.Errorf("%d duplicate deliveries for %d kills: more than one per kill", duplicates, len(cycles))
	}
	t.Logf("figures: seed %d; %d state changes, %d kills (%d the moment a page was accepted, %d at a seeded 0-%v after a change), %d events at the receiver, %d duplicate(s) (%d foreseen as accepted-not-deleted at a kill)",
		seed, len(plan.changes), len(cycles), onAccept, len(cycles)-onAccept, crashKillWithin, len(pd.Events()), duplicates, len(predicted))
	if late > 0 {
		t.Logf("figures: %d change(s) not decided within %v of the change", late, observeLimit)
	}
	t.Logf("figures: kill-restart cycle mean %v, max %v (SIGKILL to dead mean %v; bbolt check mean %v; restart to listening mean %v)",
		meanOf(cycles, func(c cycle) time.Duration { return c.kill + c.check + c.restart }),
		maxOf(cycles, func(c cycle) time.Duration { return c.kill + c.check + c.restart }),
		meanOf(cycles, func(c cycle) time.Duration { return c.kill }),
		meanOf(cycles, func(c cycle) time.Duration { return c.check }),
		meanOf(cycles, func(c cycle) time.Duration { return c.restart }))
	t.Logf("figures: build %v, change loop %v (%v per change), total %v",
		built.Round(time.Millisecond), loopDone.Sub(began.Add(built)).Round(time.Millisecond),
		(loopDone.Sub(began.Add(built)) / time.Duration(len(plan.changes))).Round(time.Millisecond),
		time.Since(began).Round(time.Millisecond))
}

// killAndRestart kills the child, checks its bbolt file while it is dead, foresees the
// repeats, and starts a new child on the same state_dir.
func killAndRestart(t *testing.T, c **daemonChild, bin, cfg, dbPath string, pd *pdtest.Receiver) (cycle, []string) {
	t.Helper()
	t0 := time.Now()
	if err := (*c).kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	t1 := time.Now()
	pending, err := checkStateFile(dbPath)
	if err != nil {
		t.Fatalf("after a SIGKILL: %v", err)
	}
	repeats := acceptedNotDeleted(pending, pd.Events())
	t2 := time.Now()
	*c = startChild(t, bin, cfg)
	return cycle{kill: t1.Sub(t0), check: t2.Sub(t1), restart: time.Since(t2)}, repeats
}

// compareRecord checks the receiver's record against the plan and returns how many
// events were repeats. A repeat is an event equal to the one before it for the same
// key; every repeat must have been foreseen at a kill.
func compareRecord(t *testing.T, plan crashPlan, events []pdtest.Event, predicted []string) int {
	t.Helper()
	want := plan.expected()
	got := actionsByKey(events)
	unexplained := slices.Clone(predicted)
	duplicates := 0
	for _, key := range keysOf(got) {
		if want[key] == nil {
			t.Errorf("%s: the receiver got %v for a target the plan never broke", key, got[key])
		}
	}
	for _, key := range keysOf(want) {
		var collapsed []string
		for i, action := range got[key] {
			if i > 0 && action == got[key][i-1] {
				duplicates++
				j := slices.Index(unexplained, key+" "+action)
				if j < 0 {
					t.Errorf("%s: %s repeated (event %d of %v) without a kill between acceptance and delete", key, action, i+1, got[key])
					continue
				}
				unexplained = slices.Delete(unexplained, j, j+1)
				continue
			}
			collapsed = append(collapsed, action)
		}
		if !slices.Equal(collapsed, want[key]) {
			t.Errorf("%s: the receiver got %v (repeats removed: %v), expected %v", key, got[key], collapsed, want[key])
		}
	}
	if len(unexplained) > 0 {
		t.Logf("foreseen repeats that did not come (the restarted daemon found the entry already gone?): %v", unexplained)
	}
	return duplicates
}

func meanOf(cs []cycle, f func(cycle) time.Duration) time.Duration {
	if len(cs) == 0 {
		return 0
	}
	var sum time.Duration
	for _, c := range cs {
		sum += f(c)
	}
	return (sum / time.Duration(len(cs))).Round(100 * time.Microsecond)
}

func maxOf(cs []cycle, f func(cycle) time.Duration) time.Duration {
	var m time.Duration
	for _, c := range cs {
		m = max(m, f(c))
	}
	return m.Round(100 * time.Microsecond)
}
