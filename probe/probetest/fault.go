package probetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// FaultKind names one way the simulated platform misbehaves.
type FaultKind string

// The fault kinds. Each applies to every request of the (region, product) it is set on.
const (
	FaultNone FaultKind = ""
	// FaultDown set region-wide (product "") accepts TCP and closes at once without
	// answering, like a dead load balancer; set on one product it answers 503
	// {"error":"unavailable"}.
	FaultDown FaultKind = "down"
	// FaultError answers 500 with a JSON error body.
	FaultError FaultKind = "error"
	// FaultSlow answers correctly after Delay (default 3s when Delay is zero).
	FaultSlow FaultKind = "slow"
	// FaultWrongBody answers with the usual status but a body with wrong content.
	FaultWrongBody FaultKind = "wrong_body"
	// FaultStale accepts writes that never become readable (read-back 404) and
	// answers metric queries with an empty result.
	FaultStale FaultKind = "stale"
	// FaultHang never answers; the handler ends when the client gives up or on Close.
	FaultHang FaultKind = "hang"

	// Faults of the web app (/app, webapp.go) that a browser sees and an HTTP check
	// does not: every page still answers 200 with its usual HTML.

	// FaultJSError: the app's script throws an uncaught TypeError (the page still renders).
	FaultJSError FaultKind = "js_error"
	// FaultBlankPage: the dashboard is a 200 with an empty app (its script is empty).
	FaultBlankPage FaultKind = "blank_page"
	// FaultSlowAsset: the render-blocking stylesheet takes Delay (default 3s).
	FaultSlowAsset FaultKind = "slow_asset"
	// FaultBlockedAPI: the dashboard's Content-Security-Policy blocks its API call.
	FaultBlockedAPI FaultKind = "blocked_api"
)

// defaultSlowDelay is what FaultSlow waits when no Delay is given: longer than a
// typical degraded_after (2s), shorter than a typical timeout (10s).
const defaultSlowDelay = 3 * time.Second

func (k FaultKind) known() bool {
	switch k {
	case FaultNone, FaultDown, FaultError, FaultSlow, FaultWrongBody, FaultStale, FaultHang:
		return true
	}
	return k.browserOnly()
}

// browserOnly: the web app acts the fault out (Delay included); the front door lets
// the request through as it is.
func (k FaultKind) browserOnly() bool {
	switch k {
	case FaultJSError, FaultBlankPage, FaultSlowAsset, FaultBlockedAPI:
		return true
	}
	return false
}

// faultKinds lists the kinds that can be set, for help texts and error messages.
func faultKinds() []FaultKind {
	return []FaultKind{FaultDown, FaultError, FaultSlow, FaultWrongBody, FaultStale, FaultHang,
		FaultJSError, FaultBlankPage, FaultSlowAsset, FaultBlockedAPI}
}

// Fault is what one (region, product) does wrong. For every kind but hang, a
// non-zero Delay is waited before the fault acts, so "error after 2s" is possible.
type Fault struct {
	Kind  FaultKind     `json:"kind"`
	Delay time.Duration `json:"delay"`
}

// FaultRule is a Fault together with where it applies, as the control API lists it.
// Region "" means every region, Product "" every product of the region(s).
type FaultRule struct {
	Region  string
	Product string
	Kind    FaultKind
	Delay   time.Duration
}

// faultWire is the JSON shape shared by Fault and FaultRule: Delay as a Go
// duration string ("2s") so curl lines stay readable.
type faultWire struct {
	Region  string    `json:"region,omitempty"`
	Product string    `json:"product,omitempty"`
	Kind    FaultKind `json:"kind"`
	Delay   string    `json:"delay,omitempty"`
}

func formatDelay(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// parseFault checks a wire kind and delay.
func parseFault(kind FaultKind, delay string) (Fault, error) {
	if !kind.known() {
		return Fault{}, fmt.Errorf("fault kind: expected one of %v, got %q", faultKinds(), kind)
	}
	var d time.Duration
	if delay != "" {
		var err error
		if d, err = time.ParseDuration(delay); err != nil {
			return Fault{}, fmt.Errorf("fault delay: expected a Go duration such as \"2s\": %w", err)
		}
		if d < 0 {
			return Fault{}, fmt.Errorf("fault delay: expected zero or more, got %s", d)
		}
	}
	return Fault{Kind: kind, Delay: d}, nil
}

// MarshalJSON writes {"kind":"slow","delay":"2s"}.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Kind  FaultKind `json:"kind"`
		Delay string    `json:"delay,omitempty"`
	}{f.Kind, formatDelay(f.Delay)})
}

// UnmarshalJSON reads {"kind":"slow","delay":"2s"}; delay may be absent.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var w faultWire
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("fault: expected {\"kind\":..,\"delay\":\"2s\"}: %w", err)
	}
	parsed, err := parseFault(w.Kind, w.Delay)
	if err != nil {
		return err
	}
	*f = parsed
	return nil
}

// MarshalJSON writes {"region":"eu1","product":"logs","kind":"slow","delay":"2s"}.
func (r FaultRule) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultWire{Region: r.Region, Product: r.Product, Kind: r.Kind, Delay: formatDelay(r.Delay)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *FaultRule) UnmarshalJSON(data []byte) error {
	var w faultWire
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("fault rule: expected {\"region\",\"product\",\"kind\",\"delay\"}: %w", err)
	}
	rule, err := w.rule()
	if err != nil {
		return err
	}
	*r = rule
	return nil
}

func (w faultWire) rule() (FaultRule, error) {
	f, err := parseFault(w.Kind, w.Delay)
	if err != nil {
		return FaultRule{}, err
	}
	return FaultRule{Region: w.Region, Product: w.Product, Kind: f.Kind, Delay: f.Delay}, nil
}

type faultKey struct{ region, product string }

// faultTable is immutable once published: SetFault copies it, so the request path
// reads faults without a lock.
type faultTable map[faultKey]Fault

// resolve finds the fault for one request. The most specific rule wins:
// region+product, then region-wide, then every-region+product, then global.
// wide reports that the winner was set for every product ("" product), which
// turns "down" into a dropped connection. product "" (healthz, unknown paths)
// sees only region-wide and global rules.
func (t faultTable) resolve(region, product string) (f Fault, wide bool) {
	if len(t) == 0 {
		return Fault{}, false
	}
	for _, k := range [...]faultKey{{region, product}, {region, ""}, {"", product}, {"", ""}} {
		if f, ok := t[k]; ok {
			return f, k.product == ""
		}
	}
	return Fault{}, false
}

// dropsAtAccept reports whether every request to region would be dropped by a
// region-wide "down" without delay, so connections can be closed before reading.
func (t faultTable) dropsAtAccept(region string) bool {
	if len(t) == 0 {
		return false
	}
	for _, product := range append(Products(), "") {
		f, wide := t.resolve(region, product)
		if f.Kind != FaultDown || !wide || f.Delay > 0 {
			return false
		}
	}
	return true
}

func (t faultTable) with(region, product string, f Fault) faultTable {
	next := maps.Clone(t)
	if next == nil {
		next = faultTable{}
	}
	if f.Kind == FaultNone {
		delete(next, faultKey{region, product})
	} else {
		next[faultKey{region, product}] = f
	}
	return next
}

// rules lists the table sorted by region then product, for stable output.
func (t faultTable) rules() []FaultRule {
	out := make([]FaultRule, 0, len(t))
	for k, f := range t {
		out = append(out, FaultRule{Region: k.region, Product: k.product, Kind: f.Kind, Delay: f.Delay})
	}
	slices.SortFunc(out, func(a, b FaultRule) int {
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		return strings.Compare(a.Product, b.Product)
	})
	return out
}

// SetFault makes product in region misbehave as f. product "" means every product
// of the region (and /healthz), region "" every region. A Fault with Kind FaultNone
// removes the rule for exactly that (region, product).
func (p *Platform) SetFault(region, product string, f Fault) {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	p.faults.Store(new(p.faultTable().with(region, product, f)))
	p.logger.Info("probetest: fault set", "region", region, "product", product, "kind", f.Kind, "delay", f.Delay)
}

// ClearFaults removes every fault: all regions answer normally again.
func (p *Platform) ClearFaults() {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	p.faults.Store(&faultTable{})
	p.logger.Info("probetest: faults cleared")
}

// Faults lists the rules in force, sorted by region then product.
func (p *Platform) Faults() []FaultRule { return p.faultTable().rules() }

func (p *Platform) faultTable() faultTable { return *p.faults.Load() }
