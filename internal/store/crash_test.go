package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test re-runs this test binary as a child that writes in a loop and is
// killed with SIGKILL mid-loop; TestMain sends the child to runCrashChild.
const (
	crashChildEnv       = "PICKET_STORE_CRASH_CHILD" // the state dir to write to
	crashChildMaxWrites = 5000                       // bounds the child if nobody kills it
	crashWindow         = 50                         // records kept: older ones are deleted
	crashPad            = 900                        // bytes per record: pages split and free
)

type crashRecord struct {
	N   int    `json:"n"`
	Pad string `json:"pad"`
}

func crashKey(n int) string { return fmt.Sprintf("%08d", n) }

func crashPadFor(n int) string { return strings.Repeat(strconv.Itoa(n%10), crashPad) }

// runCrashChild continues the sequence from the last committed record, one
// transaction per record (put n, delete n-crashWindow, set last=n), and prints
// "ack N" only after Update returned, so every printed N is acknowledged as durable.
func runCrashChild() int {
	s, err := Open(os.Getenv(crashChildEnv), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	var last int
	if _, err := s.Get("meta", "last", &last); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	for n := last + 1; n <= last+crashChildMaxWrites; n++ {
		err := s.Update(func(tx *Tx) error {
			if err := tx.Put("crash", crashKey(n), crashRecord{N: n, Pad: crashPadFor(n)}); err != nil {
				return err
			}
			if err := tx.Delete("crash", crashKey(n-crashWindow)); err != nil {
				return err
			}
			return tx.Put("meta", "last", n)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		fmt.Printf("ack %d\n", n) // os.Stdout is unbuffered: the line leaves now
	}
	return 0
}

// TestCrashMidWriteKeepsConsistentFile kills a writing child three times and checks,
// after each kill, that the file passes bbolt's consistency check and holds exactly
// the committed state: the last acknowledged record (or the one after, committed
// but not yet acknowledged), the sliding window before it, and nothing older.
//
// SIGKILL tests the process dying between any two instructions, not power loss:
// the kernel still writes back what the process had written. fsync (NoSync false)
// is what covers the machine dying; that is not testable here.
func TestCrashMidWriteKeepsConsistentFile(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	for round, killAfter := range []int{60, 97, 151} {
		acked := runAndKillChild(t, dir, killAfter)
		if acked < killAfter {
			t.Fatalf("round %d: child acknowledged %d writes, want at least %d", round, acked, killAfter)
		}
		checkAfterCrash(t, dir, acked)
	}
}

// runAndKillChild starts a child on dir, SIGKILLs it once it has acknowledged
// killAfter more writes, and returns the last acknowledged record number.
func runAndKillChild(t *testing.T, dir string, killAfter int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	// A child that hangs is killed anyway, so the reads below end.
	guard := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer guard.Stop()

	lastAck, seen, killed := 0, 0, false
	lines := bufio.NewScanner(stdout)
	for lines.Scan() { // ends at EOF: the child is dead and the pipe drained
		n, err := strconv.Atoi(strings.TrimPrefix(lines.Text(), "ack "))
		if err != nil {
			t.Errorf("child said %q", lines.Text())
			continue
		}
		lastAck, seen = n, seen+1
		if seen == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !killed || !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v after %d acks (killed by us: %v); stderr:\n%s", err, seen, killed, stderr.String())
	}
	return lastAck
}

func checkAfterCrash(t *testing.T, dir string, acked int) {
	t.Helper()
	s, err := Open(dir, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	err = s.View(func(tx *Tx) error {
		for err := range tx.tx.Check() {
			t.Errorf("bbolt check after SIGKILL: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var last int
	if found, err := s.Get("meta", "last", &last); !found || err != nil {
		t.Fatalf("meta/last after SIGKILL: %v, %v", found, err)
	}
	// The child may have committed one more record after its last ack reached us.
	if last != acked && last != acked+1 {
		t.Fatalf("last committed %d, last acknowledged %d: an acknowledged write was lost or a phantom appeared", last, acked)
	}
	var keys []int
	err = s.ForEach("crash", func(key string, raw []byte) error {
		var r crashRecord
		if err := json.Unmarshal(raw, &r); err != nil || crashKey(r.N) != key || r.Pad != crashPadFor(r.N) {
			t.Errorf("record %s is torn: %v %.40s", key, err, raw)
		}
		keys = append(keys, r.N)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != crashWindow || keys[0] != last-crashWindow+1 || keys[len(keys)-1] != last {
		t.Errorf("records after SIGKILL: %d from %v to %v, want %d ending at %d",
			len(keys), first(keys), lastOf(keys), crashWindow, last)
	}
	t.Logf("killed after ack %d; committed %d; check passed", acked, last)
}

func first(xs []int) any {
	if len(xs) == 0 {
		return "none"
	}
	return xs[0]
}

func lastOf(xs []int) any {
	if len(xs) == 0 {
		return "none"
	}
	return xs[len(xs)-1]
}
