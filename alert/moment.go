package alert

import "time"

// moment is a time this process read, with its clock's monotonic reading: like
// time.Time's, the reading survives wall-clock steps while the process runs and is
// not persisted. Two moments of this process compare by their readings; a moment
// restored from the store (wall time only) compares by wall time.
type moment struct {
	wall time.Time
	mono time.Duration
	ok   bool // mono is a reading of this process's clock
}

// wallMoment is a persisted time, or one read without a monotonic reading.
func wallMoment(t time.Time) moment { return moment{wall: t} }

// since is how long before now m was.
func (m moment) since(now moment) time.Duration {
	if m.ok && now.ok {
		return now.mono - m.mono
	}
	return now.wall.Sub(m.wall)
}

// orPersisted is m when m is this process's reading of the persisted time (the same
// wall time), else the persisted time as a restart reads it.
func (m moment) orPersisted(persisted time.Time) moment {
	if m.ok && m.wall.Equal(persisted) {
		return m
	}
	return wallMoment(persisted)
}

// isZero: never set.
func (m moment) isZero() bool { return m.wall.IsZero() && !m.ok }

// add is d after m.
func (m moment) add(d time.Duration) moment {
	return moment{wall: m.wall.Add(d), mono: m.mono + d, ok: m.ok}
}
