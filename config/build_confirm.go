package config

// Confirmation runs: defaults and bounds.
const (
	DefaultConfirmPerSecond = 50
	// MaxConfirmPerSecond bounds max_per_second: confirmation runs are a burst on top
	// of the plan, not a second plan.
	MaxConfirmPerSecond = 10_000
	// ConfirmSiblings bounds how many targets of the same region, and how many of the
	// same product, one confirmed failure runs again: enough to tell a region or a
	// product from one journey, a bounded burst however large the config.
	ConfirmSiblings = 32
)

// Confirm is the compiled confirm: block. When Enabled, a target's first failure runs
// it again at once (a confirmation run: the failure threshold is known in seconds, not
// intervals), and a target that fires has up to ConfirmSiblings targets of its region
// and of its product run at once too (the scope is known, and the first page need not
// wait for the group wait). MaxPerSecond bounds these extra runs.
type Confirm struct {
	Enabled      bool
	MaxPerSecond float64
}

func (b *builder) buildConfirm() {
	b.cfg.Confirm = Confirm{Enabled: true, MaxPerSecond: DefaultConfirmPerSecond}
	c := b.f.Confirm
	if c == nil {
		return
	}
	if c.Enabled != nil {
		b.cfg.Confirm.Enabled = *c.Enabled
	}
	if c.MaxPerSecond != nil {
		v := *c.MaxPerSecond
		if !(v > 0 && v <= MaxConfirmPerSecond) { // (also NaN)
			b.d.errorf(b.d.at(c, "max_per_second"), "confirm.max_per_second must be more than 0 and at most %d, got %g", MaxConfirmPerSecond, v)
		}
		b.cfg.Confirm.MaxPerSecond = v
	}
}
