package timetopage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/probe/probetest"
)

// Outages a series can break.
const (
	OutageRegion = "region" // one region, every product, chosen by the seed
	OutageGlobal = "global" // every region and product
)

// Trial is one outage: quiet, broken at T0, paged, healed, resolved, quiet again.
type Trial struct {
	N        int     `json:"n"`
	Outage   string  `json:"outage"` // the region broken, or "global"
	Fault    string  `json:"fault"`  // probetest fault kind: down, error or hang
	OffsetMS float64 `json:"offset_ms"`
	Key      string  `json:"key"` // the dedup key expected to page
	// PageMS is T(trigger accepted at the receiver) − T0; ResolveMS is T(resolve
	// accepted) − T(heal).
	PageMS    float64 `json:"page_ms"`
	ResolveMS float64 `json:"resolve_ms"`
	// From the daemon's timeline: DetectMS is the incident opening (the scope formed)
	// − T0, HoldMS its trigger handed to the outbox − opening (group_wait, rounded up to
	// the engine's tick), DeliverMS acceptance at the receiver − handing over.
	DetectMS  float64 `json:"detect_ms"`
	HoldMS    float64 `json:"hold_ms"`
	DeliverMS float64 `json:"deliver_ms"`
	Triggers  int     `json:"triggers"` // trigger events for Key, updates included
	Resolves  int     `json:"resolves"` // resolve events for Key
	// OtherKeys are the other dedup keys triggered during the trial: pages beyond the one.
	OtherKeys []string `json:"other_keys,omitempty"`
	OverBound bool     `json:"over_bound"` // PageMS > failure_threshold × interval + timeout + group_wait
	// OverAsBuilt: PageMS over that bound plus one engine tick.
	OverAsBuilt bool `json:"over_as_built_bound"`
	// Events are what the receiver accepted during the trial, timed from T0.
	Events []EventAt `json:"events"`
}

// EventAt is one accepted event of a trial.
type EventAt struct {
	AtMS    float64 `json:"at_ms"` // after T0
	Action  string  `json:"action"`
	Key     string  `json:"key"`
	Summary string  `json:"summary"`
}

// faultKinds are the ways a trial breaks its targets: a dropped connection, a 500, and
// a request never answered (the timeout is what fails it).
func faultKinds() []probetest.FaultKind {
	return []probetest.FaultKind{probetest.FaultDown, probetest.FaultError, probetest.FaultHang}
}

// Trial runs one outage of the given kind; rng picks the region, the fault and the
// moment of T0 within one interval of quiet.
func (r *Rig) Trial(ctx context.Context, rng *rand.Rand, n int, outage string) (Trial, error) {
	region, key := "", "picket/global"
	if outage == OutageRegion {
		region = Regions()[rng.IntN(len(Regions()))]
		key = "picket/region/" + region
	}
	kinds := faultKinds()
	kind := kinds[rng.IntN(len(kinds))]
	offset := time.Duration(rng.Int64N(int64(r.Timing.IntervalMS * float64(time.Millisecond))))
	tr := Trial{N: n, Outage: region, Fault: string(kind), OffsetMS: ms(offset), Key: key}
	if region == "" {
		tr.Outage = OutageGlobal
	}
	ctx, cancel := context.WithTimeout(ctx, r.trialLimit())
	defer cancel()
	err := r.runTrial(ctx, &tr, region, kind, offset)
	if err != nil {
		r.Plat.ClearFaults() // leave the platform healthy for whoever comes next
		return tr, fmt.Errorf("trial %d (%s %s): %w", n, tr.Outage, kind, err)
	}
	return tr, nil
}

// trialLimit bounds one trial: quiet, page, heal and quiet again, with ample room.
func (r *Rig) trialLimit() time.Duration {
	bounds := r.Timing.PageBoundMS + r.Timing.ResolveBoundMS + 2*r.Timing.IntervalMS
	return 3*time.Duration(bounds*float64(time.Millisecond)) + 20*time.Second
}

func (r *Rig) runTrial(ctx context.Context, tr *Trial, region string, kind probetest.FaultKind, offset time.Duration) error {
	if err := r.WaitQuiet(ctx); err != nil {
		return err
	}
	from := len(r.PD.Events())
	if err := sleep(ctx, offset); err != nil { // T0 falls anywhere in the targets' schedule
		return err
	}
	t0 := time.Now()
	r.Plat.SetFault(region, "", probetest.Fault{Kind: kind})
	page, err := r.waitEvent(ctx, from, tr.Key, pdtest.ActionTrigger)
	if err != nil {
		return err
	}
	tr.PageMS = ms(page.Received.Sub(t0))
	tr.OverBound = tr.PageMS > r.Timing.PageBoundMS
	tr.OverAsBuilt = tr.PageMS > r.Timing.AsBuiltPageBoundMS
	// Heal once the whole outage is seen, so the resolve is timed from a known state.
	if err := r.waitFiring(ctx, region); err != nil {
		return err
	}
	heal := time.Now()
	r.Plat.ClearFaults()
	resolve, err := r.waitEvent(ctx, from, tr.Key, pdtest.ActionResolve)
	if err != nil {
		return err
	}
	tr.ResolveMS = ms(resolve.Received.Sub(heal))
	if err := r.WaitQuiet(ctx); err != nil {
		return err
	}
	tr.count(r.PD.Events()[from:], t0)
	timeline, err := r.Timeline(ctx, tr.Key)
	if err != nil {
		return err
	}
	return tr.breakdown(timeline, t0, page.Received)
}

// waitEvent waits for the first event for key and action accepted after the first
// `from` events.
func (r *Rig) waitEvent(ctx context.Context, from int, key, action string) (pdtest.Event, error) {
	var found pdtest.Event
	err := r.PD.WaitFor(ctx, func(events []pdtest.Event) bool {
		for _, ev := range events[min(from, len(events)):] {
			if ev.DedupKey == key && ev.Action == action {
				found = ev
				return true
			}
		}
		return false
	})
	if err != nil {
		return found, fmt.Errorf("waiting for %s of %s: %w", action, key, err)
	}
	return found, nil
}

// count tallies the trial's events: the expected key's triggers and resolves, and
// every other key that was triggered.
func (tr *Trial) count(events []pdtest.Event, t0 time.Time) {
	for _, ev := range events {
		tr.Events = append(tr.Events, EventAt{AtMS: ms(ev.Received.Sub(t0)), Action: ev.Action, Key: ev.DedupKey, Summary: ev.Payload.Summary})
		switch {
		case ev.DedupKey == tr.Key && ev.Action == pdtest.ActionTrigger:
			tr.Triggers++
		case ev.DedupKey == tr.Key && ev.Action == pdtest.ActionResolve:
			tr.Resolves++
		case ev.Action == pdtest.ActionTrigger && !slices.Contains(tr.OtherKeys, ev.DedupKey):
			tr.OtherKeys = append(tr.OtherKeys, ev.DedupKey)
		}
	}
	slices.Sort(tr.OtherKeys)
}

// breakdown splits the time to page by the incident's timeline. The timeline must be
// this trial's: opened at or after T0.
func (tr *Trial) breakdown(timeline []alert.Event, t0, accepted time.Time) error {
	opened, triggered := firstOf(timeline, "opened"), firstOf(timeline, "triggered")
	if opened.IsZero() || triggered.IsZero() {
		return fmt.Errorf("timeline of %s: want opened and triggered, got %d events", tr.Key, len(timeline))
	}
	if opened.Before(t0) {
		return fmt.Errorf("timeline of %s: opened %s, before T0 %s: an older incident", tr.Key, opened.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano))
	}
	tr.DetectMS = ms(opened.Sub(t0))
	tr.HoldMS = ms(triggered.Sub(opened))
	tr.DeliverMS = ms(accepted.Sub(triggered))
	return nil
}

func firstOf(timeline []alert.Event, kind string) time.Time {
	for _, ev := range timeline {
		if ev.Kind == kind {
			return ev.At
		}
	}
	return time.Time{}
}

// sleep waits d, or less if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
