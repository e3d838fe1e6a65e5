package network

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StatusKiB reads one "Name:   1234 kB" field of /proc/self/status (VmRSS, VmHWM).
func StatusKiB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", field, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: want a number of kB, got %q: %w", field, rest, err)
		}
		return kb, nil
	}
	return 0, fmt.Errorf("%s: not in /proc/self/status", field)
}

// ResetPeakRSS asks the kernel to reset VmHWM to the current RSS (Linux 4.0+), so that
// a later VmHWM is the peak of what ran since. It reports whether the kernel allowed it.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// RSSSampler reads VmRSS every interval and keeps the largest value, so that a peak
// shows even where VmHWM cannot be reset.
type RSSSampler struct {
	mu   sync.Mutex
	peak int64
	n    int
	stop chan struct{}
	done chan struct{}
}

// StartRSSSampler samples until Stop.
func StartRSSSampler(every time.Duration) *RSSSampler {
	s := &RSSSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *RSSSampler) sample() {
	kb, err := StatusKiB("VmRSS")
	if err != nil {
		return
	}
	s.mu.Lock()
	s.peak = max(s.peak, kb)
	s.n++
	s.mu.Unlock()
}

// Stop ends sampling (after one last sample) and returns the peak in KiB and the count
// of samples.
func (s *RSSSampler) Stop() (peakKiB int64, samples int) {
	close(s.stop)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.n
}
