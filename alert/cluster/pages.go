package cluster

// Page records tell the fleet what was sent to the paging service per dedup key, so that
// a vantage that becomes the sender (first in rank) after another one does not page again
// for an incident that was already paged, nor miss a resolve.
//
// Each key's record is last-writer-wins by a Lamport version, ties broken by the writer's
// name (greater wins), then by the remaining fields, so that every member ends with the
// same record whatever the order or duplication of messages. A new record's version is
// above both the key's current one and every page version this member has seen (its
// page clock): a key this member dropped (see maxPages) and records again, or a member
// that records before its join state arrived, still outranks what it saw before.
//
// Records stay when their writer dies or leaves: they are facts about the paging
// service, not about the writer.

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Page is what the fleet knows of one dedup key at the paging service.
type Page struct {
	Key       string
	Open      bool      // a trigger was sent (true) or a resolve (false)
	Confirmed bool      // the paging service accepted it
	By        string    // the vantage that sent it
	At        time.Time // when By recorded it (By's clock, to the millisecond)
}

// maxPages bounds the page records a member keeps, and those a state may carry. Past
// it, a member drops a tenth of them: closed records first, oldest first, then open
// ones, oldest first. A dropped record may come back from a peer's state.
const maxPages = 10_000

// pageRecord is a Page with its version.
type pageRecord struct {
	Page
	version uint64
}

// outranks reports whether p wins over o for the same key. The order is total, so that
// two members holding different records of a key agree which one stays.
func (p pageRecord) outranks(o pageRecord) bool {
	if p.version != o.version {
		return p.version > o.version
	}
	if p.By != o.By {
		return p.By > o.By
	}
	if !p.At.Equal(o.At) {
		return p.At.After(o.At)
	}
	if p.Confirmed != o.Confirmed {
		return p.Confirmed
	}
	return p.Open && !o.Open
}

// Page returns the fleet's record of the dedup key, if any member recorded one.
func (c *Cluster) Page(key string) (Page, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pages[key]
	return p.Page, ok
}

// RecordPage records that this vantage sent (queued) a trigger (open) or a resolve for
// the dedup key, not yet confirmed, and gossips it.
func (c *Cluster) RecordPage(key string, open bool) {
	c.mu.Lock()
	p := c.newPageLocked(Page{Key: key, Open: open, By: c.name, At: nowMilli()})
	c.mu.Unlock()
	c.queuePage(p)
}

// ConfirmPage records that the paging service accepted this vantage's trigger (open) or
// resolve for the key. It does nothing unless the current record is this vantage's
// unconfirmed one with the same open: a later action, here or elsewhere, superseded it.
func (c *Cluster) ConfirmPage(key string, open bool) {
	c.mu.Lock()
	cur, ok := c.pages[key]
	if !ok || cur.By != c.name || cur.Open != open || cur.Confirmed {
		c.mu.Unlock()
		return
	}
	next := cur.Page
	next.Confirmed = true
	p := c.newPageLocked(next)
	c.mu.Unlock()
	c.queuePage(p)
}

// nowMilli is the time as the wire carries it, so that a record compares equal on every
// member.
func nowMilli() time.Time { return time.UnixMilli(time.Now().UnixMilli()) }

// newPageLocked stores p as this member's newest word on its key.
func (c *Cluster) newPageLocked(p Page) pageRecord {
	c.pageClock = max(c.pageClock, c.pages[p.Key].version) + 1
	rec := pageRecord{Page: p, version: c.pageClock}
	c.pages[p.Key] = rec
	c.pageChangedLocked(p.Key)
	c.evictPagesLocked()
	c.gen.Add(1)
	return rec
}

func (c *Cluster) queuePage(p pageRecord) {
	c.queue.QueueBroadcast(newPageBroadcast(p.Key, encodePage(p)))
}

// applyPage merges one record from a peer and reports whether it was news.
func (c *Cluster) applyPage(p pageRecord) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.applyPageLocked(p) {
		return false
	}
	c.pageChangedLocked(p.Key)
	c.evictPagesLocked()
	c.gen.Add(1)
	return true
}

// applyPageLocked merges p and reports whether it was news; the caller marks it to be
// saved (a record loaded from the store is not news to the store).
func (c *Cluster) applyPageLocked(p pageRecord) bool {
	c.pageClock = max(c.pageClock, p.version)
	if cur, ok := c.pages[p.Key]; ok && !p.outranks(cur) {
		return false
	}
	c.pages[p.Key] = p
	return true
}

// mergePagesLocked merges a peer's records and reports whether any was news.
func (c *Cluster) mergePagesLocked(pages []pageRecord) bool {
	changed := false
	for _, p := range pages {
		if c.applyPageLocked(p) {
			c.pageChangedLocked(p.Key)
			changed = true
		}
	}
	if changed {
		c.evictPagesLocked()
	}
	return changed
}

// pagesLocked lists the records by key, for a state.
func (c *Cluster) pagesLocked() []pageRecord {
	pages := slices.Collect(maps.Values(c.pages))
	slices.SortFunc(pages, func(a, b pageRecord) int { return strings.Compare(a.Key, b.Key) })
	return pages
}

// evictPagesLocked drops a tenth of the records once there are more than the limit, so
// that the sort is paid once per many insertions: closed records first, oldest first.
func (c *Cluster) evictPagesLocked() {
	limit := c.pageLimit
	if limit <= 0 {
		limit = maxPages
	}
	if len(c.pages) <= limit {
		return
	}
	pages := slices.Collect(maps.Values(c.pages))
	slices.SortFunc(pages, evictionOrder)
	for _, p := range pages[:len(pages)-(limit-limit/10)] {
		delete(c.pages, p.Key)
		c.pageChangedLocked(p.Key) // deleted from the store too: the bound holds there
	}
}

// evictionOrder puts closed records before open ones, then the oldest first.
func evictionOrder(a, b pageRecord) int {
	if a.Open != b.Open {
		if a.Open {
			return 1
		}
		return -1
	}
	if n := a.At.Compare(b.At); n != 0 {
		return n
	}
	return strings.Compare(a.Key, b.Key)
}
