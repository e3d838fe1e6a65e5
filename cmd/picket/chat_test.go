package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify/chattest"
	"github.com/picket-dev/picket/probe/probetest"
)

// TestValidateExamplesWithoutWarnings: every config in examples/ is valid and routes
// everything it alerts on, degraded and certificate incidents included.
func TestValidateExamplesWithoutWarnings(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		r := picket(t, "validate", "-c", f)
		if r.code != 0 && strings.Contains(r.stderr, "no Chromium found") && os.Getenv("PICKET_REQUIRE_BROWSER") != "1" {
			t.Logf("%s has browser steps and this host has no Chromium: not validated", f)
			continue
		}
		if r.code != 0 || r.stderr != "" {
			t.Errorf("validate %s: exit %d, want 0 and nothing on stderr:\n%s", f, r.code, r.stderr)
		}
	}
}

// TestDegradedTargetReachesChatNotPager: under the default alerting.degraded: notify, a
// slow target is a message at the chat stand-in, and its recovery another, and never a
// page. The routes are examples/demo.yaml's: chat first, with continue: true.
func TestDegradedTargetReachesChatNotPager(t *testing.T) {
	e := newEnv(t)
	chat, err := chattest.New(chattest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chat.Close() })
	cfg := e.config("d.yaml", "interval: 2s, timeout: 2s, failure_threshold: 2, success_threshold: 2",
		"alerting: {group_wait: 0s}\n")
	shorten(t, cfg, "degraded_after: 1500ms", "degraded_after: 800ms",
		"notifiers:\n", fmt.Sprintf("notifiers:\n  chat: {slack: {webhook_url: %q}}\n", chat.SlackURL()),
		"routes:\n", "routes:\n  - {notify: [chat], continue: true}\n")

	ctx, stop := context.WithCancel(t.Context())
	var logs bytes.Buffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"run", "-c", cfg}, &bytes.Buffer{}, &logs) }()
	defer func() {
		stop()
		if code := <-exited; code != 0 || t.Failed() {
			t.Errorf("daemon exit %d; log:\n%s", code, logs.String())
		}
	}()

	// Two requests of 500ms each: slower than degraded_after, well within the timeout.
	e.plat.SetFault("eu1", "logs", probetest.Fault{Kind: probetest.FaultSlow, Delay: 500 * time.Millisecond})
	waitChat(t, chat, "the degraded message", func(m chattest.Message) bool {
		return strings.Contains(m.Text, "logs/submit-and-read@eu1 degraded")
	})
	e.plat.ClearFaults()
	waitChat(t, chat, "the recovery message", func(m chattest.Message) bool {
		return strings.Contains(m.Text, "Resolved") && strings.Contains(m.Text, "logs/submit-and-read@eu1")
	})
	if pages := e.pd.Events(); len(pages) != 0 {
		t.Errorf("a degraded target paged: %+v", pages)
	}
}

func waitChat(t *testing.T, chat *chattest.Receiver, what string, match func(chattest.Message) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := chat.WaitFor(ctx, func(msgs []chattest.Message) bool {
		for _, m := range msgs {
			if match(m) {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; chat got %+v", what, err, chat.Messages())
	}
}

func TestDemoChatLineIsOneLine(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	m := chattest.Message{Kind: chattest.KindSlack, Received: at, Text: "🟡 a &lt;b&gt; &amp;\n c"}
	if got, want := demoChatLine(m), "15:04:05 CHAT slack    🟡 a <b> & c"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
