package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/picket-dev/picket/alert/notify/chattest"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/internal/daemon"
	"github.com/picket-dev/picket/probe/probetest"
)

// The demo's fixed loopback addresses; examples/demo.yaml names the same ones.
var (
	demoRegions = map[string]string{
		"eu1": "127.0.0.1:18081", "us1": "127.0.0.1:18082", "us3": "127.0.0.1:18083", "ap1": "127.0.0.1:18084",
	}
	demoTLS = map[string]string{
		"eu1": "127.0.0.1:18441", "us1": "127.0.0.1:18442", "us3": "127.0.0.1:18443", "ap1": "127.0.0.1:18444",
	}
	demoIntake = map[string]string{
		"eu1": "127.0.0.1:18251", "us1": "127.0.0.1:18252", "us3": "127.0.0.1:18253", "ap1": "127.0.0.1:18254",
	}
	demoGRPC = map[string]string{
		"eu1": "127.0.0.1:18351", "us1": "127.0.0.1:18352", "us3": "127.0.0.1:18353", "ap1": "127.0.0.1:18354",
	}
)

const (
	demoControl  = "127.0.0.1:18080"
	demoReceiver = "127.0.0.1:18090"
	demoChat     = "127.0.0.1:18091"
	demoDNS      = "127.0.0.1:18053"
	demoPublic   = "127.0.0.1:9116" // examples/demo.yaml's public.listen
)

func newDemoCmd() *cobra.Command {
	var path, state string
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the daemon against a simulated platform, a local PagerDuty receiver and a chat stand-in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := daemonStart(cmd, &lf, path)
			if err != nil {
				return err
			}
			simDir := filepath.Join(filepath.Dir(path), "sim")
			plat, err := probetest.Start(probetest.Options{
				Regions: []string{"eu1", "us1", "us3", "ap1"}, Addrs: demoRegions, ControlAddr: demoControl,
				APIKey: demoSecret(path, "platform_api_key"), WebPassword: demoSecret(path, "web_password"), Logger: log,
				DNSAddr: demoDNS, TLSAddrs: demoTLS, TCPAddrs: demoIntake, GRPCAddrs: demoGRPC,
				CACertFile: filepath.Join(simDir, "ca.pem"), CAKeyFile: filepath.Join(simDir, "ca-key.pem"),
			})
			if err != nil {
				return &exitError{code: exitDown, err: fmt.Errorf("simulated platform: %w", err)}
			}
			defer plat.Close()
			pd, err := pdtest.New(pdtest.Options{Addr: demoReceiver, Logger: log})
			if err != nil {
				return &exitError{code: exitDown, err: fmt.Errorf("PagerDuty receiver: %w", err)}
			}
			defer pd.Close()
			chat, err := chattest.New(chattest.Options{Addr: demoChat, Logger: log})
			if err != nil {
				return &exitError{code: exitDown, err: fmt.Errorf("chat stand-in: %w", err)}
			}
			defer chat.Close()
			if state == "" {
				if state, err = os.MkdirTemp("", "picket-demo-"); err != nil {
					return err
				}
				defer os.RemoveAll(state)
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			done := make(chan struct{})
			go func() { defer close(done); printArrivals(ctx, cmd.OutOrStdout(), pd, chat) }()
			err = daemon.Run(ctx, daemon.Options{
				ConfigPath: path, Logger: log, Version: version, Commit: buildCommit(), StateDir: state,
				OnListen: func(addr string) { printDemoHelp(cmd.OutOrStdout(), addr) },
			})
			stop()
			<-done
			if err != nil {
				return &exitError{code: exitDown, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "examples/demo.yaml", "config file")
	cmd.Flags().StringVar(&state, "state", "", "state directory (default: a fresh temporary one)")
	addLogFlags(cmd, &lf, "warn") // the demo's own output (URLs, pages) should stand out
	return cmd
}

// demoSecret reads a secret the demo configs send (the API key, the web app's password),
// so the simulated platform checks it.
func demoSecret(configPath, name string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(configPath), "secrets", name))
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\r\n")
}

func printDemoHelp(w io.Writer, addr string) {
	fmt.Fprintf(w, `
Picket demo: the daemon probes a simulated platform (4 regions x 4 products) on loopback,
over HTTP, HTTPS (demo CA in examples/sim), DNS (sim.test on %[4]s), a raw TCP intake
and gRPC health. examples/protocols.yaml has one step of every kind against it.

  status page    http://%[1]s/          (operators')
  public page    http://%[6]s/          (customers': also /history.atom, /badge.svg, /api/v2/summary.json)
  metrics        http://%[1]s/metrics
  API            http://%[1]s/api/v1/status
  pages received http://%[2]s/events
  chat received  http://%[5]s/chat

Break a region (pages within a minute):
  curl -s -X POST http://%[3]s/faults -d '{"region":"eu1","kind":"down"}'
Break a product everywhere:
  curl -s -X POST http://%[3]s/faults -d '{"product":"logs","kind":"error"}'
Make data never readable (the write-then-read journey fails):
  curl -s -X POST http://%[3]s/faults -d '{"region":"us1","product":"logs","kind":"stale"}'
Make logs slow in ap1 (degraded: a chat message, never a page):
  curl -s -X POST http://%[3]s/faults -d '{"region":"ap1","product":"logs","kind":"slow","delay":"1200ms"}'
A global outage (two regions at once: one page, "Major outage" on the public page, an
"update due" with a drafted text in the comms chat after 2 minutes):
  curl -s -X POST http://%[3]s/faults -d '{"region":"eu1","kind":"down"}'; curl -s -X POST http://%[3]s/faults -d '{"region":"us1","kind":"down"}'
Post the customer update (stored with the incident, on both pages, in the feed and the export):
  bin/picket update post picket/global -c examples/demo.yaml --status identified --text "A storage failure in two regions; we are failing over."
Break the web app for browsers only (HTTP checks still see 200s; js_error, blank_page,
slow_asset, blocked_api), and watch it with real Chromium in examples/browser.yaml:
  curl -s -X POST http://%[3]s/faults -d '{"region":"eu1","product":"web","kind":"blank_page"}'
  picket check -c examples/browser.yaml
Heal everything:
  curl -s -X DELETE http://%[3]s/faults

Pages (PAGE) and chat messages (CHAT) appear below as the local PagerDuty receiver and
the chat stand-in accept them. Ctrl-C stops the demo.

`, addr, demoReceiver, demoControl, demoDNS, demoChat, demoPublic)
}

// printArrivals shows each page the PagerDuty receiver accepts and each message the
// chat stand-in accepts, one line each and in order of arrival, as an on-call sees them.
func printArrivals(ctx context.Context, w io.Writer, pd *pdtest.Receiver, chat *chattest.Receiver) {
	type arrival struct {
		at   time.Time
		line string
	}
	pages, messages := 0, 0
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		events, msgs := pd.Events(), chat.Messages()
		var news []arrival
		for _, e := range events[pages:] {
			news = append(news, arrival{e.Received, demoPageLine(e)})
		}
		for _, m := range msgs[messages:] {
			news = append(news, arrival{m.Received, demoChatLine(m)})
		}
		slices.SortStableFunc(news, func(a, b arrival) int { return a.at.Compare(b.at) })
		for _, a := range news {
			fmt.Fprintln(w, a.line)
		}
		pages, messages = len(events), len(msgs)
	}
}

func demoPageLine(e pdtest.Event) string {
	what := e.Payload.Summary
	if e.Action == "resolve" {
		what = "(resolved)"
	}
	return fmt.Sprintf("%s PAGE %-8s %-28s %s", e.Received.Format("15:04:05"), e.Action, e.DedupKey, what)
}

// demoChatLine is a message as a chat client's notification shows it: its text (Slack's
// unescaped), on one line.
func demoChatLine(m chattest.Message) string {
	text := m.Text
	if m.Kind == chattest.KindSlack {
		text = html.UnescapeString(text) // Slack escapes &, < and > as HTML does
	}
	return fmt.Sprintf("%s CHAT %-8s %s", m.Received.Format("15:04:05"), m.Kind, strings.Join(strings.Fields(text), " "))
}
