package notify

import (
	"errors"
	"slices"
	"syscall"
	"time"
)

// Pacing: every destination (a PagerDuty routing key, a Slack webhook, a webhook URL)
// takes at most Rate.Events requests in any window of Rate.Per, counted at send time
// (retries and refused requests count: the receiver counts them too). A sliding window
// of the last sends, not a token bucket: a bucket full at the start of a window lets
// through its burst plus a window's refill, twice what PagerDuty takes in a minute.
// A 429 or 503 with Retry-After holds the whole destination, not only the lane that
// got it: every lane of that routing key would get the same answer.
//
// The window lives in memory: after a restart a destination may get up to one window
// more than its rate; the receiver's 429 then holds it as above.

// pacer is one destination's recent sends and hold.
type pacer struct {
	sent  []time.Time   // sends within the last window, oldest first
	per   time.Duration // the window they were counted in
	until time.Time     // held by a Retry-After until then
	wait  time.Duration // the Retry-After that set until
	// holding: it has held a due entry back since it was last idle, which was said
	// then; it is said again once the destination has been quiet for a window.
	holding bool
}

// heldBack is a destination that has just begun to hold entries back, for the log.
type heldBack struct {
	notifier string
	until    time.Time
}

// destOf names e's destination: its notifier's identity, so that two names for one
// routing key (or a renamed notifier) share a pace; else its notifier's name.
func destOf(e *entry) string {
	if e.part.Identity != "" {
		return "id:" + e.part.Identity
	}
	return "name:" + e.part.Notifier
}

// ready reports whether a request may go at now under rate, or else when one may.
func (p *pacer) ready(now time.Time, rate Rate) (bool, time.Time) {
	p.clamp(now)
	if p.until.After(now) {
		return false, p.until
	}
	if !rate.Paced() {
		p.sent, p.per = nil, 0
		return true, time.Time{}
	}
	p.per = rate.Per
	p.trim(now)
	if len(p.sent) < rate.Events {
		return true, time.Time{}
	}
	return false, p.sent[len(p.sent)-rate.Events].Add(rate.Per)
}

// take counts a request sent at now.
func (p *pacer) take(now time.Time, rate Rate) {
	if rate.Paced() {
		p.sent = append(p.sent, now)
	}
}

// refund forgets a request counted at at that was not sent after all.
func (p *pacer) refund(at time.Time) {
	if i := slices.Index(p.sent, at); i >= 0 {
		p.sent = slices.Delete(p.sent, i, i+1)
	}
}

// hold keeps every request back for wait from now (a Retry-After), unless a longer
// hold is in force.
func (p *pacer) hold(now time.Time, wait time.Duration) {
	if until := now.Add(wait); until.After(p.until) {
		p.until, p.wait = until, wait
	}
}

// clamp undoes a wall-clock step back: a hold is never longer than the wait that set
// it, and no send is counted in the future (else the window would stay full for the
// length of the step). Sends stay in order: later ones are all clamped to now.
func (p *pacer) clamp(now time.Time) {
	if limit := now.Add(p.wait); p.until.After(limit) {
		p.until = limit
	}
	for i := range p.sent {
		if p.sent[i].After(now) {
			p.sent[i] = now
		}
	}
}

// trim forgets the sends that left the window.
func (p *pacer) trim(now time.Time) {
	cut := 0
	for cut < len(p.sent) && !p.sent[cut].After(now.Add(-p.per)) {
		cut++
	}
	p.sent = p.sent[cut:]
}

// idle reports whether p remembers nothing that still matters at now.
func (p *pacer) idle(now time.Time) bool {
	if p.until.After(now) {
		return false
	}
	return len(p.sent) == 0 || !p.sent[len(p.sent)-1].After(now.Add(-p.per))
}

// pace takes a slot of e's destination at now for a send by n (nil: none), or says when
// one frees up and whether the destination has just begun to hold entries back.
// Held: mu.
func (o *Outbox) pace(n Notifier, e *entry, now time.Time) (at time.Time, ok, first bool) {
	var rate Rate
	if n != nil {
		rate = limitsOf(n).Rate
	}
	dest := destOf(e)
	p := o.pacers[dest]
	if p == nil {
		p = &pacer{}
		o.pacers[dest] = p
	}
	if ok, at := p.ready(now, rate); !ok {
		first, p.holding = !p.holding, true
		return at, false, first
	}
	p.take(now, rate)
	e.pacedAt = now
	return time.Time{}, true, false
}

// logHeld says that destinations began to hold entries back: their pace is spent,
// or a Retry-After holds them.
func (o *Outbox) logHeld(held []heldBack) {
	for _, h := range held {
		o.log.Info("outbox: more is due for a destination than its pace allows; sending the most important first",
			"notifier", h.notifier, "next_slot", h.until)
	}
}

// unpace gives back the slot e took for a send that did not happen. Held: mu.
func (o *Outbox) unpace(e *entry) {
	if p := o.pacers[destOf(e)]; p != nil {
		p.refund(e.pacedAt)
	}
}

// holdDestination keeps e's whole destination back for a Retry-After. Held: mu.
func (o *Outbox) holdDestination(e *entry, wait time.Duration) {
	dest := destOf(e)
	p := o.pacers[dest]
	if p == nil {
		p = &pacer{}
		o.pacers[dest] = p
	}
	p.hold(o.now(), min(wait, MaxRetryAfter))
}

// prunePacers forgets destinations with nothing left to remember. Held: mu.
func (o *Outbox) prunePacers(now time.Time) {
	for dest, p := range o.pacers {
		if p.idle(now) {
			delete(o.pacers, dest)
		}
	}
}

// unsent reports whether err says the receiver did not keep the request: it answered
// with a refusal (a status outside 2xx, a Retry-After), or refused the connection
// before anything was sent. Anything else (a timeout, a reset, an answer cut off) may
// have come after the receiver kept it: such a trigger may have opened an incident.
func unsent(err error) bool {
	var status *StatusError
	var retry *RetryAfterError
	return errors.As(err, &status) || errors.As(err, &retry) || errors.Is(err, syscall.ECONNREFUSED)
}
