package network

import (
	"os"
	"sync"
	"time"

	"github.com/picket-dev/picket/bench"
)

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
	kb, err := bench.StatusKiB("VmRSS")
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
