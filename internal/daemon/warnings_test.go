package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// TestConfigWarningsLoggedAtStartAndReload: the fixture's only route pages, so under
// alerting.degraded: notify its degraded incidents reach no notifier; the daemon says
// so, with the config position, when it starts and again when it reloads.
func TestConfigWarningsLoggedAtStartAndReload(t *testing.T) {
	f := newFixture(t, tokenConfig)
	logs := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{ConfigPath: f.path, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			OnListen: func(a string) { f.addr <- a }})
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	var base string
	select {
	case a := <-f.addr:
		base = "http://" + a
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not listen within 10s")
	}
	const want = "degraded incidents of metrics in eu1, us1; web in eu1, us1 reach no notifier"
	if n := warnings(logs.String(), want); n != 1 {
		t.Fatalf("at start: %d warnings, want 1:\n%s", n, logs.String())
	}
	resp, err := postReload(base)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := warnings(logs.String(), want); resp.StatusCode != 200 || n != 2 {
		t.Errorf("after reload (%d): %d warnings, want 2:\n%s", resp.StatusCode, n, logs.String())
	}
}

// warnings counts the WARN lines that carry msg and a FILE:LINE:COL position.
func warnings(log, msg string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, msg) && strings.Contains(line, "picket.yaml:") {
			n++
		}
	}
	return n
}
