package probe

import (
	"context"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/tmpl"
)

// Prober runs one attempt of one kind of step; ctx carries the deadline. What it saw
// goes into the Exchange's Observation, which the journey judges the same way for
// every kind.
type Prober interface {
	Probe(ctx context.Context, step *config.Step, data tmpl.Data) *Exchange
}

var _ Prober = (*HTTPProber)(nil)

// buildProbers maps step kinds to their probers (one file per protocol).
func (r *Runner) buildProbers() map[string]Prober {
	return map[string]Prober{
		"http": r.HTTP,
		"dns":  NewDNSProber(),
		"tcp":  NewTCPProber(),
		"tls":  NewTLSProber(),
	}
}
