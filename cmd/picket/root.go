package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "picket",
		Short: "Out-of-band synthetic prober that pages when the platform is down",
		Long: `Picket exercises a platform's public APIs per region and per product, exactly as a
customer would, and pages the on-call through PagerDuty when they fail, saying how wide
the outage is.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.Version = version // --version, printed as `picket version` prints it
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(newCheckCmd(), newValidateCmd(), newVersionCmd(), newRunCmd(), newDemoCmd(), newPageCmd(), newIncidentsCmd(),
		newUpdateCmd(), newSchemaCmd())
	return root
}
