package notify

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/picket-dev/picket/config"
)

// Sending is small stages, as in Alertmanager's notify pipeline: takeDue waits by rank
// (the due lane heads, most important first, within the parallel bounds and each
// destination's pace); attempt skips what another sender made moot, sends with the
// notifier's deadline, and records the outcome: delivered, refused for good (which may
// make the fallback due), or retried after a backoff. Each outcome that changes a
// delivery is one transaction.

// job is one send, with what it needs copied out from under mu.
type job struct {
	e            *entry
	n            Notifier // nil: no notifier by that name or identity
	notifier     string
	notification Notification
	attempt      int
	fallback     bool
}

// takeDue marks due lane heads as sending, most important first, within the parallel
// bounds and each destination's pace. It also returns when to look again (zero: only
// on a change), the channel that closes on the next change, and whether nothing at
// all is left to do.
func (o *Outbox) takeDue(now time.Time) (jobs []job, wake time.Time, changed <-chan struct{}, idle bool) {
	o.mu.Lock()
	var held []heldBack
	due, wake := o.dueHeads(now)
	for _, e := range due {
		name := e.part.Notifier
		if o.inFlight >= maxInFlight || o.inFlightBy[name] >= maxInFlightPerNotifier {
			continue // woken again when a send ends
		}
		n, _ := o.set.find(name, e.part.Identity)
		at, ok, first := o.pace(n, e, now)
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
		jobs = append(jobs, job{e: e, n: n, notifier: name, notification: e.notification(),
			attempt: e.attempts + 1, fallback: e.part.Fallback})
	}
	for d := range o.deliveries {
		if at, ok := o.fallbackDue(d); ok {
			wake = earliest(wake, at)
		}
	}
	o.prunePacers(now)
	changed, idle = o.changed, len(o.entries) == 0 && len(o.deliveries) == 0
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

// attempt runs one job through the stages: skip it if superseded, send it, record
// the outcome.
func (o *Outbox) attempt(ctx context.Context, j job) {
	if o.superseded(j) {
		return
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

// superseded drops the job's entry unsent when Obsolete says another sender made it
// moot (a fleet), without a fallback.
func (o *Outbox) superseded(j job) bool {
	if o.obsolete == nil {
		return false
	}
	why := o.obsolete(j.notification)
	if why == "" {
		return false
	}
	o.log.Info("outbox: dropping a superseded notification unsent", "notifier", j.notifier,
		"dedup_key", j.notification.DedupKey, "action", j.notification.Action, "why", why)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.unpace(j.e) // nothing was sent: the slot is free again
	o.settle(j.e, partDone, &change{})
	return true
}

// send calls the notifier with its deadline: the timeout the notifier states (its
// config's), else AttemptTimeout. A notifier unknown by name and by identity and a
// panic are errors like any other (permanent and retryable).
func (o *Outbox) send(ctx context.Context, j job) (err error) {
	if j.n == nil {
		return Permanent(fmt.Errorf("expected a notifier named %q in the config, or one of the same kind and destination, got none",
			j.notifier))
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(limitsOf(j.n).Timeout, o.attemptTimeout))
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("notifier %s panicked: %v", j.notifier, p)
		}
	}()
	return j.n.Notify(ctx, j.notification)
}

// delivered, failedForGood and failedForNow record the outcome (log, OnResult) before
// acting on it, so OnResult of one attempt always comes before the next attempt.
func (o *Outbox) delivered(j job, r AttemptResult) {
	o.log.Info("outbox: notification delivered", "notifier", j.notifier, "dedup_key", r.DedupKey,
		"action", r.Action, "notification", r.NotificationID, "attempt", r.Attempt, "fallback", r.Fallback)
	o.mu.Lock()
	r.Complete = o.accept(j.e)
	o.hear(j.e, true)
	o.mu.Unlock()
	o.report(r)
	o.mu.Lock()
	defer o.mu.Unlock()
	c := &change{}
	o.closeOpen(j.e, c)
	o.settle(j.e, partDone, c)
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
// Held: mu.
func (o *Outbox) accept(e *entry) (complete bool) {
	e.accepted = true
	id := e.notification().ID
	if o.unsentPart[id] {
		return false
	}
	others := false
	for x := range o.entries {
		if x.notification().ID != id || x.accepted {
			continue
		}
		if o.isPager(x) {
			return false
		}
		others = true
	}
	return o.isPager(e) || !others
}

// isPager reports whether the entry's notifier pages someone (PagerDuty, Opsgenie)
// rather than posting to a channel. Held: mu.
func (o *Outbox) isPager(e *entry) bool {
	n, ok := o.set.find(e.part.Notifier, e.part.Identity)
	return ok && config.IsPagerKind(n.Kind())
}

// failedForGood records a permanent failure. If that makes the delivery's fallback due,
// the fallback is added in the same transaction that records the refusal: the entry
// leaves the store only with what replaces it.
func (o *Outbox) failedForGood(j job, r AttemptResult) {
	o.log.Error("outbox: notification refused for good; dropping it", "notifier", j.notifier,
		"dedup_key", r.DedupKey, "action", r.Action, "notification", r.NotificationID,
		"attempt", r.Attempt, "fallback", r.Fallback, "err", r.Err)
	o.report(r)
	o.mu.Lock()
	defer o.mu.Unlock()
	e, c := j.e, &change{}
	if j.notification.Action == ActionResolve {
		o.hear(e, false) // refused: the key may still be open there
	}
	e.part.Outcome = partRefused // before the fallback decides
	if !j.fallback && o.dueNow(e.d, o.now()) {
		o.fallBack(e.d, c)
	}
	// A refused resolve will not be accepted later either: the fallback is done with.
	o.closeOpen(e, c)
	o.settle(e, partRefused, c)
}

// failedForNow schedules the next try; the entry keeps its place at its lane's head.
func (o *Outbox) failedForNow(j job, r AttemptResult) {
	wait := o.backoff(r.Attempt, r.Err)
	o.log.Warn("outbox: notification not delivered; will retry", "notifier", j.notifier,
		"dedup_key", r.DedupKey, "action", r.Action, "notification", r.NotificationID,
		"attempt", r.Attempt, "retry_in", wait, "fallback", r.Fallback, "err", r.Err)
	o.report(r)
	o.mu.Lock()
	defer o.mu.Unlock()
	e := j.e
	e.attempts = r.Attempt
	e.lastErr = r.Err.Error()
	e.next, e.wait = o.now().Add(wait), wait
	e.maybeSent = e.maybeSent || !unsent(r.Err)
	if ra := RetryAfter(r.Err); ra > 0 {
		o.holdDestination(e, ra) // every lane of that destination would hear the same
	}
	if l := o.lanes[laneOf(e)]; l.failingSince.IsZero() {
		l.failingSince = o.now()
	}
	o.endSend(e)
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

// settle takes a sent entry out with outcome and writes its delivery, with the rest of
// c, in one transaction; then its send is over. If the write fails the entry is still
// gone from memory (it was handled) and comes back once more at the next start.
// Held: mu.
func (o *Outbox) settle(e *entry, outcome string, c *change) {
	o.detach(e, outcome)
	c.touch(e.d)
	o.save(c, "handled")
	o.endSend(e)
}

// save commits c and says so when the store refused it: new parts are then delivered
// from memory and written by the retry (see unpersisted.go); what else changed comes
// back as it was at the next start. what names the entries c is about. Held: mu.
func (o *Outbox) save(c *change, what string) {
	err := o.commit(c)
	switch {
	case err == nil:
	case len(c.fresh) > 0:
		o.refused(err)
	case slices.ContainsFunc(c.ds, (*delivery).done):
		o.log.Error("outbox: deleting a "+what+" entry failed; it will be sent again after a restart",
			"key", c.ds[0].key, "err", err)
	default:
		o.log.Error("outbox: recording a "+what+" entry failed; after a restart it is as it was before",
			"key", c.ds[0].key, "err", err)
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
