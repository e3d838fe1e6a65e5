package timetopage

import (
	"fmt"
	"time"

	"github.com/picket-dev/picket/config"
)

// Shape is the timing a run gives the daemon. A zero threshold or group wait is not
// written to the config, so Picket's own default applies.
type Shape struct {
	Name             string
	Interval         time.Duration
	Timeout          time.Duration
	FailureThreshold int
	SuccessThreshold int
	GroupWait        time.Duration
	// NoConfirm turns confirmation runs off (confirm: {enabled: false}), to measure
	// what the first page took without them.
	NoConfirm bool
}

// ShortShape is the timing the issue names: every second, two failures, 800 ms
// timeout, one second of group wait.
func ShortShape() Shape {
	return Shape{Name: "short", Interval: time.Second, Timeout: 800 * time.Millisecond,
		FailureThreshold: 2, SuccessThreshold: 2, GroupWait: time.Second}
}

// DefaultsScaledShape is Picket's defaults (interval 30s, timeout 10s, thresholds 2 and
// 2, group_wait one round = the shortest interval) divided by 15: interval 2s and
// timeout 667ms are written; the thresholds and group_wait are left to the defaults.
func DefaultsScaledShape() Shape {
	return Shape{Name: "defaults/15", Interval: 2 * time.Second, Timeout: 667 * time.Millisecond}
}

// Defaults30Shape is Picket's defaults themselves: interval 30s and timeout 10s are
// written, the thresholds (2 and 2) and group_wait (one round: 30s) are left to the
// defaults, and so are confirmation runs (on).
func Defaults30Shape() Shape {
	return Shape{Name: "defaults30", Interval: 30 * time.Second, Timeout: 10 * time.Second}
}

// Defaults30NoConfirmShape is Defaults30Shape without confirmation runs: as Picket
// paged before them.
func Defaults30NoConfirmShape() Shape {
	s := Defaults30Shape()
	s.Name, s.NoConfirm = "defaults30-noconfirm", true
	return s
}

// QuickShape is ShortShape at half the interval, for the check that runs in every
// `go test`: three trials in a few seconds.
func QuickShape() Shape {
	return Shape{Name: "quick", Interval: 500 * time.Millisecond, Timeout: 400 * time.Millisecond,
		FailureThreshold: 2, SuccessThreshold: 2, GroupWait: 500 * time.Millisecond}
}

// Two facts of the daemon as built that the bounds leave out, stated here so the
// figures can be read against them:
const (
	// engineTick is how often the daemon lets the engine send pages whose group wait is
	// over (internal/daemon/daemon.go, tick): a held page goes out at the first tick after
	// group_wait, unless another target changes state first.
	engineTick = 100 * time.Millisecond
)

// Timing is what the daemon runs with once the config is loaded (defaults filled in),
// and the bounds it implies.
type Timing struct {
	Shape            string  `json:"shape"`
	IntervalMS       float64 `json:"interval_ms"`
	TimeoutMS        float64 `json:"timeout_ms"`
	FailureThreshold int     `json:"failure_threshold"`
	SuccessThreshold int     `json:"success_threshold"`
	GroupWaitMS      float64 `json:"group_wait_ms"`
	// Defaulted names the settings the config left to Picket's defaults.
	Defaulted []string `json:"defaulted,omitempty"`
	// PageBoundMS is failure_threshold × interval + timeout + group_wait.
	PageBoundMS float64 `json:"page_bound_ms"`
	// DetectBoundMS is failure_threshold × interval + timeout: the bound without the
	// group wait Picket adds on purpose.
	DetectBoundMS float64 `json:"detect_bound_ms"`
	// ResolveBoundMS is success_threshold × interval + timeout (resolves are not held).
	ResolveBoundMS float64 `json:"resolve_bound_ms"`
	// AsBuiltPageBoundMS adds what the daemon adds today: one engine tick (the
	// scheduler's plan is regular: no per-run jitter). AsBuiltResolveBoundMS is the
	// resolve bound (resolves are not held for a tick).
	AsBuiltPageBoundMS    float64 `json:"as_built_page_bound_ms"`
	AsBuiltResolveBoundMS float64 `json:"as_built_resolve_bound_ms"`
	EngineTickMS          float64 `json:"engine_tick_ms"`
}

// timingOf reads the effective timing from a loaded config; every target shares it.
func timingOf(s Shape, cfg *config.Config) (Timing, error) {
	if len(cfg.Targets) == 0 {
		return Timing{}, fmt.Errorf("config %s: want targets, got none", cfg.Path)
	}
	t := cfg.Targets[0]
	for _, o := range cfg.Targets[1:] {
		if o.Interval != t.Interval || o.Timeout != t.Timeout || o.FailureThreshold != t.FailureThreshold || o.SuccessThreshold != t.SuccessThreshold {
			return Timing{}, fmt.Errorf("config %s: want one timing for every target, %s differs from %s", cfg.Path, o.ID, t.ID)
		}
	}
	gw := cfg.Alerting.GroupWait
	detect := time.Duration(t.FailureThreshold)*t.Interval + t.Timeout
	resolve := time.Duration(t.SuccessThreshold)*t.Interval + t.Timeout
	tm := Timing{
		Shape: s.Name, IntervalMS: ms(t.Interval), TimeoutMS: ms(t.Timeout),
		FailureThreshold: t.FailureThreshold, SuccessThreshold: t.SuccessThreshold, GroupWaitMS: ms(gw),
		PageBoundMS: ms(detect + gw), DetectBoundMS: ms(detect), ResolveBoundMS: ms(resolve),
		AsBuiltPageBoundMS:    ms(detect + gw + engineTick),
		AsBuiltResolveBoundMS: ms(resolve),
		EngineTickMS:          ms(engineTick),
	}
	if s.FailureThreshold == 0 {
		tm.Defaulted = append(tm.Defaulted, "failure_threshold")
	}
	if s.SuccessThreshold == 0 {
		tm.Defaulted = append(tm.Defaulted, "success_threshold")
	}
	if s.GroupWait == 0 {
		tm.Defaulted = append(tm.Defaulted, "group_wait")
	}
	return tm, nil
}
