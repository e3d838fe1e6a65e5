package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/internal/tmpfs"
	"github.com/picket-dev/picket/probe/probetest"
)

// logLines is a slog handler that keeps every line, for counting.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, b.String())
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

// errorsSince counts the ERROR lines after the first n lines.
func (l *logLines) errorsSince(n int) (count int, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keep []string
	for _, line := range l.lines[min(n, len(l.lines)):] {
		if strings.Contains(line, " ERROR ") {
			count++
			keep = append(keep, line)
		}
	}
	return count, strings.Join(keep, "\n")
}

func (l *logLines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// startLogged is fixture.start with a logger and a short state alarm.
func (f *fixture) startLogged(logs *logLines) (base string, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{ConfigPath: f.path, Version: "test", Commit: "abc", Logger: slog.New(logs),
			StateAlarmAfter: 2 * time.Second, OnListen: func(a string) { f.addr <- a }})
	}()
	select {
	case a := <-f.addr:
		return "http://" + a, func() error { cancel(); return <-errc }
	case err := <-errc:
		cancel()
		f.t.Fatalf("daemon did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		f.t.Fatal("daemon did not listen within 10s")
	}
	return "", nil
}

// acceptingAddr is a TCP address that accepts: the self-check's world is fine.
func acceptingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// withStateDir points the fixture's config at dir.
func (f *fixture) withStateDir(dir string) {
	f.t.Helper()
	raw, err := os.ReadFile(f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "state_dir: "+filepath.Join(f.dir, "state"), "state_dir: "+dir, 1)
	if err := os.WriteFile(f.path, []byte(cfg), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// TestPageLeavesWhenTheStateDiskIsFull: the state dir on a real full disk (a 256 KiB
// tmpfs filled to ENOSPC). Measured before: no page at all (0 triggers in 8 s, ~11
// ERROR lines a second); the page left only once space was freed. Now the page leaves
// as on a healthy disk, the log says so a few times a minute, not eleven times a second,
// the metrics count it, a [STATE] notice goes to the self-check's notifier, and it is
// resolved once writes work again.
func TestPageLeavesWhenTheStateDiskIsFull(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	f := newFixture(t, fmt.Sprintf("self_check: {targets: [\"tcp://%s\"], interval: 200ms, timeout: 200ms, notify: [ops]}\n", acceptingAddr(t)))
	f.withStateDir(dir)
	logs := &logLines{}
	base, stop := f.startLogged(logs)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	testkit.WaitFor(t, 5*time.Second, "a first probe round", func() bool {
		_, m := body(t, base+"/metrics")
		return strings.Contains(m, "probe_success{")
	})
	free := tmpfs.Fill(t, dir)
	mark := logs.len()
	full := time.Now()
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	testkit.WaitFor(t, 8*time.Second, "the page on a full disk", func() bool { return f.pd.Count("picket/region/eu1", "trigger") == 1 })
	t.Logf("page left %s after the outage began, on a full disk", time.Since(full).Round(10*time.Millisecond))
	testkit.WaitFor(t, 8*time.Second, "the [STATE] notice", func() bool { return f.pd.Count("picket/state/daemon-test", "trigger") == 1 })
	for _, ev := range f.pd.Events() {
		if ev.DedupKey == "picket/state/daemon-test" && !strings.HasPrefix(ev.Payload.Summary, "[STATE daemon-test] cannot write its state: ") {
			t.Errorf("notice summary %q", ev.Payload.Summary)
		}
	}
	time.Sleep(time.Until(full.Add(8 * time.Second)))
	n, text := logs.errorsSince(mark)
	t.Logf("%d ERROR lines in 8 s of a full disk:\n%s", n, text)
	if n > 6 {
		t.Errorf("%d ERROR lines in 8 s of a full disk, want a few (each source once a minute)", n)
	}
	_, m := body(t, base+"/metrics")
	if !strings.Contains(m, "picket_outbox_unpersisted ") || !strings.Contains(m, "picket_store_write_errors_total ") ||
		strings.Contains(m, "picket_store_write_errors_total 0\n") {
		t.Errorf("metrics lack the store's trouble:\n%s", grepLines(m, "picket_store", "picket_outbox"))
	}

	free()
	testkit.WaitFor(t, 10*time.Second, "the [STATE] notice resolved", func() bool { return f.pd.Count("picket/state/daemon-test", "resolve") == 1 })
}

func grepLines(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestStateFileLostUnderTheDaemon: the state file deleted, truncated to 0, or replaced
// by random bytes under the running daemon. Measured before: a silent fresh start with
// the outbox lost (deleted), a SIGBUS crash (truncated). Now the daemon says so, puts a
// fresh file in place, writes the open incident, the states and the undelivered page
// into it again, and sends a [STATE] notice: a restart finds them all.
func TestStateFileLostUnderTheDaemon(t *testing.T) {
	cases := map[string]func(t *testing.T, path string){
		"deleted": func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		},
		"truncated to 0": func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		},
		"replaced by random bytes": func(t *testing.T, path string) {
			junk := make([]byte, 64<<10)
			r := rand.New(rand.NewPCG(7, 7))
			for i := range junk {
				junk[i] = byte(r.Uint32())
			}
			if err := os.WriteFile(path+".junk", junk, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".junk", path); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, lose := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, fmt.Sprintf("self_check: {targets: [\"tcp://%s\"], interval: 200ms, timeout: 200ms, notify: [ops]}\n", acceptingAddr(t)))
			stateDir := filepath.Join(f.dir, "state")
			path := filepath.Join(stateDir, store.FileName)
			logs := &logLines{}
			_, stop := f.startLogged(logs)
			f.pd.SetFault(pdtest.Fault{Status: 503}) // the page stays in the outbox
			f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
			testkit.WaitFor(t, 8*time.Second, "a try of the page", func() bool { return f.pd.Requests() > 0 })
			before, _ := os.Stat(path)
			lose(t, path)
			lost, _ := os.Stat(path) // what the loss left at the path, if anything
			testkit.WaitFor(t, 8*time.Second, "a fresh state file", func() bool {
				now, err := os.Stat(path)
				return err == nil && now.Size() > 0 && !os.SameFile(before, now) && (lost == nil || !os.SameFile(lost, now))
			})
			time.Sleep(1500 * time.Millisecond) // the daemon's next look writes memory again
			if err := stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
			if n, text := logs.errorsSince(0); n == 0 || !strings.Contains(text, "state file was lost") {
				t.Errorf("the loss was not logged at ERROR:\n%s", text)
			}
			st, err := store.Open(stateDir, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatalf("open the state after the loss: %v", err)
			}
			defer st.Close()
			var inc alert.Incident
			if found, err := st.Get(alert.BucketIncidents, "picket/region/eu1", &inc); !found || err != nil {
				t.Errorf("the open incident is not in the fresh file: %v, %v", found, err)
			}
			states := 0
			_ = st.ForEach(alert.BucketStates, func(string, []byte) error { states++; return nil })
			if states != 4 {
				t.Errorf("%d target states in the fresh file, want 4", states)
			}
			var pages, notices []string
			_ = st.ForEach(notify.OutboxBucket, func(key string, raw []byte) error {
				switch {
				case strings.Contains(string(raw), `"dedup_key":"picket/region/eu1"`):
					pages = append(pages, key)
				case strings.Contains(string(raw), `"dedup_key":"picket/state-lost/daemon-test"`):
					notices = append(notices, key)
				}
				return nil
			})
			if len(pages) == 0 || len(notices) != 1 {
				t.Errorf("in the fresh file's outbox: pages %v, [STATE] notices %v; want the undelivered page and one notice", pages, notices)
			}
		})
	}
}

// TestDamagedStateAtStart: a damaged state file at start (here a zeroed freelist and
// data: measured before, "panic: invalid freelist page", or "invalid database" and no
// daemon at all) is moved aside; the daemon starts on a fresh file and sends the
// [STATE] notice that state was lost.
func TestDamagedStateAtStart(t *testing.T) {
	f := newFixture(t, fmt.Sprintf("self_check: {targets: [\"tcp://%s\"], interval: 200ms, timeout: 200ms, notify: [ops]}\n", acceptingAddr(t)))
	stateDir := filepath.Join(f.dir, "state")
	st, err := store.Open(stateDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := st.Put(alert.BucketClosed, fmt.Sprintf("old-%03d", i), strings.Repeat("x", 500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(stateDir, store.FileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(raw[2*4096 : len(raw)/2]) // every page after the meta pages, to the middle
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logLines{}
	_, stop := f.startLogged(logs)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	testkit.WaitFor(t, 5*time.Second, "the notice that state was lost", func() bool {
		return f.pd.Count("picket/state-lost/daemon-test", "trigger") == 1
	})
	for _, ev := range f.pd.Events() {
		if ev.DedupKey == "picket/state-lost/daemon-test" && !strings.HasPrefix(ev.Payload.Summary, "[STATE daemon-test] state was lost: damaged database file") {
			t.Errorf("notice summary %q", ev.Payload.Summary)
		}
	}
	if aside, _ := filepath.Glob(path + ".damaged-*"); len(aside) != 1 {
		t.Errorf("damaged files kept: %v, want one", aside)
	}
}

// TestStartsAndPagesOnAFullDisk: a state dir on a full disk without a state file yet
// (measured before: "open state: ... no space left on device", no daemon, no page). Now
// the daemon starts without its file and pages; once space is freed the file is made
// and what is in memory (the open incident) written to it.
func TestStartsAndPagesOnAFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	f := newFixture(t, "")
	f.withStateDir(dir)
	free := tmpfs.Fill(t, dir)
	logs := &logLines{}
	_, stop := f.startLogged(logs)
	f.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	testkit.WaitFor(t, 8*time.Second, "the page without a state file", func() bool { return f.pd.Count("picket/region/eu1", "trigger") == 1 })
	free()
	testkit.WaitFor(t, 8*time.Second, "the state file made once space is free", func() bool {
		info, err := os.Stat(filepath.Join(dir, store.FileName))
		return err == nil && info.Size() > 0
	})
	time.Sleep(1500 * time.Millisecond) // the next tick writes memory to it
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	st, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var inc alert.Incident
	if found, err := st.Get(alert.BucketIncidents, "picket/region/eu1", &inc); !found || err != nil || !inc.Triggered {
		t.Errorf("the open incident in the file made later: %v, %v, triggered %v", found, err, inc.Triggered)
	}
}
