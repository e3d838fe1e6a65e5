package notifiers_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/picket-dev/picket/alert/notify/email"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/notify/opsgenie"
	"github.com/picket-dev/picket/alert/notify/slack"
	"github.com/picket-dev/picket/alert/notify/slackbot"
	"github.com/picket-dev/picket/alert/notify/teams"
	"github.com/picket-dev/picket/alert/notify/templatehook"
	"github.com/picket-dev/picket/alert/notify/webhook"
	"github.com/picket-dev/picket/config"
)

const everyKind = `
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: web, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
notifiers:
  og: {opsgenie: {api_key: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", region: eu}}
  hook: {slack: {webhook_url: "https://hooks.slack.example/services/T0/B0/XXXXslackTOKENxxxx"}}
  bot: {slack: {token: "xoxb-1-2-BOTtokenSECRET", channel: C0123456789}}
  teams: {teams: {url: "https://prod.example/workflows/abc/triggers/manual/paths/invoke?sig=TEAMSsigSECRET1"}}
  mail: {email: {host: smtp.example.test, username: u, password: "MAILpwSECRET", from: p@example.test, to: [o@example.test]}}
  raw: {webhook: {url: "https://hook.example/x"}}
  shaped: {webhook: {url: "https://hook.example/y", body: '{"t": {{json .summary}}}'}}
routes: [{notify: [og, hook, bot, teams, mail, raw, shaped]}]
`

// TestEveryKindIsBuilt: each config section gets its own channel, with the kind
// config gives it (and the pace config gave that kind).
func TestEveryKindIsBuilt(t *testing.T) {
	cfg, err := config.Parse("kinds.yaml", []byte(everyKind))
	if err != nil {
		t.Fatal(err)
	}
	built := notifiers.Build(cfg, nil, nil)
	want := map[string]string{
		"og": fmt.Sprintf("%T", &opsgenie.Notifier{}), "hook": fmt.Sprintf("%T", &slack.Notifier{}),
		"bot": fmt.Sprintf("%T", &slackbot.Notifier{}), "teams": fmt.Sprintf("%T", &teams.Notifier{}),
		"mail": fmt.Sprintf("%T", &email.Notifier{}), "raw": fmt.Sprintf("%T", &webhook.Notifier{}),
		"shaped": fmt.Sprintf("%T", &templatehook.Notifier{}),
	}
	for name, typ := range want {
		n := built[name]
		if got := fmt.Sprintf("%T", n); got != typ {
			t.Errorf("%s: built %s, want %s", name, got, typ)
			continue
		}
		if n.Kind() != cfg.Notifiers[name].Kind() {
			t.Errorf("%s: kind %s, config says %s", name, n.Kind(), cfg.Notifiers[name].Kind())
		}
	}
	secrets := notifiers.Secrets(cfg)
	for _, s := range []string{"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "XXXXslackTOKENxxxx", "xoxb-1-2-BOTtokenSECRET", "TEAMSsigSECRET1", "MAILpwSECRET"} {
		if !slices.Contains(secrets, s) {
			t.Errorf("Secrets lacks %q", s)
		}
	}
	for name, rate := range map[string]string{"og": "120/m", "teams": "1/s", "mail": "30/m", "bot": "1/s"} {
		if got := cfg.Notifiers[name].Rate.String(); got != rate {
			t.Errorf("%s: default rate %s, want %s", name, got, rate)
		}
	}
}
