package main

import (
	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/config"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the config file (for editors: yaml-language-server)",
		Long: `Print the JSON Schema (draft-07) of the config file, generated from the config types.
Point an editor at it with a first line "# yaml-language-server: $schema=PATH" in the
config, or in the editor's settings. It checks keys and types as you type; picket
validate checks everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.JSONSchema)
			return err
		},
	}
}
