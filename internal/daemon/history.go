package daemon

import (
	"log/slog"
	"sync"
	"time"

	"github.com/picket-dev/picket/internal/lograte"
	"github.com/picket-dev/picket/internal/store"
)

// maxPending bounds the results held between flushes; past it the oldest are dropped
// (history is for uptime bars, not alerting, so losing some under overload is fine).
const maxPending = 100_000

// recorder batches results for the uptime history: one store transaction per flush
// instead of one fsync per probe.
type recorder struct {
	st      *store.Store
	log     *slog.Logger
	mu      sync.Mutex
	pending []store.Result
	dropped int
	failLog lograte.Limiter // a full disk fails every flush: one line a minute
}

func newRecorder(st *store.Store, log *slog.Logger) *recorder {
	return &recorder{st: st, log: log}
}

func (r *recorder) add(res store.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) >= maxPending {
		r.pending = r.pending[1:]
		r.dropped++
	}
	r.pending = append(r.pending, res)
}

func (r *recorder) flush() {
	r.mu.Lock()
	batch, dropped := r.pending, r.dropped
	r.pending, r.dropped = nil, 0
	r.mu.Unlock()
	if dropped > 0 {
		r.log.Warn("history: results dropped under load", "dropped", dropped)
	}
	if err := r.st.RecordResults(batch); err != nil {
		if ok, held := r.failLog.Allow(time.Now()); ok {
			r.log.Warn("history: could not record results (logged at most once a minute)", "results", len(batch),
				"failed_flushes", held+1, "err", err)
		}
	}
}
