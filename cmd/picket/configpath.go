package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/config"
)

// defaultConfigPath is the config used when neither --config nor PICKET_CONFIG names one
// (the systemd unit and the container image put it there).
const defaultConfigPath = "/etc/picket/picket.yaml"

// addConfigFlag adds --config to cmd and resolves it before cmd runs (cmd.RunE must be
// set): the flag, else $PICKET_CONFIG, else defaultConfigPath.
func addConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "", "config file (YAML); default $PICKET_CONFIG, else "+defaultConfigPath)
	_ = cmd.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		p, err := resolveConfigPath(*path)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		*path = p
		return run(c, args)
	}
}

// resolveConfigPath picks the config file; only the default may be missing without
// saying so here (a named file that is missing is Load's error, with its name).
func resolveConfigPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv("PICKET_CONFIG"); env != "" {
		return env, nil
	}
	if _, err := os.Stat(defaultConfigPath); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no config: give --config FILE or set PICKET_CONFIG (%s does not exist)", defaultConfigPath)
	}
	return defaultConfigPath, nil
}

// completeNames completes a flag with names from the command's config (--config,
// PICKET_CONFIG or the default), several comma-separated, each offered once.
func completeNames(pick func(config.Names) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		flag, _ := cmd.Flags().GetString("config")
		path, err := resolveConfigPath(flag)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, err := config.ReadNames(path)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		// "eu1,u" completes to "eu1,us1": the values already chosen stay, and are not offered again.
		done := ""
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			done = toComplete[:i]
		}
		chosen := strings.Split(done, ",")
		var out []string
		for _, n := range pick(names) {
			if done != "" {
				if slices.Contains(chosen, n) {
					continue
				}
				n = done + "," + n
			}
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
