package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/config"
)

func newValidateCmd() *cobra.Command {
	var path, output string
	cmd := &cobra.Command{
		Use:   "validate -c FILE [-o text|json]",
		Short: "Load and validate a config; print every problem as FILE:LINE:COL: message",
		Long: `Load and validate a config; print every problem as FILE:LINE:COL: message, and
warnings (which do not make it invalid) the same way. With -o json, print one object
instead: {"config", "valid", "problems": [{"file", "line", "column", "message"}],
"warnings": [...], "regions", "products", "targets", "notifiers", "routes"}.
Exit status: 0 valid, 2 invalid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "json":
				return validateJSON(cmd, path)
			case "text":
			default:
				return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: want text or json", output)}
			}
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
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// validation is the -o json answer of validate.
type validation struct {
	Config    string    `json:"config"`
	Valid     bool      `json:"valid"`
	Problems  []problem `json:"problems"`
	Warnings  []problem `json:"warnings"`
	Regions   int       `json:"regions"`
	Products  int       `json:"products"`
	Targets   int       `json:"targets"`
	Notifiers int       `json:"notifiers"`
	Routes    int       `json:"routes"`
}

type problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

func problems(es []config.Error) []problem {
	out := make([]problem, 0, len(es))
	for _, e := range es {
		out = append(out, problem{e.File, e.Line, e.Column, e.Msg})
	}
	return out
}

func validateJSON(cmd *cobra.Command, path string) error {
	v := validation{Config: path, Problems: []problem{}, Warnings: []problem{}}
	cfg, err := config.Load(path)
	var errs config.Errors
	switch {
	case errors.As(err, &errs):
		v.Problems = problems(errs)
	case err != nil:
		v.Problems = []problem{{File: path, Line: 1, Column: 1, Message: err.Error()}}
	default:
		v.Valid, v.Warnings = true, problems(cfg.Warnings)
		v.Regions, v.Products, v.Targets, v.Notifiers, v.Routes = len(cfg.Regions), len(cfg.Products), len(cfg.Targets), len(cfg.Notifiers), len(cfg.Routes)
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	if !v.Valid {
		return &exitError{code: exitUsage} // said in the JSON
	}
	return nil
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
