package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const commsBase = `regions: {eu1: {title: Europe 1, vars: {api: "http://127.0.0.1:1"}}, us1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - {name: web, title: Web App, priority: 2, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}, {name: login, steps: [{http: {url: "{{.region.api}}/"}}]}]}
  - {name: logs, priority: 1, journeys: [{name: submit, steps: [{http: {url: "{{.region.api}}/"}}]}]}
notifiers:
  chat: {slack: {webhook_url: "http://127.0.0.1:1/slack"}}
  hook: {webhook: {url: "http://127.0.0.1:1/hook"}}
  pd: {pagerduty: {routing_key: "commstestroutingkey0000000000001"}}
routes: [{notify: [pd, chat]}]
`

// TestPublicAndCommsKeys: public: gives every product its public side (in the
// config's priority order, titles defaulting to the product's), and comms: defaults
// its cadence to 30m once it has somewhere to send.
func TestPublicAndCommsKeys(t *testing.T) {
	t.Setenv("PICKET_TEST_SP_KEY", "statuspage-key-for-tests")
	cfg, err := Parse("a.yaml", []byte(commsBase+`public:
  listen: 127.0.0.1:8080
  url: https://status.example.com
  products: {web: {title: Website, description: The app, degraded_means: Pages load slowly, journeys_shown: [login]}}
  sync: {page_id: p1, api_key: "{{.secret.sp}}", components: {web: {eu1: c-web-eu1}}}
secrets: {sp: {env: PICKET_TEST_SP_KEY}}
comms: {notify: [chat], updates_notify: [hook], renotify: 2h}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Public
	if p == nil || p.Listen != "127.0.0.1:8080" || cfg.PublicListen != p.Listen || p.Title != DefaultPublicTitle || p.URL != "https://status.example.com" {
		t.Fatalf("public: %+v (public listen %q)", p, cfg.PublicListen)
	}
	names := []string{}
	for _, pp := range p.Products {
		names = append(names, pp.Name+"="+pp.Title)
	}
	if want := []string{"logs=logs", "web=Website"}; !slices.Equal(names, want) {
		t.Errorf("public products %q, want %q (by priority, every product)", names, want)
	}
	if web := p.Product("web"); web.DegradedMeans != "Pages load slowly" || !slices.Equal(web.JourneysShown, []string{"login"}) {
		t.Errorf("public web: %+v", web)
	}
	if s := p.Sync; s == nil || s.URL != DefaultSyncURL || s.Every != DefaultSyncEvery || s.APIKey.Reveal() != "statuspage-key-for-tests" || s.Components["web"]["eu1"] != "c-web-eu1" {
		t.Errorf("sync: %+v", p.Sync)
	}
	c := cfg.Comms
	if c == nil || c.Every != DefaultCommsEvery || !slices.Equal(c.Notify, []string{"chat"}) || !slices.Equal(c.UpdatesNotify, []string{"hook"}) || c.Renotify != 2*time.Hour {
		t.Errorf("comms: %+v", c)
	}
	if got := cfg.ChatNotifiers([]string{"pd", "chat", "hook"}); !slices.Equal(got, []string{"chat", "hook"}) {
		t.Errorf("chat notifiers %q", got)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

// TestPublicListenIsAnAlias: the old key alone makes the public page on that address
// (with a warning); with public.listen too it is an error.
func TestPublicListenIsAnAlias(t *testing.T) {
	cfg, err := Parse("a.yaml", []byte(commsBase+"public_listen: 127.0.0.1:8080\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Public == nil || cfg.Public.Listen != "127.0.0.1:8080" || cfg.PublicListen != "127.0.0.1:8080" || len(cfg.Public.Products) != 2 {
		t.Errorf("public_listen alone: %+v", cfg.Public)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Msg, "public_listen is deprecated") {
		t.Errorf("warnings %v, want the deprecation", cfg.Warnings)
	}
	_, err = Parse("b.yaml", []byte(commsBase+"public_listen: 127.0.0.1:8080\npublic: {listen: 127.0.0.1:8081}\n"))
	if err == nil || !strings.Contains(err.Error(), "b.yaml:10:16: public_listen and public.listen are both set") {
		t.Errorf("both: %v", err)
	}
	if _, err := Parse("c.yaml", []byte(commsBase+"public: {title: x}\n")); err == nil || !strings.Contains(err.Error(), "public.listen is required") {
		t.Errorf("no listen: %v", err)
	}
	if _, err := Parse("d.yaml", []byte(commsBase+"comms: {every: 10m}\n")); err == nil || !strings.Contains(err.Error(), "comms.every needs comms.notify") {
		t.Errorf("every without notify: %v", err)
	}
}
