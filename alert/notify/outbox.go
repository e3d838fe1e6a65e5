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

	"github.com/picket-dev/picket/config"
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
// Put must be durable when it returns; ForEach must walk keys in bytewise order.
type OutboxStore interface {
	Put(bucket, key string, v any) error
	Delete(bucket, key string) error
	ForEach(bucket string, fn func(key string, raw []byte) error) error
	NextSeq(bucket string) (uint64, error)
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

// outboxRecord is one entry as stored: everything needed to send it, and to decide
// its group's fallback, after a restart.
type outboxRecord struct {
	Notifier string `json:"notifier"` // who sends it: the name at enqueue, or the one a rename gave it
	// Identity is the notifier's (see Identifier): a restart that finds the name gone
	// gives the entry to the notifier with the same identity.
	Identity string `json:"identity,omitempty"`
	// Member is the name at enqueue once a rename changed Notifier: the group knows
	// the entry by it.
	Member       string       `json:"member,omitempty"`
	Notification Notification `json:"notification"`
	Group        string       `json:"group"` // the key of the delivery's first entry
	Primaries    []string     `json:"primaries,omitempty"`
	Fallback     []string     `json:"fallback,omitempty"`
	// FallbackIdentity is each fallback notifier's identity at enqueue, so a fallback
	// renamed meanwhile is still found.
	FallbackIdentity map[string]string `json:"fallback_identity,omitempty"`
	FallbackAfter    time.Duration     `json:"fallback_after,omitempty"`
	IsFallback       bool              `json:"is_fallback,omitempty"`
	// Closes, on a resolve, names the FallbackOpenBucket records this entry answers:
	// once it is delivered or refused for good, they are deleted.
	Closes []string `json:"closes,omitempty"`
	// Told, on a resolve's primaries, names the notifiers that got the resolve as an
	// open fallback: the resolve's own fallback need not tell them again.
	Told []string `json:"told,omitempty"`
	// Written onto the entries still pending when a sibling fails permanently or the
	// fallback has been enqueued, so a restart neither forgets nor repeats them.
	FailedPeers []string  `json:"failed_peers,omitempty"`
	Settled     bool      `json:"settled,omitempty"`
	Enqueued    time.Time `json:"enqueued"`
}

// entry is a record in memory with its delivery state (guarded by Outbox.mu).
type entry struct {
	key      string
	rec      outboxRecord
	attempts int
	lastErr  string
	next     time.Time     // not before; zero: now
	wait     time.Duration // the backoff that set next
	sending  bool
	sendAs   string // the name counted in inFlightBy while sending: a rename may relabel e meanwhile
	accepted bool   // delivered, about to leave
	// unpersisted: the store refused it (see unpersisted.go); sent all the same.
	unpersisted bool
	// maybeSent: an attempt may have reached the receiver (it timed out, or the entry
	// was loaded after a restart), so a trigger may be open there. Coalescing then
	// keeps the resolve.
	maybeSent bool
	pacedAt   time.Time // the slot of its destination's pace this send took
}

// lane is the FIFO of one (notifier, dedup key): only its head is ever sent, so a
// resolve never overtakes its trigger.
type lane struct {
	queue        []*entry
	failingSince time.Time // first failure since the lane last delivered; zero if none
}

type laneKey struct{ notifier, dedupKey string }

func laneOf(rec outboxRecord) laneKey {
	return laneKey{notifier: rec.Notifier, dedupKey: rec.Notification.DedupKey}
}

// group is one Delivery's primaries, tracked to decide its fallback.
type group struct {
	id            string
	notification  Notification
	primaries     []string
	fallback      []string
	fallbackIDs   map[string]string // identities of fallback, by name
	fallbackAfter time.Duration
	pending       map[string]*entry // primary entries still in the outbox
	failed        map[string]bool   // primaries that failed permanently
	fallbackSent  bool
	told          map[string]bool // fallback notifiers already handed this notification
	fallingBack   bool            // a sendFallback is writing
}

// succeeded reports whether some primary delivered: it is neither pending nor failed.
func (g *group) succeeded() bool {
	for _, p := range g.primaries {
		if g.pending[p] == nil && !g.failed[p] {
			return true
		}
	}
	return false
}

// Outbox delivers notifications durably: each is stored before it is sent and
// deleted only once the receiver accepted it (or refused it for good), so a crash or
// a receiver outage delays a page but never loses it. After a crash between the
// receiver's acceptance and the delete, the entry is sent again at the next start:
// delivery is at least once, at most twice per crash; dedup keys make the repeat
// harmless.
type Outbox struct {
	store          OutboxStore
	notifMu        sync.RWMutex // guards set: a reload swaps it while sends run
	set            notifierSet
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
	maxEntries     int

	// enqueueMu makes sequence order and queue order the same; it is never held
	// while sending.
	enqueueMu sync.Mutex
	// recordMu serialises rewrites and deletes of stored entries, so a rewrite can
	// never bring back an entry that was just deleted.
	recordMu sync.Mutex
	// open mirrors FallbackOpenBucket, by its keys. Guarded by enqueueMu, so that a
	// resolve is enqueued either before a fallback trigger is marked or after.
	open map[string]openRecord

	mu         sync.Mutex
	entries    map[string]*entry
	lanes      map[laneKey]*lane
	groups     map[string]*group
	inFlight   int
	inFlightBy map[string]int
	changed    chan struct{} // closed and replaced on every change, to wake loops

	// Entries the store refuses are delivered from memory and written later (see
	// unpersisted.go). lastSeq is the highest entry number in use (guarded by
	// enqueueMu); later schedules the writes.
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
	o.enqueueMu.Lock()
	o.relabel() // names that changed while the daemon was down
	o.enqueueMu.Unlock()
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
		entries:        map[string]*entry{},
		open:           map[string]openRecord{},
		lanes:          map[laneKey]*lane{},
		groups:         map[string]*group{},
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

// load reads the stored entries in key (= enqueue) order. An unreadable entry is
// logged and left in the store for a human; it must not stop the others.
func (o *Outbox) load() error {
	if err := o.loadOpen(); err != nil {
		return err
	}
	err := o.store.ForEach(OutboxBucket, func(key string, raw []byte) error {
		var rec outboxRecord
		if err := json.Unmarshal(raw, &rec); err != nil || rec.Notifier == "" {
			o.log.Error("outbox: skipping an unreadable entry; it stays in the store",
				"key", key, "err", cmp.Or(err, errors.New("no notifier")))
			return nil
		}
		o.add(key, rec)
		o.noteSeq(key)
		o.entries[key].maybeSent = true // a crash may have come mid-send
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: load pending entries: %w", err)
	}
	for _, g := range o.groups {
		o.forgetIfDone(g)
	}
	o.markQueuedOpen()
	return nil
}

// add puts an entry in its lane and, for a primary, its group. Held: mu (or not yet
// shared).
func (o *Outbox) add(key string, rec outboxRecord) *entry {
	e := &entry{key: key, rec: rec}
	o.entries[key] = e
	o.live[rec.Notification.ID]++
	lk := laneOf(rec)
	l := o.lanes[lk]
	if l == nil {
		l = &lane{}
		o.lanes[lk] = l
	}
	l.queue = append(l.queue, e)
	if rec.IsFallback {
		return e
	}
	g := o.groups[rec.Group]
	if g == nil {
		g = &group{
			id:            rec.Group,
			notification:  rec.Notification,
			primaries:     rec.Primaries,
			fallback:      rec.Fallback,
			fallbackIDs:   rec.FallbackIdentity,
			fallbackAfter: cmp.Or(rec.FallbackAfter, DefaultFallbackAfter),
			pending:       map[string]*entry{},
			failed:        map[string]bool{},
			told:          map[string]bool{},
		}
		if len(g.primaries) == 0 { // a damaged record: it is its own only primary
			g.primaries = []string{memberOf(rec)}
		}
		o.groups[rec.Group] = g
	}
	g.pending[memberOf(rec)] = e
	for _, p := range rec.FailedPeers {
		g.failed[p] = true
	}
	for _, n := range rec.Told {
		g.told[n] = true
	}
	g.fallbackSent = g.fallbackSent || rec.Settled
	return e
}

// Enqueue stores one entry per notifier of d.Notify and wakes the senders. It returns
// once the entries are durable, or, where the store refused them (a full disk), held
// in memory: they are delivered all the same, marked unpersisted and written by a
// background retry (see unpersisted.go). So a store failure is no error here: a
// caller retrying would only queue the page twice. A resolve also goes, as a fallback
// entry, to every notifier that was handed the key's trigger as a fallback (see
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
	fallback := uniqueNames(d.Fallback)
	o.enqueueMu.Lock() // before reading the notifiers: a reload relabels under it
	defer o.enqueueMu.Unlock()
	set := o.notifierSet()
	fallbackIDs := map[string]string{}
	for _, name := range fallback {
		if id := set.identity[name]; id != "" {
			fallbackIDs[name] = id
		}
	}
	recs := make([]outboxRecord, len(names))
	for i, name := range names {
		recs[i] = outboxRecord{
			Notifier:         name,
			Identity:         set.identity[name],
			Notification:     n,
			Primaries:        names,
			Fallback:         fallback,
			FallbackIdentity: fallbackIDs,
			FallbackAfter:    d.FallbackAfter,
			Enqueued:         o.now(),
		}
	}
	if n.Action == ActionResolve {
		recs = o.tellOpenFallbacks(recs)
	}
	o.persist(recs)
	return nil
}

// persist numbers and stores recs and queues them; the first key names the group. A rec
// the store refuses is queued all the same, unpersisted: a page must leave even when
// the disk is full (measured before: no page until space was freed). The retry in
// unpersisted.go writes it once the store works; a crash before that loses it. It
// returns the keys of recs in order; it cannot fail, since every rec is queued.
// Held: enqueueMu.
func (o *Outbox) persist(recs []outboxRecord) (keys []string) {
	refused := make([]bool, len(recs))
	var storeErr error
	if ap, ok := o.store.(appender); ok && len(recs) > 0 {
		if keys, storeErr = o.appendAll(ap, recs); storeErr == nil {
			o.queue(recs, keys, refused)
			return keys
		}
		for i := range refused {
			refused[i] = true
		}
	}
	for i := range recs {
		key, err := o.storeRecord(&recs[i], recs, storeErr != nil)
		if err != nil && storeErr == nil {
			storeErr = err
		}
		keys, refused[i] = append(keys, key), refused[i] || err != nil
	}
	o.queue(recs, keys, refused)
	if storeErr != nil {
		o.refused(storeErr)
	}
	return keys
}

// queue adds the numbered recs to the lanes; refused ones are kept for the retry of
// unpersisted.go. Held: enqueueMu.
func (o *Outbox) queue(recs []outboxRecord, keys []string, refused []bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, rec := range recs {
		o.add(keys[i], rec).unpersisted = refused[i]
	}
	o.signal()
}

// appender is a store that numbers and stores several records in one transaction
// (internal/store's *Store): a delivery to N notifiers costs one fsync, not 2N.
type appender interface {
	Append(bucket string, n int, after uint64, fill func(first uint64) (map[string]any, error)) (uint64, error)
}

// appendAll numbers and stores recs in one transaction, the first key naming the
// group; on failure recs are left as they were (the caller numbers them in memory).
// Held: enqueueMu.
func (o *Outbox) appendAll(ap appender, recs []outboxRecord) ([]string, error) {
	keysOf := func(first uint64) []string {
		keys := make([]string, len(recs))
		for i := range recs {
			keys[i] = entryKey(first+uint64(i), recs[i].Notifier)
		}
		return keys
	}
	first, err := ap.Append(OutboxBucket, len(recs), o.lastSeq, func(first uint64) (map[string]any, error) {
		keys := keysOf(first)
		puts := make(map[string]any, len(recs))
		for i, rec := range recs {
			if rec.Group == "" {
				rec.Group = keys[0]
			}
			puts[keys[i]] = rec
		}
		return puts, nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: enqueue %s: store %d entries: %w", recs[0].Notification.ID, len(recs), err)
	}
	keys := keysOf(first)
	for i := range recs {
		if recs[i].Group == "" {
			recs[i].Group = keys[0]
		}
	}
	o.lastSeq = max(o.lastSeq, first+uint64(len(recs))-1)
	return keys, nil
}

// storeRecord numbers rec, sets the group of all recs from the first, and stores it.
// When the store fails, or failed already for an earlier rec of the same call (a full
// disk refuses them all, and each try costs an fsync's wait), rec is numbered in memory
// and the error returned.
func (o *Outbox) storeRecord(rec *outboxRecord, all []outboxRecord, storeFailed bool) (string, error) {
	seq, err := o.nextSeq(storeFailed)
	key := entryKey(seq, rec.Notifier)
	if rec.Group == "" {
		for i := range all {
			all[i].Group = key
		}
	}
	if err != nil {
		return key, fmt.Errorf("outbox: enqueue %s for %s: number the entry: %w", rec.Notification.ID, rec.Notifier, err)
	}
	if err := o.store.Put(OutboxBucket, key, *rec); err != nil {
		return key, fmt.Errorf("outbox: enqueue %s for %s: store the entry: %w", rec.Notification.ID, rec.Notifier, err)
	}
	return key, nil
}

// seqDigits is the width of an entry key's sequence number, zero-padded so that byte
// order is enqueue order.
const seqDigits = 20

// entryKey names an outbox entry: its sequence number, then its notifier at enqueue.
func entryKey(seq uint64, notifier string) string {
	return fmt.Sprintf("%0*d-%s", seqDigits, seq, notifier)
}

// keySeq is the sequence part of an entry key, comparable as a string.
func keySeq(key string) string { return key[:min(len(key), seqDigits)] }

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
	for _, e := range o.entries {
		out = append(out, EntryInfo{
			ID:             e.key,
			NotificationID: e.rec.Notification.ID,
			Notifier:       e.rec.Notifier,
			DedupKey:       e.rec.Notification.DedupKey,
			Action:         e.rec.Notification.Action,
			Opened:         e.rec.Notification.Opened,
			Fallback:       e.rec.IsFallback,
			Enqueued:       e.rec.Enqueued,
			Attempts:       e.attempts,
			LastError:      e.lastErr,
			NextAttempt:    latest(e.next, e.rec.Enqueued), // never tried: due since enqueued
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
		for _, g := range o.dueFallbacks(now) {
			o.sendFallback(g, nil)
		}
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
		for _, g := range o.dueFallbacks(now) {
			o.sendFallback(g, nil)
		}
		jobs, wake, _, _ := o.takeDue(now)
		if len(jobs) == 0 {
			return wake
		}
		for _, j := range jobs {
			o.attempt(ctx, j)
		}
	}
}

// job is one send, with what it needs copied out from under mu.
type job struct {
	e            *entry
	notifier     string
	identity     string
	notification Notification
	attempt      int
	fallback     bool
}

// tidy coalesces the lanes and keeps the outbox within its bound, before a turn
// picks what to send; it returns the turn's now.
func (o *Outbox) tidy() time.Time {
	o.coalesce()
	o.enforceLimit()
	return o.now()
}

// takeDue marks due lane heads as sending, most important first, within the parallel
// bounds and each destination's pace. It also returns when to look again (zero: only
// on a change), the channel that closes on the next change, and whether nothing at
// all is left to do.
func (o *Outbox) takeDue(now time.Time) (jobs []job, wake time.Time, changed <-chan struct{}, idle bool) {
	set := o.notifierSet()
	o.mu.Lock()
	var held []heldBack
	due, wake := o.dueHeads(now)
	for _, e := range due {
		name := e.rec.Notifier
		if o.inFlight >= maxInFlight || o.inFlightBy[name] >= maxInFlightPerNotifier {
			continue // woken again when a send ends
		}
		at, ok, first := o.pace(set, e, now)
		if !ok {
			wake = earliest(wake, at)
			if first {
				held = append(held, heldBack{notifier: name, until: at})
			}
			continue
		}
		e.sending, e.sendAs = true, name
		o.inFlight++
		o.inFlightBy[name]++
		jobs = append(jobs, job{e: e, notifier: name, identity: e.rec.Identity, notification: e.rec.Notification,
			attempt: e.attempts + 1, fallback: e.rec.IsFallback})
	}
	for _, g := range o.groups {
		if at, ok := o.fallbackDue(g); ok {
			wake = earliest(wake, at)
		}
	}
	o.prunePacers(now)
	changed, idle = o.changed, len(o.entries) == 0 && len(o.groups) == 0
	o.mu.Unlock()
	o.logHeld(held)
	return jobs, wake, changed, idle
}

// dueHeads lists the lane heads due at now in sending order, and when the next one
// not yet due is. Held: mu.
func (o *Outbox) dueHeads(now time.Time) (due []*entry, wake time.Time) {
	type ranked struct {
		e *entry
		r rank
	}
	var heads []ranked
	for _, l := range o.lanes {
		head := l.queue[0]
		o.clampRetry(now, head, l)
		switch {
		case head.sending:
		case head.next.After(now):
			wake = earliest(wake, head.next)
		default:
			heads = append(heads, ranked{head, o.rankOf(l, head)})
		}
	}
	slices.SortFunc(heads, func(a, b ranked) int { return sendOrder(a.r, b.r) })
	due = make([]*entry, len(heads))
	for i, h := range heads {
		due[i] = h.e
	}
	return due, wake
}

// clampRetry keeps a retry no further away than the wait that was chosen for it, and a
// lane's failing-since not in the future: both are wall times, and after a wall-clock
// step back they would otherwise hold a page (and its fallback) for the length of the
// step. Held: mu.
func (o *Outbox) clampRetry(now time.Time, e *entry, l *lane) {
	if limit := now.Add(e.wait); e.next.After(limit) {
		e.next = limit
	}
	if l.failingSince.After(now) {
		l.failingSince = now
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// attempt sends one entry and records the outcome.
func (o *Outbox) attempt(ctx context.Context, j job) {
	if o.obsolete != nil {
		if why := o.obsolete(j.notification); why != "" {
			o.log.Info("outbox: dropping a superseded notification unsent", "notifier", j.notifier,
				"dedup_key", j.notification.DedupKey, "action", j.notification.Action, "why", why)
			o.mu.Lock()
			o.unpace(j.e) // nothing was sent: the slot is free again
			o.mu.Unlock()
			o.remove(j.e, false)
			return
		}
	}
	begin := time.Now()
	err := o.send(ctx, j)
	took := time.Since(begin)
	if err != nil && ctx.Err() != nil {
		// Stopping: the failure is ours, not the receiver's. The entry stays.
		o.log.Debug("outbox: send interrupted by shutdown", "notifier", j.notifier,
			"dedup_key", j.notification.DedupKey, "err", err)
		o.release(j.e)
		return
	}
	r := AttemptResult{Notifier: j.notifier, NotificationID: j.notification.ID, DedupKey: j.notification.DedupKey,
		Action: j.notification.Action, Created: j.notification.Created, OK: err == nil, Permanent: IsPermanent(err), Err: err,
		Attempt: j.attempt, Fallback: j.fallback, Duration: took}
	switch {
	case err == nil:
		o.delivered(j, r)
	case r.Permanent:
		o.failedForGood(j, r)
	default:
		o.failedForNow(j, r)
	}
}

// send calls the notifier with its deadline: the timeout the notifier states (its
// config's), else AttemptTimeout. A notifier unknown by name and by identity and a
// panic are errors like any other (permanent and retryable).
func (o *Outbox) send(ctx context.Context, j job) (err error) {
	n, ok := o.notifierSet().find(j.notifier, j.identity)
	if !ok {
		return Permanent(fmt.Errorf("expected a notifier named %q in the config, or one of the same kind and destination, got none",
			j.notifier))
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(limitsOf(n).Timeout, o.attemptTimeout))
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("notifier %s panicked: %v", j.notifier, p)
		}
	}()
	return n.Notify(ctx, j.notification)
}

// delivered, failedForGood and failedForNow record the outcome (log, OnResult) before
// acting on it, so OnResult of one attempt always comes before the next attempt.
func (o *Outbox) delivered(j job, r AttemptResult) {
	o.log.Info("outbox: notification delivered", "notifier", j.notifier, "dedup_key", r.DedupKey,
		"action", r.Action, "notification", r.NotificationID, "attempt", r.Attempt, "fallback", r.Fallback)
	r.Complete = o.accept(j.e)
	o.mu.Lock()
	o.hear(j.e, true)
	o.mu.Unlock()
	o.report(r)
	o.closeOpen(j.e)
	o.remove(j.e, true)
}

// accept marks the entry accepted and reports whether that makes every entry of its
// notification (all routes, primaries and fallbacks) accepted or gone: nothing of it is
// left to deliver. An entry dropped unsent (made moot by a later entry of its lane, or
// shed) is not gone in this sense: its notification is never complete, and a fleet
// waits for the later one's acceptance instead. Marking and checking under one lock
// means that of two acceptances at once, the later one sees both.
//
// Pagers decide: once every pager delivery of the notification accepted, a chat or
// webhook still failing does not keep it incomplete (a fleet would otherwise take over
// and page PagerDuty again from every vantage); a chat acceptance never completes it
// while a pager still fails. A notification without pagers completes when all accepted.
func (o *Outbox) accept(e *entry) (complete bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e.accepted = true
	if o.unsentPart[e.rec.Notification.ID] {
		return false
	}
	others := false
	for _, x := range o.entries {
		if x.rec.Notification.ID != e.rec.Notification.ID || x.accepted {
			continue
		}
		if o.isPager(x.rec) {
			return false
		}
		others = true
	}
	return o.isPager(e.rec) || !others
}

// isPager reports whether the entry's notifier pages someone (PagerDuty, Opsgenie)
// rather than posting to a channel.
func (o *Outbox) isPager(rec outboxRecord) bool {
	n, ok := o.notifierSet().find(rec.Notifier, rec.Identity)
	return ok && config.IsPagerKind(n.Kind())
}

// failedForGood records a permanent failure and tells the group's other pending
// entries (so a restart still knows). If that makes the fallback due, the fallback is
// stored first: the entry leaves the store only once what replaces it is in.
func (o *Outbox) failedForGood(j job, r AttemptResult) {
	o.log.Error("outbox: notification refused for good; dropping it", "notifier", j.notifier,
		"dedup_key", r.DedupKey, "action", r.Action, "notification", r.NotificationID,
		"attempt", r.Attempt, "fallback", r.Fallback, "err", r.Err)
	o.report(r)
	if j.notification.Action == ActionResolve {
		o.mu.Lock()
		o.hear(j.e, false) // refused: the key may still be open there
		o.mu.Unlock()
	}
	if !j.fallback {
		o.mu.Lock()
		g := o.groups[j.e.rec.Group]
		g.failed[memberOf(j.e.rec)] = true
		fallBack := o.claimFallback(g, o.now())
		o.mu.Unlock()
		if fallBack {
			o.sendFallback(g, j.e)
		} else {
			o.rewriteSiblings(g, j.e)
		}
	}
	// A refused resolve will not be accepted later either: the fallback is done with.
	o.closeOpen(j.e)
	o.remove(j.e, false)
}

// failedForNow schedules the next try; the entry keeps its place at its lane's head.
func (o *Outbox) failedForNow(j job, r AttemptResult) {
	wait := o.backoff(r.Attempt, r.Err)
	o.log.Warn("outbox: notification not delivered; will retry", "notifier", j.notifier,
		"dedup_key", r.DedupKey, "action", r.Action, "notification", r.NotificationID,
		"attempt", r.Attempt, "retry_in", wait, "fallback", r.Fallback, "err", r.Err)
	o.report(r)
	o.mu.Lock()
	e := j.e
	e.attempts = r.Attempt
	e.lastErr = r.Err.Error()
	e.next, e.wait = o.now().Add(wait), wait
	e.maybeSent = e.maybeSent || !unsent(r.Err)
	if ra := RetryAfter(r.Err); ra > 0 {
		o.holdDestination(e, ra) // every lane of that destination would hear the same
	}
	if l := o.lanes[laneOf(e.rec)]; l.failingSince.IsZero() {
		l.failingSince = o.now()
	}
	o.endSend(e)
	o.mu.Unlock()
}

func (o *Outbox) report(r AttemptResult) {
	if o.onResult != nil {
		o.onResult(r)
	}
}

// release puts an interrupted entry back as it was.
func (o *Outbox) release(e *entry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e.maybeSent = true // cut off mid-send: it may have arrived
	o.endSend(e)
}

// endSend ends e's send and wakes the loops. Held: mu.
func (o *Outbox) endSend(e *entry) {
	e.sending = false
	o.inFlight--
	o.inFlightBy[e.sendAs]--
	o.signal()
}

// remove deletes a sent entry from the store and from memory. If the delete fails
// the entry is still dropped from memory (it was handled) and comes back once more
// at the next start.
func (o *Outbox) remove(e *entry, delivered bool) {
	o.recordMu.Lock()
	defer o.recordMu.Unlock()
	if o.isUnpersisted(e) {
		// Never written: nothing to delete (and on a failing store, no false alarm).
	} else if err := o.store.Delete(OutboxBucket, e.key); err != nil {
		o.log.Error("outbox: deleting a handled entry failed; it will be sent again after a restart",
			"key", e.key, "err", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.detach(e, delivered)
	o.endSend(e)
}

// forgetIfDone drops a group that can no longer fall back. Held: mu.
func (o *Outbox) forgetIfDone(g *group) {
	if len(g.pending) == 0 && (g.fallbackSent || g.succeeded()) {
		delete(o.groups, g.id)
	}
}

// fallbackDue says when g should fall back: every primary failed for good or has
// been failing (in its lane) for fallbackAfter. ok is false when that cannot happen
// without some other change first. Held: mu.
func (o *Outbox) fallbackDue(g *group) (at time.Time, ok bool) {
	if g.fallbackSent || g.fallingBack || g.succeeded() {
		return time.Time{}, false
	}
	for _, p := range g.primaries {
		if g.failed[p] {
			continue
		}
		l := o.lanes[laneOf(g.pending[p].rec)]
		if l == nil || l.failingSince.IsZero() {
			return time.Time{}, false // not tried yet, or delivering again
		}
		at = latest(at, l.failingSince.Add(g.fallbackAfter))
	}
	return at, true
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// claimFallback reports whether g's fallback is due and, if so, marks it as being
// sent, so that only one goroutine sends it. Held: mu.
func (o *Outbox) claimFallback(g *group, now time.Time) bool {
	if at, ok := o.fallbackDue(g); ok && !at.After(now) {
		g.fallingBack = true
		return true
	}
	return false
}

// dueFallbacks returns the groups whose fallback is due, marked as falling back.
func (o *Outbox) dueFallbacks(now time.Time) []*group {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*group
	for _, g := range o.groups {
		if o.claimFallback(g, now) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *group) int { return cmp.Compare(a.id, b.id) })
	return out
}

// sendFallback enqueues g's notification to each fallback notifier, then marks the
// primaries still pending (but except, about to be deleted) as settled so a restart
// does not fall back again.
func (o *Outbox) sendFallback(g *group, except *entry) {
	o.log.Warn("outbox: every notifier failed; falling back", "dedup_key", g.notification.DedupKey,
		"action", g.notification.Action, "notification", g.notification.ID,
		"notify", g.primaries, "fallback", g.fallback)
	if len(g.fallback) == 0 {
		o.log.Error("outbox: no fallback configured; the notification may never arrive",
			"dedup_key", g.notification.DedupKey, "notification", g.notification.ID)
	}
	o.enqueueMu.Lock()
	recs := o.fallbackRecords(g)
	keys := o.persist(recs)
	o.markOpen(recs, keys) // with the persist: a resolve enqueued next must see it
	o.enqueueMu.Unlock()

	o.mu.Lock()
	g.fallingBack = false
	g.fallbackSent = true
	o.forgetIfDone(g)
	o.mu.Unlock()
	o.rewriteSiblings(g, except)
}

// rewriteSiblings stores g's fallback state onto its pending primaries other than
// except. Under recordMu, so an entry deleted meanwhile is not written back.
func (o *Outbox) rewriteSiblings(g *group, except *entry) {
	o.recordMu.Lock()
	defer o.recordMu.Unlock()
	o.mu.Lock()
	failed := make([]string, 0, len(g.failed))
	for p := range g.failed {
		failed = append(failed, p)
	}
	slices.Sort(failed)
	type write struct {
		key string
		rec outboxRecord
	}
	var writes []write
	for _, e := range g.pending {
		if e == except || (slices.Equal(e.rec.FailedPeers, failed) && e.rec.Settled == g.fallbackSent) {
			continue
		}
		e.rec.FailedPeers, e.rec.Settled = failed, g.fallbackSent
		writes = append(writes, write{key: e.key, rec: e.rec})
	}
	o.mu.Unlock()
	for _, w := range writes {
		if err := o.store.Put(OutboxBucket, w.key, w.rec); err != nil {
			o.log.Error("outbox: recording fallback state failed; after a restart the fallback may be repeated or missed",
				"key", w.key, "err", err)
		}
	}
}

// backoff is the wait before try attempt+1: MinBackoff doubled per failure up to
// MaxBackoff, ±20% jitter so that many entries do not retry in step, or the
// receiver's Retry-After (capped at MaxRetryAfter) when that is longer.
func (o *Outbox) backoff(attempt int, err error) time.Duration {
	d := o.minBackoff
	for i := 1; i < attempt && d < o.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.maxBackoff)
	d = time.Duration(float64(d) * (1 - backoffJitter + 2*backoffJitter*o.jitter()))
	if wait := min(RetryAfter(err), MaxRetryAfter); wait > d {
		return wait
	}
	return d
}
