package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/picket-dev/picket/internal/clock"
)

// OutboxBucket is the store bucket that holds the entries not yet delivered.
const OutboxBucket = "outbox"

// Outbox defaults and bounds.
const (
	DefaultFallbackAfter  = 2 * time.Minute
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 60 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultMaxEntries     = 10000

	// maxInFlight bounds parallel sends; maxInFlightPerNotifier keeps one slow
	// channel from taking every slot while another could deliver.
	maxInFlight            = 4
	maxInFlightPerNotifier = 2
	backoffJitter          = 0.2 // ±20%
)

// OutboxStore is what the outbox needs of persistence; internal/store's *Store has it.
// ForEach must walk keys in bytewise order. Commit is the one write: one durable
// transaction that takes n sequence numbers of bucket (each above after) and applies
// what fill makes of the first, per bucket and key a value to store as JSON or nil to
// delete the key; nothing is written if it fails.
type OutboxStore interface {
	ForEach(bucket string, fn func(key string, raw []byte) error) error
	Commit(bucket string, n int, after uint64, fill func(first uint64) (map[string]map[string]any, error)) (uint64, error)
}

// Delivery is one notification for the notifiers of a route.
type Delivery struct {
	Notification Notification
	Notify       []string // notifier names
	// Fallback is told once when every notifier of Notify has failed permanently or
	// kept failing for FallbackAfter (0 means DefaultFallbackAfter). A notifier told
	// a trigger this way is also told the key's next resolve, even when the
	// primaries accept that resolve: else its incident would stay open.
	Fallback      []string
	FallbackAfter time.Duration
}

// OutboxOptions configure NewOutbox.
type OutboxOptions struct {
	Store     OutboxStore
	Notifiers map[string]Notifier // by name; see SetNotifiers for a name missing here
	Logger    *slog.Logger        // nil: discard
	Now       func() time.Time    // nil: Clock's, else time.Now
	// Clock drives backoff, fallback waits and the delivery loop's timers; nil: Now, or
	// the real clock.
	Clock clock.Clock
	// Jitter returns a number in [0, 1) for the backoff's spread; nil: math/rand. The
	// simulator seeds it so a run repeats.
	Jitter func() float64
	// Retry backoff: MinBackoff doubling per failed attempt up to MaxBackoff, ±20%
	// jitter; a longer Retry-After (capped at MaxRetryAfter) wins. 0 means 1s and 60s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds a send of a notifier that states no Limits.Timeout of its
	// own; 0 means 10s.
	AttemptTimeout time.Duration
	// OnResult, when set, hears about every attempt (for metrics and the timeline):
	// the result of one attempt always comes before the entry's next attempt, and
	// before a permanently failed entry is removed or an accepted one leaves. It is
	// called from the sending
	// goroutines, possibly concurrently, and must not block.
	OnResult func(r AttemptResult)
	// Obsolete, when set, is asked before each attempt; a reason means the notification
	// was superseded elsewhere (another vantage of a fleet): it is dropped unsent,
	// without a fallback. Set it only when other senders share the dedup keys: then
	// coalescing never drops a lane's last resolve, since another sender's trigger of
	// the key may be open at the receiver.
	Obsolete func(n Notification) string
	// MaxEntries bounds the outbox; 0 means DefaultMaxEntries. Past 80 % it says so;
	// full, it drops the least important entries (bound.go), never the first trigger
	// of a global or regional page.
	MaxEntries int
	// OnDrop, when set, hears about every entry dropped unsent (coalesced with a later
	// one of its lane, or shed by a full outbox), for metrics and the timeline. Called
	// with no lock held; it must not block.
	OnDrop func(d Dropped)
}

// Reasons an entry is dropped unsent.
const (
	// DropCoalesced: a later entry of its lane (same notifier and dedup key) says it
	// all: an update superseded by a newer one, a trigger whose resolve is queued
	// behind it, a resolve the receiver no longer needs.
	DropCoalesced = "coalesced"
	// DropShed: the outbox was full and this was among the least important.
	DropShed = "shed"
)

// Dropped is one entry dropped unsent.
type Dropped struct {
	Notifier       string
	NotificationID string
	DedupKey       string
	Action         string
	Scope          string
	Fallback       bool
	Reason         string // DropCoalesced or DropShed
	Attempts       int    // attempts made before (0: never tried)
}

// AttemptResult is one send attempt's outcome.
type AttemptResult struct {
	Notifier       string
	NotificationID string
	DedupKey       string
	Action         string
	Created        time.Time // when the engine made the notification
	OK             bool
	// Complete: with this acceptance the notification has reached everyone it pages
	// (every pager delivery accepted; without pagers, every delivery), so a fleet
	// confirms it to the other vantages (see accept).
	Complete  bool
	Permanent bool  // the entry was dropped: retrying cannot help
	Err       error // nil when OK
	Attempt   int   // 1 for the first try of this entry
	Fallback  bool  // the entry was enqueued as a fallback
	Duration  time.Duration
}

// EntryInfo describes one pending entry, for the API.
type EntryInfo struct {
	ID             string    `json:"id"`
	NotificationID string    `json:"notification_id"`
	Notifier       string    `json:"notifier"`
	DedupKey       string    `json:"dedup_key"`
	Action         string    `json:"action"`
	Opened         time.Time `json:"opened,omitzero"` // the incident's open time (zero for notices)
	Fallback       bool      `json:"fallback"`
	Enqueued       time.Time `json:"enqueued"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"last_error,omitempty"`
	NextAttempt    time.Time `json:"next_attempt"`
	Sending        bool      `json:"sending"`
	// Unpersisted: the store refused it; it is delivered from memory all the same and
	// written when the store works again (lost if the process stops before).
	Unpersisted bool `json:"unpersisted,omitempty"`
}

// Outbox delivers notifications durably: each is stored before it is sent and
// deleted only once the receiver accepted it (or refused it for good), so a crash or
// a receiver outage delays a page but never loses it. After a crash between the
// receiver's acceptance and the delete, the entry is sent again at the next start:
// delivery is at least once, at most twice per crash; dedup keys make the repeat
// harmless. A Delivery is one record, and each change of it one transaction (see
// record.go). One lock, mu, guards everything; it is held across the store's writes,
// so memory and store change in the same order, and never across a send or a hook.
type Outbox struct {
	store          OutboxStore
	log            *slog.Logger
	now            func() time.Time
	clock          clock.Clock
	jitter         func() float64
	minBackoff     time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	onResult       func(AttemptResult)
	obsolete       func(Notification) string
	shared         bool // other senders share the keys (Obsolete is set)
	onDrop         func(Dropped)

	mu         sync.Mutex
	set        notifierSet // a reload swaps it while sends run
	maxEntries int
	deliveries map[*delivery]struct{} // not done yet
	entries    map[*entry]struct{}    // the pending parts
	lanes      map[laneKey]*lane
	inFlight   int
	inFlightBy map[string]int
	changed    chan struct{} // closed and replaced on every change, to wake loops
	// open mirrors FallbackOpenBucket, by its keys.
	open map[string]openRecord
	// lastSeq is the highest number in use: the store's sequence lags it by the numbers
	// made up while the store refused writes (see unpersisted.go); later schedules the
	// retry of those writes.
	lastSeq uint64
	later   persistLater
	pacers  map[string]*pacer
	heard   map[heardKey]bool // the receiver's last accepted word on a key: open (true) or closed
	// live counts the entries of each notification; unsentPart marks the notifications
	// with an entry dropped unsent, until their last entry leaves.
	live       map[string]int
	unsentPart map[string]bool
	nearFull   bool // the 80 % notice was given
	overLimit  bool // over the limit with nothing left to shed
}

// NewOutbox checks the options and loads the entries a previous run left pending;
// Run or Flush sends them again.
func NewOutbox(opts OutboxOptions) (*Outbox, error) {
	o, err := newOutbox(opts)
	if err != nil {
		return nil, err
	}
	if err := o.load(); err != nil {
		return nil, err
	}
	if n := len(o.entries); n > 0 {
		o.log.Info("outbox: replaying entries left pending", "pending", n)
	}
	o.mu.Lock()
	o.relabel() // names that changed while the daemon was down
	o.mu.Unlock()
	return o, nil
}

func newOutbox(opts OutboxOptions) (*Outbox, error) {
	if opts.Store == nil {
		return nil, errors.New("outbox: expected a Store, got nil")
	}
	o := &Outbox{
		store:          opts.Store,
		log:            opts.Logger,
		now:            opts.Now,
		minBackoff:     cmp.Or(opts.MinBackoff, DefaultMinBackoff),
		maxBackoff:     cmp.Or(opts.MaxBackoff, DefaultMaxBackoff),
		attemptTimeout: cmp.Or(opts.AttemptTimeout, DefaultAttemptTimeout),
		onResult:       opts.OnResult,
		obsolete:       opts.Obsolete,
		shared:         opts.Obsolete != nil,
		onDrop:         opts.OnDrop,
		maxEntries:     cmp.Or(opts.MaxEntries, DefaultMaxEntries),
		deliveries:     map[*delivery]struct{}{},
		entries:        map[*entry]struct{}{},
		open:           map[string]openRecord{},
		lanes:          map[laneKey]*lane{},
		inFlightBy:     map[string]int{},
		changed:        make(chan struct{}),
		later:          persistLater{kick: make(chan struct{}, 1)},
		pacers:         map[string]*pacer{},
		heard:          map[heardKey]bool{},
		live:           map[string]int{},
		unsentPart:     map[string]bool{},
	}
	if o.minBackoff < 0 || o.maxBackoff < o.minBackoff || o.attemptTimeout < 0 {
		return nil, fmt.Errorf("outbox: expected 0 <= MinBackoff <= MaxBackoff and AttemptTimeout >= 0, got %s, %s, %s",
			opts.MinBackoff, opts.MaxBackoff, opts.AttemptTimeout)
	}
	if o.maxEntries < 0 {
		return nil, fmt.Errorf("outbox: expected MaxEntries >= 0, got %d", opts.MaxEntries)
	}
	for name, n := range opts.Notifiers {
		if n == nil {
			return nil, fmt.Errorf("outbox: notifier %q: expected a Notifier, got nil", name)
		}
	}
	o.set = newNotifierSet(opts.Notifiers, nil)
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.Clock != nil:
		o.clock = opts.Clock
	default:
		o.clock = clock.FromFunc(opts.Now)
	}
	if o.now == nil {
		o.now = o.clock.Now
	}
	o.jitter = opts.Jitter
	if o.jitter == nil {
		o.jitter = rand.Float64
	}
	return o, nil
}

// Enqueue stores d as one record, one part per notifier of d.Notify, and wakes the
// senders. It returns once the record is durable, or, where the store refused it (a
// full disk), held in memory: it is delivered all the same, marked unpersisted and
// written by a background retry (see unpersisted.go). So a store failure is no error
// here: a caller retrying would only queue the page twice. A resolve also goes, as a
// fallback part, to every notifier that was handed the key's trigger as a fallback (see
// FallbackOpenBucket).
func (o *Outbox) Enqueue(d Delivery) error {
	names := uniqueNames(d.Notify)
	if len(names) == 0 {
		return fmt.Errorf("outbox: enqueue %s: expected at least one notifier in Notify, got none", d.Notification.ID)
	}
	n, err := cloneNotification(d.Notification)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	dv := &delivery{rec: deliveryRecord{Notification: n, Fallback: uniqueNames(d.Fallback), FallbackAfter: d.FallbackAfter}}
	for _, name := range dv.rec.Fallback {
		if id := o.set.identity[name]; id != "" {
			if dv.rec.FallbackIdentity == nil {
				dv.rec.FallbackIdentity = map[string]string{}
			}
			dv.rec.FallbackIdentity[name] = id
		}
	}
	for _, name := range names {
		o.newPart(dv, name, o.set.identity[name], false)
	}
	if n.Action == ActionResolve {
		o.tellOpenFallbacks(dv)
	}
	c := &change{}
	c.add(dv, dv.parts...)
	o.save(c, "new")
	return nil
}

// cloneNotification deep-copies n through JSON: the caller may reuse its Details
// map, and a sent notification is the same before and after a restart.
func cloneNotification(n Notification) (Notification, error) {
	raw, err := json.Marshal(n)
	if err != nil {
		return Notification{}, fmt.Errorf("outbox: enqueue %s: expected a notification JSON can encode: %w", n.ID, err)
	}
	var out Notification
	if err := json.Unmarshal(raw, &out); err != nil {
		return Notification{}, fmt.Errorf("outbox: enqueue %s: %w", n.ID, err)
	}
	return out, nil
}

func uniqueNames(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Run delivers until ctx ends, then waits for its sends to stop and returns nil.
// Entries not delivered stay in the store. Run and Flush may run at the same time.
// Beside the delivery, Run retries writing the entries the store refused.
func (o *Outbox) Run(ctx context.Context) error {
	var retry sync.WaitGroup
	retry.Go(func() { o.persistLoop(ctx) })
	_ = o.deliver(ctx, false)
	retry.Wait()
	return nil
}

// Flush delivers until nothing is pending (nil) or ctx ends (an error saying how
// many entries remain). Backoff and Retry-After are respected; set a deadline.
func (o *Outbox) Flush(ctx context.Context) error {
	if err := o.deliver(ctx, true); err != nil {
		return fmt.Errorf("outbox: flush: %d entries still pending: %w", o.Pending(), err)
	}
	return nil
}

// Pending is how many entries wait for delivery.
func (o *Outbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}

// Entries describes the pending entries in enqueue order.
func (o *Outbox) Entries() []EntryInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]EntryInfo, 0, len(o.entries))
	for e := range o.entries {
		n := e.notification()
		out = append(out, EntryInfo{
			ID:             e.key,
			NotificationID: n.ID,
			Notifier:       e.part.Notifier,
			DedupKey:       n.DedupKey,
			Action:         n.Action,
			Opened:         n.Opened,
			Fallback:       e.part.Fallback,
			Enqueued:       e.part.Enqueued,
			Attempts:       e.attempts,
			LastError:      e.lastErr,
			NextAttempt:    latest(e.next, e.part.Enqueued), // never tried: due since enqueued
			Sending:        e.sending,
			Unpersisted:    e.unpersisted,
		})
	}
	slices.SortFunc(out, func(a, b EntryInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// signal wakes every waiting loop. Held: mu.
func (o *Outbox) signal() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// deliver is the loop of Run (untilEmpty false) and Flush (true). Each turn it
// coalesces and bounds the queue, enqueues due fallbacks, starts the due lane heads
// within the parallel bounds and their destinations' pace, most important first, and
// sleeps until something changes or the next retry, fallback or paced slot is due.
func (o *Outbox) deliver(ctx context.Context, untilEmpty bool) error {
	var sends sync.WaitGroup
	defer sends.Wait() // no send outlives the loop
	timer := o.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := o.tidy()
		o.fallBackDue(now)
		jobs, wake, changed, idle := o.takeDue(now)
		if untilEmpty && idle {
			return nil
		}
		for _, j := range jobs {
			sends.Go(func() { o.attempt(ctx, j) })
		}
		var due <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(now), time.Millisecond))
			due = timer.C()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-due:
		}
	}
}

// Step delivers, in the calling goroutine and one send at a time, everything that is
// due at the clock's now: due fallbacks, then due lane heads in order (see order.go)
// as their destinations' pace allows, again until nothing more is due now. It returns
// when something is due next (zero: nothing waits on time). The outage simulator
// drives the outbox with it in virtual time; Run is the same turns with real
// goroutines and timers. A due retry of the writes the store refused comes first.
func (o *Outbox) Step(ctx context.Context) (next time.Time) {
	if retry := o.persistDue(o.now()); !retry.IsZero() { // the refused writes (unpersisted.go)
		defer func() { next = earliest(next, retry) }()
	}
	for {
		now := o.tidy()
		o.fallBackDue(now)
		jobs, wake, _, _ := o.takeDue(now)
		if len(jobs) == 0 {
			return wake
		}
		for _, j := range jobs {
			o.attempt(ctx, j)
		}
	}
}

// tidy coalesces the lanes and keeps the outbox within its bound, before a turn
// picks what to send; it returns the turn's now.
func (o *Outbox) tidy() time.Time {
	o.coalesce()
	o.enforceLimit()
	return o.now()
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
