package cluster

// Page records are facts about the paging service, and a fleet restarted all at once
// (an upgrade, a reboot of every host) has no peer to learn them from again: without a
// copy on disk it would forget an open page, never resolve it, and page again. So each
// member keeps its records in its store (Options.Store), loads them before it joins,
// and writes a record when it changes, in the background: changes happen under the
// cluster's lock, often inside memberlist's callbacks, where an fsync must not wait.

import (
	"encoding/json"
	"fmt"
	"time"
)

// PagesBucket is the store bucket of page records, one per dedup key.
const PagesBucket = "pages"

// PageStore keeps page records across restarts; internal/store's *Store is one.
type PageStore interface {
	ForEach(bucket string, fn func(key string, raw []byte) error) error
	// Batch puts and deletes records in one durable transaction, all or nothing.
	Batch(bucket string, puts map[string]any, deletes []string) error
}

// saveRetry is how long a failed write waits before it is tried again.
const saveRetry = time.Second

// A stored record is its wire encoding (encodePage): byte-exact, so that a record read
// back compares equal to the fleet's copies (JSON would mangle a name that is not
// UTF-8, and a time outside years 0 to 9999), and decoded by the fuzzed reader.

// decodeStoredPage reads a record as loadPages finds it under key.
func decodeStoredPage(key string, raw []byte) (pageRecord, error) {
	var b []byte
	if err := json.Unmarshal(raw, &b); err != nil {
		return pageRecord{}, fmt.Errorf("expected an encoded page record: %w", err)
	}
	p, err := decodePage(b)
	if err != nil {
		return pageRecord{}, err
	}
	if p.Key != key {
		return pageRecord{}, fmt.Errorf("expected the record of %q, got one of %q", key, p.Key)
	}
	return p, nil
}

// loadPages restores the records a previous process saved, before any peer is heard
// (the version clock included, so that this member's next record outranks them). A
// damaged record is logged and skipped; the bound applies as it does to gossip.
func (c *Cluster) loadPages() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	loaded := 0
	err := c.pageStore.ForEach(PagesBucket, func(key string, raw []byte) error {
		p, err := decodeStoredPage(key, raw)
		if err != nil {
			c.logger.Warn("cluster: skipping a damaged page record", "key", key, "err", err)
			return nil
		}
		c.applyPageLocked(p)
		loaded++
		return nil
	})
	if err != nil {
		return fmt.Errorf("load page records: %w", err)
	}
	c.evictPagesLocked()
	if loaded > 0 {
		c.logger.Info("cluster: page records loaded from the store", "records", len(c.pages))
	}
	return nil
}

// pageChangedLocked marks a record (or its removal) to be written, and wakes the writer.
func (c *Cluster) pageChangedLocked(key string) {
	if c.pageStore == nil || key == "" { // "" cannot be a store key; only a broken peer sends it
		return
	}
	c.unsaved[key] = true
	select {
	case c.saveWake <- struct{}{}:
	default: // already woken: it takes every mark at once
	}
}

// savePages is the writer: it writes what changed until the cluster stops (Close writes
// what is left after memberlist has stopped).
func (c *Cluster) savePages() {
	defer c.done.Done()
	var retry <-chan time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-c.saveWake:
		case <-retry:
		}
		retry = nil
		if err := c.flushPages(); err != nil {
			c.logger.Error("cluster: could not save page records; trying again", "in", saveRetry, "err", err)
			retry = time.After(saveRetry)
		}
	}
}

// flushPages writes the records marked since the last flush in one transaction, and
// deletes those that were dropped. On failure they stay marked. Only one flush runs at a
// time (the writer, then Close), so a record is never overtaken by an older copy.
func (c *Cluster) flushPages() error {
	c.mu.Lock()
	keys := c.unsaved
	c.unsaved = map[string]bool{}
	puts := make(map[string]any, len(keys))
	var deletes []string
	for key := range keys {
		if p, ok := c.pages[key]; ok {
			puts[key] = encodePage(p)
		} else {
			deletes = append(deletes, key)
		}
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	if err := c.pageStore.Batch(PagesBucket, puts, deletes); err != nil {
		c.mu.Lock()
		for key := range keys {
			c.unsaved[key] = true
		}
		c.mu.Unlock()
		return fmt.Errorf("save %d page records: %w", len(keys), err)
	}
	return nil
}
