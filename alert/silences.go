package alert

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/picket-dev/picket/config"
)

// Silences: windows in which matching incidents are recorded but not paged, from the
// config and made at run time (persisted in BucketSilences).

// Silence is a window in which matching incidents are recorded but not sent.
type Silence struct {
	ID      string       `json:"id"`
	Comment string       `json:"comment"`
	Start   time.Time    `json:"start"`
	End     time.Time    `json:"end"`
	Match   config.Match `json:"match"`
	Creator string       `json:"creator,omitempty"`
}

// Active reports whether the silence is in force at now.
func (s Silence) Active(now time.Time) bool { return !now.Before(s.Start) && now.Before(s.End) }

// silencedBy finds the silence that mutes inc: a silence mutes only what it covers, so
// an incident is muted when each of its targets is covered by an active silence whose
// scope list (if any) holds the incident's scope. A silence of one region never mutes a
// GLOBAL page of which another region is part. It returns the silence that covers the
// first target (the one the timeline names), or nil.
func silencedBy(silences []Silence, inc *Incident, now time.Time) *Silence {
	var first *Silence
	for _, target := range inc.Targets {
		s := coveringSilence(silences, inc, target, now)
		if s == nil {
			return nil
		}
		if first == nil {
			first = s
		}
	}
	return first
}

// coveringSilence is the first active silence covering one target of inc.
func coveringSilence(silences []Silence, inc *Incident, target string, now time.Time) *Silence {
	product, region := splitTarget(target)
	for i := range silences {
		s := &silences[i]
		f := facets(inc)
		f.Products, f.Regions = []string{product}, []string{region}
		if s.Active(now) && s.Match.Matches(f) {
			return s
		}
	}
	return nil
}

func (e *Engine) allSilences() []Silence {
	return append(append([]Silence{}, e.silences...), e.runtime...)
}

// Silences lists the silences in force or planned (config and run time).
func (e *Engine) Silences() []Silence {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var out []Silence
	for _, s := range e.allSilences() {
		if now.Before(s.End) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// AddSilence adds a run-time silence (persisted) and returns it with its id.
func (e *Engine) AddSilence(s Silence) (Silence, error) {
	if !s.End.After(s.Start) {
		return Silence{}, fmt.Errorf("silence ends (%s) before it starts (%s)", s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	}
	for _, sc := range s.Match.Scope {
		if Width(sc) == 0 && sc != ScopeTarget {
			return Silence{}, fmt.Errorf("scope %q: want target, region, product or global", sc)
		}
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	s.ID = hex.EncodeToString(b)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store != nil {
		if err := e.store.Put(BucketSilences, s.ID, s); err != nil {
			return Silence{}, fmt.Errorf("save silence: %w", err)
		}
	}
	e.runtime = append(e.runtime, s)
	return s, nil
}

// DeleteSilence ends a run-time silence; held incidents it covered are paged at once.
func (e *Engine) DeleteSilence(id string) error {
	e.mu.Lock()
	defer e.unlock()
	for i, s := range e.runtime {
		if s.ID == id {
			if e.store != nil {
				if err := e.store.Delete(BucketSilences, id); err != nil {
					return fmt.Errorf("delete silence: %w", err)
				}
			}
			e.runtime = append(e.runtime[:i], e.runtime[i+1:]...)
			e.sendDue(e.now())
			return nil
		}
	}
	return ErrNotFound
}
