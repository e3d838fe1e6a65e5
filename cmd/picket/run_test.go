package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/probe/probetest"
)

var listenLine = regexp.MustCompile(`msg="picket running" listen=(127\.0\.0\.1:\d+)`)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b)
}

// TestDaemonEndToEnd runs `picket run` as a child process against the simulated
// platform and the local Events API receiver.
func TestDaemonEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.listen = freePort(t)
	const (
		interval  = time.Second
		timeout   = 800 * time.Millisecond
		threshold = 2
	)
	cfg := e.config("d.yaml", "interval: 1s, timeout: 800ms, failure_threshold: 2, success_threshold: 2",
		"alerting: {group_wait: 0s}\n")
	shorten(t, cfg, "degraded_after: 1500ms", "degraded_after: 600ms", "within: 1s", "within: 500ms")
	c := startChild(t, "run", "-c", cfg, "--log-format", "text")
	var addr string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", c.logs())
		}
	})
	testkit.WaitFor(t, 10*time.Second, "the daemon to listen", func() bool {
		m := listenLine.FindStringSubmatch(c.logs())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	base := "http://" + addr
	testkit.WaitFor(t, 5*time.Second, "/readyz", func() bool { code, _ := get(t, base+"/readyz"); return code == 200 })
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz %d %q", code, body)
	}
	// Let every target run once healthy.
	time.Sleep(interval + 200*time.Millisecond)
	if n := len(e.pd.Events()); n != 0 {
		t.Fatalf("healthy platform paged: %+v", e.pd.Events())
	}

	broke := time.Now()
	e.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	bound := threshold*interval + timeout + time.Second
	testkit.WaitFor(t, bound+2*time.Second, "a trigger for eu1", func() bool {
		for _, ev := range e.pd.Events() {
			if ev.Action == "trigger" && strings.Contains(ev.DedupKey, "eu1") {
				return true
			}
		}
		return false
	})
	took := time.Since(broke)
	t.Logf("time to page: %v (bound %v)", took, bound)
	if took > bound {
		t.Errorf("trigger took %v, bound failure_threshold x interval + timeout + 1s = %v", took, bound)
	}
	testkit.WaitFor(t, 5*time.Second, "the region incident", func() bool { return e.pd.Count("picket/region/eu1", "trigger") == 1 })

	var code int
	var metrics string
	testkit.WaitFor(t, 3*time.Second, "the incident gauge (refreshed each second)", func() bool {
		code, metrics = get(t, base+"/metrics")
		return strings.Contains(metrics, `picket_incidents_open{scope="region"} 1`)
	})
	for _, want := range []string{`probe_success{journey="query",product="metrics",region="eu1",vantage="cmd-test"} 0`,
		`probe_http_duration_seconds{`, `phase="connect"`, `picket_incidents_open{scope="region"} 1`, "picket_build_info", "picket_up 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if strings.Contains(metrics, testAPIKey) {
		t.Error("secret in /metrics")
	}

	// The incident record, asked of the running daemon (its state file is locked).
	if r := picket(t, "incidents", "export", "picket/region/eu1", "-c", cfg); r.code != 0 ||
		!strings.Contains(r.stdout, "# Incident picket/region/eu1") || !strings.Contains(r.stdout, "| opened |") {
		t.Errorf("export from the running daemon: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// SIGHUP with a broken config: refused, logged, the old config keeps running.
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(good, []byte("\nnot_a_key: 1\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the refused reload in the log", func() bool {
		return strings.Contains(c.logs(), "config reload refused") && strings.Contains(c.logs(), `unknown key \"not_a_key\"`)
	})
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}

	healed := time.Now()
	e.plat.ClearFaults()
	testkit.WaitFor(t, 3*interval+timeout+3*time.Second, "the resolve", func() bool { return len(e.pd.Open()) == 0 })
	t.Logf("time to resolve: %v", time.Since(healed))
	for _, ev := range e.pd.Events() {
		if ev.Action == "trigger" && e.pd.Count(ev.DedupKey, "resolve") != 1 {
			t.Errorf("%s: resolved %d times", ev.DedupKey, e.pd.Count(ev.DedupKey, "resolve"))
		}
	}
	if strings.Contains(c.logs(), testAPIKey) {
		t.Error("secret in the daemon's logs")
	}

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, c.logs())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop within 15s of SIGTERM")
	}
}

// shorten rewrites parts of a config file (old, new pairs).
func shorten(t *testing.T, path string, pairs ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(pairs...).Replace(string(b))
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort finds a loopback port that is free now (the daemon binds it a moment later).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
