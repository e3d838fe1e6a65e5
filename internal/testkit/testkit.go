// Package testkit holds the helpers that tests of several packages share: a buffer
// that logs can be written to from many goroutines, and a bounded wait for a
// condition. Only tests import it.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent use: a logger's writer that the test
// reads while the code under test still logs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Len is how many bytes were written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

// poll is how often WaitFor looks: often enough to add little to a test's time, seldom
// enough to leave the code under test the cores.
const poll = 10 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test with what it waited for once
// limit has passed (bounded in time and in polls). It returns how long it took.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	deadline := began.Add(limit)
	for polls := 1; !cond(); polls++ {
		if time.Now().After(deadline) || polls > int(limit/poll)+1 {
			t.Fatalf("after %s (%d polls) still waiting for %s", limit, polls, what)
		}
		time.Sleep(poll)
	}
	return time.Since(began)
}
