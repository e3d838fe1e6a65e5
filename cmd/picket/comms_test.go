package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify/chattest"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/daemon"
	"github.com/picket-dev/picket/internal/testkit"
	"github.com/picket-dev/picket/probe/probetest"
)

// demoRig is `picket demo` in this process on free loopback ports: examples/demo.yaml
// with its addresses moved, the simulated platform, the local Events API receiver and
// chat stand-in, and the daemon on a fake clock that the test moves.
type demoRig struct {
	t           *testing.T
	cfg         string // the config file
	base, pub   string // http://listen, http://public.listen
	plat        *probetest.Platform
	pd          *pdtest.Receiver
	chat        *chattest.Receiver
	clock       *clock.Fake
	logs        *testkit.Buffer
	regionAddrs map[string]string
}

// newDemoRig writes the demo config with fresh ports and starts everything but the daemon.
func newDemoRig(t *testing.T) *demoRig {
	t.Helper()
	raw, err := os.ReadFile("../../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Abs("../../examples")
	ports := distinctPorts(t, 22)
	next := func() string { p := ports[0]; ports = ports[1:]; return p }
	moved := func(fixed map[string]string) map[string]string {
		out := map[string]string{}
		for region, addr := range fixed {
			out[region] = next()
			raw = bytes.ReplaceAll(raw, []byte(addr), []byte(out[region]))
		}
		return out
	}
	r := &demoRig{t: t, logs: &testkit.Buffer{}, clock: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))}
	r.regionAddrs = moved(demoRegions)
	tlsAddrs := moved(demoTLS)
	for region, addr := range demoTLS { // the journeys name the TLS port alone, as secure_port
		_, oldPort, _ := strings.Cut(addr, ":")
		_, newPort, _ := strings.Cut(tlsAddrs[region], ":")
		raw = bytes.ReplaceAll(raw, []byte(`secure_port: "`+oldPort+`"`), []byte(`secure_port: "`+newPort+`"`))
	}
	intake, grpc := moved(demoIntake), moved(demoGRPC)
	one := moved(map[string]string{"control": demoControl, "pd": demoReceiver, "chat": demoChat, "dns": demoDNS, "listen": "127.0.0.1:9115", "public": demoPublic})
	r.base, r.pub = "http://"+one["listen"], "http://"+one["public"]
	raw = bytes.ReplaceAll(raw, []byte("file: secrets/"), []byte("file: "+examples+"/secrets/"))
	raw = bytes.ReplaceAll(raw, []byte("ca_file: sim/"), []byte("ca_file: "+examples+"/sim/"))
	raw = bytes.ReplaceAll(raw, []byte("state_dir: ./picket-state/demo"), []byte("state_dir: "+filepath.Join(t.TempDir(), "state")))
	r.cfg = filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(r.cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(examples, "secrets", "platform_api_key"))
	if r.plat, err = probetest.Start(probetest.Options{
		Regions: []string{"eu1", "us1", "us3", "ap1"}, Addrs: r.regionAddrs, ControlAddr: one["control"],
		APIKey: strings.TrimSpace(string(key)), DNSAddr: one["dns"], TLSAddrs: tlsAddrs, TCPAddrs: intake, GRPCAddrs: grpc,
		CACertFile: filepath.Join(examples, "sim", "ca.pem"), CAKeyFile: filepath.Join(examples, "sim", "ca-key.pem"),
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.plat.Close() })
	if r.pd, err = pdtest.New(pdtest.Options{Addr: one["pd"]}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.pd.Close() })
	if r.chat, err = chattest.New(chattest.Options{Addr: one["chat"]}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.chat.Close() })
	return r
}

// start runs the daemon on the fake clock until the test ends.
func (r *demoRig) start() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening, errc := make(chan struct{}), make(chan error, 1)
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		errc <- daemon.Run(ctx, daemon.Options{ConfigPath: r.cfg, Logger: log, Clock: r.clock, OnListen: func(string) { close(listening) }})
	}()
	select {
	case <-listening:
	case err := <-errc:
		cancel()
		r.t.Fatalf("the daemon did not start: %v", err)
	}
	r.t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			r.t.Errorf("daemon: %v", err)
		}
		if r.t.Failed() {
			r.t.Logf("daemon log:\n%s", tail(r.logs.String(), 40))
		}
	})
}

// step moves the fake clock by d, then waits a moment for the runs it started: the
// quick ones (a refused connection, an error) are in before the clock moves on. Runs
// that wait for their timeout in real time (a DNS query to a region that is down)
// are not waited for: their results come in later, as a slow probe's do.
func (r *demoRig) step(d time.Duration) {
	r.t.Helper()
	r.clock.Advance(d)
	time.Sleep(20 * time.Millisecond) // the scheduler wakes and starts what is due
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if r.metric("picket_scheduler_runs_in_flight") == 0 {
			return
		}
	}
}

// until steps the clock by d until cond holds, at most limit of fake time.
func (r *demoRig) until(what string, d, limit time.Duration, cond func() bool) {
	r.t.Helper()
	for moved := time.Duration(0); !cond(); moved += d {
		if moved > limit {
			r.t.Fatalf("no %s within %s of the fake clock (now %s)", what, limit, r.clock.Now().Format(time.TimeOnly))
		}
		r.step(d)
	}
}

func (r *demoRig) metric(name string) float64 {
	r.t.Helper()
	_, body := get(r.t, r.base+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// chatWith is the first chat message whose text and body hold every string, if any.
func (r *demoRig) chatWith(parts ...string) (chattest.Message, bool) {
	for _, m := range r.chat.Messages() {
		all := m.Text + " " + string(m.Body)
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(all, p)
		}
		if ok {
			return m, true
		}
	}
	return chattest.Message{}, false
}

// TestDemoGlobalOutageCommunications is the "done when", on loopback and a
// fake clock: eu1 and us1 go down at once in the demo; without a human there is one
// page, a public page saying "Major outage: …" with the right component states, and 2
// minutes (comms.every) later an "update due" in the comms chat with a drafted text;
// with updates posted by `picket update post`, the export and the Atom feed both show
// the history.
func TestDemoGlobalOutageCommunications(t *testing.T) {
	r := newDemoRig(t)
	r.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.plat.SetFault("us1", "", probetest.Fault{Kind: probetest.FaultDown})
	r.start()
	r.until("page", 250*time.Millisecond, time.Minute, func() bool { return len(r.pd.Events()) > 0 })
	paged := r.clock.Now()
	// The journeys that wait for their timeout (a DNS query to a region that is down
	// answers nothing) fail a few seconds later: then the page says all of it.
	const major = "Major outage: Logs, Metrics, Events, Web App in Europe 1 and US East 1"
	r.until("the whole outage on the public page", time.Second, 2*time.Minute, func() bool {
		_, page := get(t, r.pub+"/")
		return strings.Contains(page, major)
	})
	if evs := r.pd.Events(); len(evs) != 1 || evs[0].DedupKey != "picket/global" || evs[0].Action != "trigger" {
		t.Fatalf("pages: %s, want the one GLOBAL trigger", eventList(evs))
	}
	_, page := get(t, r.pub+"/")
	if !strings.Contains(page, major) || strings.Count(page, `<article class="incident`) != 1 {
		t.Errorf("public page: want %q and one incident card; got:\n%s", major, around(page, `id="overall"`, 1200))
	}
	for _, leak := range []string{"logs/submit-and-read", "@eu1", "connection closed", "highsev", "demo-vantage"} {
		if strings.Contains(page, leak) {
			t.Errorf("the public page carries operator detail %q", leak)
		}
	}
	var sum struct {
		Status     struct{ Indicator, Description string }
		Components []struct{ ID, Status string }
		Incidents  []struct{ Name, Status string }
	}
	_, js := get(t, r.pub+"/api/v2/summary.json")
	if err := json.Unmarshal([]byte(js), &sum); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, c := range sum.Components {
		states[c.ID] = c.Status
	}
	want := map[string]string{"logs.eu1": "major_outage", "web.us1": "major_outage", "logs.us3": "operational", "logs": "partial_outage", "metrics.ap1": "operational"}
	for id, s := range want {
		if states[id] != s {
			t.Errorf("component %s: %q, want %q (all: %v)", id, states[id], s, states)
		}
	}
	if sum.Status.Indicator != "critical" || sum.Status.Description != major || len(sum.Incidents) != 1 || sum.Incidents[0].Status != "investigating" {
		t.Errorf("summary: %+v %+v", sum.Status, sum.Incidents)
	}

	// comms.every (2m) after the opening: the comms chat is told an update is due.
	hasDue := func() bool { _, ok := r.chatWith("[UPDATE DUE] [GLOBAL]"); return ok }
	r.until("update due", 5*time.Second, 3*time.Minute, hasDue)
	if since := r.clock.Now().Sub(paged); since < 2*time.Minute-10*time.Second {
		t.Errorf("update due %s after the page, want about comms.every (2m) after the opening", since)
	}
	due, _ := r.chatWith("[UPDATE DUE] [GLOBAL]")
	var slack struct {
		Blocks []struct{ Text *struct{ Text string } }
	}
	_ = json.Unmarshal(due.Body, &slack)
	draft := ""
	for _, b := range slack.Blocks {
		if b.Text != nil && strings.HasPrefix(b.Text.Text, "Drafted update:") {
			draft = b.Text.Text
		}
	}
	for _, s := range []string{major + ", since 10:00 UTC", "Logs: not loading in Europe 1 and US East 1.", "Nothing has recovered since it began."} {
		if !strings.Contains(draft, s) || due.Hook != "comms" {
			t.Errorf("update due (through hook %q) lacks %q:\n%s", due.Hook, s, draft)
		}
	}

	const identified = "A storage failure in two regions; we are failing over."
	if res := picket(t, "update", "post", "picket/global", "-c", r.cfg, "--status", "identified", "--text", identified); res.code != 0 {
		t.Fatalf("update post: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	r.until("the update in chat", time.Second, 20*time.Second, func() bool { _, ok := r.chatWith("[UPDATE] [GLOBAL] identified: " + identified); return ok })

	r.plat.ClearFaults()
	r.until("the resolve", 250*time.Millisecond, time.Minute, func() bool { return r.pd.Count("picket/global", "resolve") == 1 })
	const resolved = "Both regions are back; we are watching closely."
	if res := picket(t, "update", "post", "picket/global", "-c", r.cfg, "--status", "resolved", "--text", resolved); res.code != 0 {
		t.Fatalf("update post (resolved): exit %d: %s", res.code, res.stderr)
	}
	r.step(6 * time.Second) // past the public page's cache

	export := picket(t, "incidents", "export", "picket/global", "-c", r.cfg)
	if export.code != 0 || !strings.Contains(export.stdout, "## Updates") || !strings.Contains(export.stdout, "| identified | "+identified) ||
		!strings.Contains(export.stdout, "| resolved | "+resolved) {
		t.Errorf("export (exit %d):\n%s", export.code, export.stdout)
	}
	_, feed := get(t, r.pub+"/history.atom")
	for _, s := range []string{"<title>Resolved: " + major + "</title>", identified, resolved, "Our automated checks detected a problem"} {
		if !strings.Contains(feed, s) {
			t.Errorf("feed lacks %q:\n%s", s, feed)
		}
	}
	if n := len(r.pd.Events()); n != 2 {
		t.Errorf("PagerDuty events %d, want the trigger and its resolve: %s", n, eventList(r.pd.Events()))
	}
}

// around is up to n bytes of s from marker on, for a failure message.
func around(s, marker string, n int) string {
	i := max(strings.Index(s, marker), 0)
	return s[i:min(len(s), i+n)]
}
