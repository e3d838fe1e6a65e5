package store

import (
	"errors"
	"fmt"
	"time"
)

// Result is one run for RecordResults.
type Result struct {
	Target string
	At     time.Time
	Status string // up | degraded | down
}

// RecordResults counts many results in one transaction: one fsync for a batch instead
// of one per probe, which is what lets the daemon keep history at thousands of probes
// per second. An invalid result is left out and reported; the others are recorded.
func (s *Store) RecordResults(results []Result) error {
	if len(results) == 0 {
		return nil
	}
	var bad []error
	err := s.update("record results", func(tx *Tx) error {
		for _, res := range results {
			index, err := statusIndex(res.Status)
			if err == nil {
				err = checkHistoryInput(res.Target, res.At)
			}
			if err != nil {
				bad = append(bad, err)
				continue
			}
			tb, err := targetBucket(tx.tx, res.Target)
			if err != nil {
				return err
			}
			for _, r := range resolutions() {
				if err := record(tb, r, res.At, index); err != nil {
					return fmt.Errorf("store: record result of %s (%s): %w", res.Target, r.name, err)
				}
			}
		}
		return nil
	})
	return errors.Join(append(bad, err)...)
}
