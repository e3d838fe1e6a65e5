package probe

import (
	"context"
	"sync"

	"github.com/picket-dev/picket/config"
)

// RunAll runs every target once, at most concurrency at a time, and returns the
// results in the order of targets. This is the one-shot path (`picket check`).
func (r *Runner) RunAll(ctx context.Context, targets []*config.Target, concurrency int) []Result {
	if concurrency < 1 {
		concurrency = 1
	}
	results := make([]Result, len(targets))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = r.Run(ctx, t)
		}()
	}
	wg.Wait()
	return results
}
