package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/config"
)

func newUpdateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "update", Short: "Customer updates of incidents"}
	var path, status, text, author string
	post := &cobra.Command{
		Use:   "post KEY --status investigating|identified|monitoring|resolved --text TEXT -c FILE",
		Short: "Post a customer update of an incident to the running daemon",
		Long: `Post a human update of the incident with dedup key KEY (e.g. picket/global): it is
stored with the incident, shown on the operators' and the public status page, in the feed
and the export, and sent to comms.updates_notify. It goes to the daemon's API at listen,
with api.token. Exit 0 posted, 1 refused or not reached, 2 usage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(alert.UpdateStatuses, status) {
				return &exitError{code: exitUsage, err: fmt.Errorf("--status %q: want one of %s", status, strings.Join(alert.UpdateStatuses, ", "))}
			}
			if strings.TrimSpace(text) == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--text: say what customers should read")}
			}
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			if cfg.APIToken.IsZero() {
				return &exitError{code: exitUsage, err: fmt.Errorf("%s has no api.token: the daemon refuses every write without one", path)}
			}
			made, err := postUpdate(cfg, args[0], alert.Update{Status: status, Text: text, Author: author})
			if err != nil {
				return &exitError{code: exitDown, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "posted update %d of %s (%s) at %s\n", made.ID, args[0], made.Status, made.At.UTC().Format(time.RFC3339))
			return nil
		},
	}
	addConfigFlag(post, &path)
	post.Flags().StringVar(&status, "status", "", "investigating, identified, monitoring or resolved")
	post.Flags().StringVar(&text, "text", "", "the update, as customers will read it")
	post.Flags().StringVar(&author, "author", os.Getenv("USER"), "who wrote it (shown to operators, not to customers)")
	cmd.AddCommand(post)
	return cmd
}

// postUpdate sends the update to the running daemon's API, with the token.
func postUpdate(cfg *config.Config, key string, u alert.Update) (alert.Update, error) {
	body, _ := json.Marshal(map[string]string{"status": u.Status, "text": u.Text, "author": u.Author})
	req, err := http.NewRequest(http.MethodPost, incidentURL(cfg.Listen, key, "updates"), bytes.NewReader(body))
	if err != nil {
		return alert.Update{}, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.APIToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return alert.Update{}, fmt.Errorf("the daemon at %s did not answer: %w", cfg.Listen, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return alert.Update{}, fmt.Errorf("the daemon refused the update (%d): %s", resp.StatusCode, cfg.Secrets.Redact(e.Error))
	}
	var ans struct {
		Update alert.Update `json:"update"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return alert.Update{}, fmt.Errorf("the daemon's answer: %w", err)
	}
	return ans.Update, nil
}
