package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/internal/store"
)

func newIncidentsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "incidents", Short: "Incident records"}
	var path, format string
	export := &cobra.Command{
		Use:   "export KEY -c FILE [--format markdown|json]",
		Short: "Export an incident and its timeline (for the postmortem)",
		Long: `Export an incident by its dedup key (e.g. picket/region/eu1). While the daemon runs,
it is asked over its API (the state file is locked by the daemon); otherwise the state
directory is read directly.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "markdown" && format != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--format %q: want markdown or json", format)}
			}
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			inc, err := fetchIncident(cfg.Listen, args[0])
			if err != nil {
				inc, err = readIncident(cfg.StateDir, args[0])
			}
			if err != nil {
				return &exitError{code: exitDown, err: err}
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(inc)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), inc.Markdown())
			return err
		},
	}
	addConfigFlag(export, &path)
	export.Flags().StringVar(&format, "format", "markdown", "markdown or json")
	cmd.AddCommand(export)
	return cmd
}

// incidentURL is the API address of an incident's resource (timeline, updates) on the
// daemon at listen: the key's slashes written as ~, as the API reads them.
func incidentURL(listen, key, resource string) string {
	return "http://" + listen + "/api/v1/incidents/" + url.PathEscape(strings.ReplaceAll(key, "/", "~")) + "/" + resource
}

// fetchIncident asks a running daemon.
func fetchIncident(listen, key string) (alert.Incident, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(incidentURL(listen, key, "timeline"))
	if err != nil {
		return alert.Incident{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return alert.Incident{}, fmt.Errorf("daemon answered %d", resp.StatusCode)
	}
	var body struct {
		Incident alert.Incident `json:"incident"`
		Timeline []alert.Event  `json:"timeline"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return alert.Incident{}, fmt.Errorf("daemon answer: %w", err)
	}
	body.Incident.Timeline = body.Timeline
	return body.Incident, nil
}

// readIncident reads the state directory (daemon stopped).
func readIncident(dir, key string) (alert.Incident, error) {
	st, err := store.Open(dir, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return alert.Incident{}, err
	}
	defer st.Close()
	inc, ok, err := alert.LoadIncident(st, key)
	if err != nil {
		return alert.Incident{}, err
	}
	if !ok {
		return alert.Incident{}, fmt.Errorf("no incident %q in %s", key, dir)
	}
	return inc, nil
}
