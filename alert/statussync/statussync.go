// Package statussync pushes the public page's component states (a product in a
// region) to a Statuspage-compatible API, so that a hosted status page follows Picket's
// own even when the company's status tooling is part of the outage. It speaks
// Atlassian Statuspage's v1 API: PATCH {url}/pages/{page_id}/components/{id} with the
// body {"component": {"status": "major_outage"}} and the header Authorization: OAuth
// {api_key}.
//
// It is a reconciler, not a queue: it keeps, per component, the state last accepted and
// sends the current one when they differ (and again every sync.every, so a state
// changed by hand is put back); a failure is retried with backoff. After a restart it
// sends every state once. The API key is never logged: every error is scrubbed of it.
package statussync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
	"github.com/picket-dev/picket/internal/lograte"
	"github.com/picket-dev/picket/internal/scrub"
)

// Pace and backoff.
const (
	// Pace is the time between two requests: Statuspage allows one a second per key.
	Pace       = time.Second
	minBackoff = 2 * time.Second
	maxBackoff = 5 * time.Minute
	timeout    = 10 * time.Second
)

// Options configure New.
type Options struct {
	Sync *config.StatusSync
	// States returns the public state of every cell now (the daemon's: from the
	// engine's open incidents, as the public page judges them).
	States func() map[alert.Cell]alert.ComponentState
	Clock  clock.Clock  // nil: the real clock
	HTTP   *http.Client // nil: notify.NewHTTPClient (no redirects, bounded answers)
	Logger *slog.Logger // nil: discard
}

// component is one remote component and what it was last told.
type component struct {
	cell     alert.Cell
	id       string
	acked    alert.ComponentState // "" : not yet accepted since start
	ackedAt  time.Time
	failures int
	nextTry  time.Time
}

// Syncer keeps the remote components in step. Safe for concurrent use.
type Syncer struct {
	o      Options
	clock  clock.Clock
	http   *http.Client
	log    *slog.Logger
	scrub  *scrub.Redactor
	logged lograte.Limiter

	mu         sync.Mutex
	components []*component
	lastSent   time.Time
}

// New makes a syncer of every component the config maps.
func New(o Options) *Syncer {
	s := &Syncer{o: o, clock: clock.Or(o.Clock), http: o.HTTP, log: o.Logger, scrub: scrub.NewWithForms(o.Sync.APIKey.Reveal())}
	if s.http == nil {
		s.http = notify.NewHTTPClient()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = scrub.Logger(s.log, s.scrub)
	for product, regions := range o.Sync.Components {
		for region, id := range regions {
			s.components = append(s.components, &component{cell: alert.Cell{Product: product, Region: region}, id: id})
		}
	}
	sort.Slice(s.components, func(i, j int) bool { return s.components[i].id < s.components[j].id })
	return s
}

// Run syncs until ctx ends: one request per Pace at most.
func (s *Syncer) Run(ctx context.Context) {
	t := clock.NewTicker(s.clock, Pace)
	defer t.Stop()
	for {
		s.Step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// Step sends at most one request: the component most in need of it (a changed state
// before a periodic resend, worse states first), if its retry time has come. It
// reports whether it sent one.
func (s *Syncer) Step(ctx context.Context) bool {
	now := s.clock.Now()
	s.mu.Lock()
	if !s.lastSent.IsZero() && now.Sub(s.lastSent) < Pace {
		s.mu.Unlock()
		return false
	}
	c, want := s.next(now, s.o.States())
	if c == nil {
		s.mu.Unlock()
		return false
	}
	s.lastSent = now
	s.mu.Unlock()
	err := s.patch(ctx, c.id, want)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failed(now, c, want, err)
		return true
	}
	c.acked, c.ackedAt, c.failures, c.nextTry = want, now, 0, time.Time{}
	s.log.Debug("status sync: component set", "component", c.id, "status", want)
	return true
}

// next picks the component to send now and the state it should have. Held: mu.
func (s *Syncer) next(now time.Time, states map[alert.Cell]alert.ComponentState) (*component, alert.ComponentState) {
	var best *component
	var bestWant alert.ComponentState
	rank := func(c *component, want alert.ComponentState) int {
		if c.acked != want {
			return 10 + alert.Rank(want) // a change, the worse the sooner
		}
		return 0 // a periodic resend
	}
	for _, c := range s.components {
		want := states[c.cell]
		if want == "" {
			want = alert.ComponentOperational
		}
		due := c.acked != want || now.Sub(c.ackedAt) >= s.o.Sync.Every
		if !due || now.Before(c.nextTry) {
			continue
		}
		if best == nil || rank(c, want) > rank(best, bestWant) {
			best, bestWant = c, want
		}
	}
	return best, bestWant
}

// failed schedules the retry: backoff doubling from minBackoff to maxBackoff, a longer
// Retry-After wins; a refusal that retrying cannot fix (a wrong id or key) waits a
// whole sync.every. Held: mu.
func (s *Syncer) failed(now time.Time, c *component, want alert.ComponentState, err error) {
	c.failures++
	wait := min(minBackoff<<min(c.failures-1, 10), maxBackoff)
	if notify.IsPermanent(err) {
		wait = s.o.Sync.Every
	}
	wait = max(wait, notify.RetryAfter(err))
	c.nextTry = now.Add(wait)
	if ok, held := s.logged.Allow(now); ok {
		s.log.Warn("status sync: could not set a component; retrying (logged at most once a minute)", "component", c.id,
			"status", want, "attempt", c.failures, "retry_in", wait, "failures_held_back", held, "err", err)
	}
}

// patch sets one component's status.
func (s *Syncer) patch(ctx context.Context, id string, status alert.ComponentState) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimRight(s.o.Sync.URL, "/") + "/pages/" + url.PathEscape(s.o.Sync.PageID) + "/components/" + url.PathEscape(id)
	body, _ := json.Marshal(map[string]any{"component": map[string]string{"status": string(status)}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("status sync: %w", err))
	}
	req.Header.Set("Authorization", "OAuth "+s.o.Sync.APIKey.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", notify.UserAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		return notify.Scrub(notify.TransportError(err), s.o.Sync.APIKey.Reveal())
	}
	defer resp.Body.Close()
	var answer bytes.Buffer
	_, _ = answer.ReadFrom(http.MaxBytesReader(nil, resp.Body, notify.MaxAnswerBytes))
	return notify.Scrub(notify.Classify(resp.StatusCode, s.scrub.Bytes(answer.Bytes()), resp.Header), s.o.Sync.APIKey.Reveal())
}

// Acked is what each component was last set to, by id (for tests and the API).
func (s *Syncer) Acked() map[string]alert.ComponentState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]alert.ComponentState{}
	for _, c := range s.components {
		if c.acked != "" {
			out[c.id] = c.acked
		}
	}
	return out
}
