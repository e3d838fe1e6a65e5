package notify

import (
	"context"
	"time"

	"github.com/picket-dev/picket/internal/lograte"
)

// An entry the store refuses (a full disk, a lost file) is delivered from memory, marked
// unpersisted, and its delivery written here in the background: soon at first, then
// every half minute. Once written it is an ordinary entry. If the process stops before,
// it is lost: that is the price of sending a page the disk cannot hold, rather than none.
const (
	persistMinBackoff = time.Second
	persistMaxBackoff = 30 * time.Second
)

// persistLater is the schedule of the writes of unpersisted entries (guarded by
// Outbox.mu).
type persistLater struct {
	pending bool          // something may be unpersisted: without it, nothing is looked at
	next    time.Time     // not before; zero: at once
	wait    time.Duration // the last backoff
	kick    chan struct{} // something new to write: the loop looks at once
	log     lograte.Limiter
}

// soon makes the next write due now and wakes the loop. Held: mu.
func (p *persistLater) soon() {
	p.pending, p.next = true, time.Time{}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// refused says that the store refused entries (at most once a minute, with a count)
// and has the write retried. Held: mu.
func (o *Outbox) refused(err error) {
	if ok, held := o.later.log.Allow(o.now()); ok {
		o.log.Error("outbox: the store refused a notification; it is delivered from memory and written when the store "+
			"works again, but lost if the process stops first (logged at most once a minute)",
			"unpersisted", o.unpersisted(), "refused_since_last_line", held+1, "err", err)
	}
	o.later.soon()
}

// persistLoop writes unpersisted entries when due, until ctx ends.
func (o *Outbox) persistLoop(ctx context.Context) {
	timer := o.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var due <-chan time.Time
		if next := o.persistDue(o.now()); !next.IsZero() {
			timer.Reset(max(next.Sub(o.now()), time.Millisecond))
			due = timer.C()
		}
		select {
		case <-ctx.Done():
			return
		case <-due:
		case <-o.later.kick:
		}
	}
}

// persistDue writes the deliveries of unpersisted entries if a try is due, and returns
// when the next try is (zero: nothing is left to write).
func (o *Outbox) persistDue(now time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := &o.later
	if !p.pending {
		return time.Time{}
	}
	if p.next.After(now) {
		return p.next
	}
	left, err := o.writeUnpersisted()
	if left == 0 {
		p.pending, p.next, p.wait = false, time.Time{}, 0
		return time.Time{}
	}
	p.wait = min(max(2*p.wait, persistMinBackoff), persistMaxBackoff)
	p.next = now.Add(p.wait)
	if ok, _ := p.log.Allow(now); ok {
		o.log.Warn("outbox: still cannot store notifications; they are delivered from memory meanwhile",
			"unpersisted", left, "retry_in", p.wait, "err", err)
	}
	return p.next
}

// writeUnpersisted writes each delivery with an unpersisted entry, oldest first and each
// in one transaction, until one fails; it returns how many entries are left
// unpersisted. Held: mu.
func (o *Outbox) writeUnpersisted() (left int, err error) {
	for _, d := range o.sortedDeliveries() {
		if !hasUnpersisted(d) {
			continue
		}
		c := &change{}
		c.write(d)
		if err = o.commit(c); err != nil {
			return o.unpersisted(), err
		}
	}
	return 0, nil
}

func hasUnpersisted(d *delivery) bool {
	for _, e := range d.parts {
		if e.unpersisted && e.part.Outcome == partPending {
			return true
		}
	}
	return false
}

// unpersisted counts the pending entries the store does not hold yet. Held: mu.
func (o *Outbox) unpersisted() int {
	n := 0
	for e := range o.entries {
		if e.unpersisted {
			n++
		}
	}
	return n
}

// Unpersisted is how many pending entries the store does not hold yet.
func (o *Outbox) Unpersisted() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.unpersisted()
}

// PersistAgain writes every pending delivery, and the open-fallback records, to the
// store again: for when the store had to start a fresh file, which holds none of them.
// The open records are written at once (one transaction), the deliveries by the retry;
// they are delivered meanwhile as ever.
func (o *Outbox) PersistAgain() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for d := range o.deliveries {
		d.stored = false // the fresh file holds none: nothing to delete, all to write
		for _, e := range d.parts {
			e.unpersisted = e.part.Outcome == partPending
		}
	}
	c := &change{}
	for k, open := range o.open {
		c.setOpen(k, open)
	}
	if err := o.commit(c); err != nil {
		o.log.Error("outbox: writing the open fallbacks again failed; after a restart they may not be told the resolve",
			"err", err)
	}
	o.later.soon()
}
