package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/daemon"
)

func newRunCmd() *cobra.Command {
	var path, shard string
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the daemon: probe every target, alert, serve metrics and the status page",
		Long: `Run the daemon. SIGHUP or POST /-/reload reloads the config (a config that does not
validate is refused and the running one stays). Like every write over HTTP, POST /-/reload
needs Authorization: Bearer <api.token> and Content-Type: application/json, and is
refused without api.token. SIGINT or SIGTERM stops it (exit 0).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := daemonStart(cmd, &lf, path)
			if err != nil {
				return err
			}
			sh, err := shardFlag(shard)
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			ctx := cmd.Context()
			go forwardSignals(ctx.Done(), hup, reload)
			err = daemon.Run(ctx, daemon.Options{
				ConfigPath: path, Logger: log, Version: version, Commit: buildCommit(), Reload: reload, Shard: sh,
			})
			var errs config.Errors
			switch {
			case err == nil:
				return nil
			case errors.As(err, &errs):
				return &exitError{code: exitUsage, err: err}
			}
			return &exitError{code: exitDown, err: err}
		},
	}
	addConfigFlag(cmd, &path)
	addLogFlags(cmd, &lf, "info")
	addShardFlag(cmd, &shard)
	return cmd
}

func addShardFlag(cmd *cobra.Command, shard *string) {
	cmd.Flags().StringVar(shard, "shard", "", "probe only shard INDEX/COUNT of the targets (e.g. 0/3), by a stable hash of the target id")
}

// shardFlag parses --shard; "" means the config's own shard (or all targets).
func shardFlag(s string) (*config.Shard, error) {
	if s == "" {
		return nil, nil
	}
	sh, err := config.ParseShard(s)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("--shard: %w", err)}
	}
	return &sh, nil
}

// forwardSignals turns SIGHUPs into reload requests until done closes.
func forwardSignals(done <-chan struct{}, hup <-chan os.Signal, reload chan<- struct{}) {
	for {
		select {
		case <-done:
			return
		case <-hup:
			select {
			case reload <- struct{}{}:
			default: // a reload is already waiting
			}
		}
	}
}

// daemonStart is what run and demo do first: the logger of the log flags, and the
// config validated once before the daemon loads it (so a bad one exits with its
// errors and the usage code).
func daemonStart(cmd *cobra.Command, lf *logFlags, path string) (*slog.Logger, error) {
	log, err := lf.logger(cmd.ErrOrStderr())
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	if _, err := loadConfig(cmd, path); err != nil {
		return nil, err
	}
	return log, nil
}
