// Package pdtest is a local PagerDuty Events API v2 receiver on loopback. It
// validates events the way PagerDuty documents it, answers with PagerDuty's
// bodies, keeps what it accepted, tracks which alerts are open, and can be told
// to fail (400, 429, 5xx, slow answers, dropped connections) so that Picket's
// notifiers are tested against the failures that matter. Tests and `picket
// demo` use it; nothing in production does.
//
// Endpoints: POST /v2/enqueue (and /enqueue) is the Events API. A small JSON
// control surface serves other processes: GET /events, GET /open, GET
// /requests, GET|POST|DELETE /fault. Routing keys are secrets: the control
// surface redacts them and the logs never carry them.
//
// Note for go-pagerduty users: pagerduty.WithV2EventsAPIEndpoint takes the
// scheme and host only (the client appends "/v2/enqueue"), so pass BaseURL(),
// not URL().
package pdtest

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/picket-dev/picket/internal/loopback"
)

// Options configure a Receiver: its loopback address and logger.
type Options = loopback.Options

// Receiver is a running Events API v2 receiver. Its methods are safe for
// concurrent use.
type Receiver struct {
	log *slog.Logger
	srv *loopback.Server // its Closing ends delays and waits

	mu        sync.Mutex
	events    []Event
	open      map[alertKey]Event
	requests  int
	fault     Fault
	faultLeft int
	changed   chan struct{} // closed and replaced whenever events change
}

// alertKey names one alert: PagerDuty applies a follow-up event only if it comes
// through the routing key of the trigger that opened the alert.
type alertKey struct{ routingKey, dedupKey string }

// New starts listening at once and serves until Close.
func New(opts Options) (*Receiver, error) {
	srv, err := loopback.NewServer("pdtest", opts)
	if err != nil {
		return nil, err
	}
	r := &Receiver{log: srv.Log, srv: srv, open: map[alertKey]Event{}, changed: make(chan struct{})}
	srv.Start(r.routes())
	r.log.Info("pdtest: PagerDuty Events API v2 receiver listening", "url", r.URL())
	return r, nil
}

// ServeAddr is the host:port listened on, for a child process to reach.
func (r *Receiver) ServeAddr() string { return r.srv.Addr() }

// BaseURL is http://host:port, the endpoint go-pagerduty expects.
func (r *Receiver) BaseURL() string { return "http://" + r.ServeAddr() }

// URL is the full enqueue URL, http://host:port/v2/enqueue.
func (r *Receiver) URL() string { return r.BaseURL() + pathEnqueueV2 }

// Close stops the server, cancels pending delays and WaitFor calls, and returns
// when every goroutine of the receiver has ended. It is safe to call twice.
func (r *Receiver) Close() error { return r.srv.Close() }

// record stores one accepted event and updates the open alerts.
func (r *Receiver) record(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	key := alertKey{routingKey: ev.RoutingKey, dedupKey: ev.DedupKey}
	switch ev.Action {
	case ActionTrigger:
		r.open[key] = ev // the latest trigger carries the current summary
	case ActionResolve:
		delete(r.open, key) // unknown keys are dropped silently, as PagerDuty does
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Receiver) countRequest() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
}

// Events returns a copy of the accepted events, in order of arrival.
func (r *Receiver) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneEvents(r.events)
}

func cloneEvents(events []Event) []Event {
	out := make([]Event, len(events))
	for i, ev := range events {
		out[i] = ev.clone()
	}
	return out
}

// Count is how many accepted events carry dedupKey and action; an empty action
// counts every action.
func (r *Receiver) Count(dedupKey, action string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.DedupKey == dedupKey && (action == "" || ev.Action == action) {
			n++
		}
	}
	return n
}

// Open returns the open alerts by dedup key, each as its latest trigger. A
// trigger opens an alert, a resolve through the same routing key closes it. If
// one dedup key is open under several routing keys, the latest trigger wins;
// OpenFor tells them apart.
func (r *Receiver) Open() map[string]Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Event, len(r.open))
	for key, ev := range r.open {
		if prev, ok := out[key.dedupKey]; !ok || ev.Received.After(prev.Received) {
			out[key.dedupKey] = ev.clone()
		}
	}
	return out
}

// OpenFor returns the open alerts of one routing key, by dedup key.
func (r *Receiver) OpenFor(routingKey string) map[string]Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Event{}
	for key, ev := range r.open {
		if key.routingKey == routingKey {
			out[key.dedupKey] = ev.clone()
		}
	}
	return out
}

// Requests is how many requests reached the Events API side (any path but the
// control surface), including rejected and faulted ones.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// ErrClosed is returned by WaitFor when the receiver closes first.
var ErrClosed = errors.New("pdtest: receiver closed")

// WaitFor returns nil as soon as cond holds for the accepted events, checking
// at once and after every accepted event. It returns ctx's error (wrapped) if
// ctx ends first, and ErrClosed if the receiver does.
func (r *Receiver) WaitFor(ctx context.Context, cond func(events []Event) bool) error {
	return loopback.WaitFor(ctx, "pdtest", func() ([]Event, <-chan struct{}) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return cloneEvents(r.events), r.changed
	}, r.srv.Closing(), ErrClosed, cond)
}
