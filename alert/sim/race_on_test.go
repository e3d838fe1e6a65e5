//go:build race

package sim

// Under the race detector the walks run about eight times slower; `make test` runs the
// full default counts again without it (see the Makefile), so the race build runs a
// share of them: enough to race the engine, outbox and store against each other.
const raceShare = 3
