package sim

import (
	"log/slog"
	"os"
)

// outboxLog is where a vantage's outbox logs: nowhere, unless PICKET_SIM_LOG is set
// (replaying a seed: what the outbox did and why, beside the trace).
func outboxLog() *slog.Logger {
	if os.Getenv("PICKET_SIM_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}
