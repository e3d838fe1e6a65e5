package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/config"
)

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate -c FILE",
		Short: "Load and validate a config; print every problem as FILE:LINE:COL: message",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			// Warnings go with the problems, on stderr; they do not make the config invalid.
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w.Warning())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d regions, %d products, %d targets, %d notifiers, %d routes\n",
				path, len(cfg.Regions), len(cfg.Products), len(cfg.Targets), len(cfg.Notifiers), len(cfg.Routes))
			return nil
		},
	}
	addConfigFlag(cmd, &path)
	return cmd
}

func addConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "", "config file (YAML)")
	_ = cmd.MarkFlagRequired("config")
}

// loadConfig loads path and prints every problem on stderr; a bad config exits 2.
func loadConfig(cmd *cobra.Command, path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(cmd.ErrOrStderr(), e.Error())
			}
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: %d problem(s)", path, len(errs))}
		}
		return nil, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}
