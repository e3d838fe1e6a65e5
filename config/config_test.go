package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestInvalidConfigs pairs every testdata/invalid-*.yaml with its exact expected errors.
func TestInvalidConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid configs found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(filepath.Base(file), data)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want Errors, got %v", err)
			}
			got := errs.Error() + "\n"
			if got != string(want) {
				t.Errorf("errors differ\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestThreeMistakesAreReportedTogether(t *testing.T) {
	_, err := Load("testdata/invalid-three-mistakes.yaml")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for _, e := range errs {
		if !strings.HasPrefix(e.Error(), "testdata/invalid-three-mistakes.yaml:") {
			t.Errorf("error without file:line:col prefix: %q", e)
		}
	}
}

func TestExampleConfigsLoad(t *testing.T) {
	for _, file := range []string{"../examples/platform.yaml", "../examples/demo.yaml", "../examples/protocols.yaml", "testdata/valid-minimal.yaml"} {
		if _, err := Load(file); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

func TestDefaultsAndExpansion(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
defaults: {interval: 20s, timeout: 5s, failure_threshold: 3}
regions:
  eu1: {vars: {api: "http://127.0.0.1:1"}}
  us1: {vars: {api: "http://127.0.0.1:2"}}
  ap1: {vars: {api: "http://127.0.0.1:3"}}
products:
  - name: web
    priority: 2
    journeys:
      - {name: home, steps: [{http: {url: "{{.region.api}}/"}}]}
  - name: logs
    priority: 1
    regions: [eu1, us1]
    journeys:
      - name: submit
        interval: 10s
        retries: 2
        regions: [us1]
        steps: [{http: {url: "{{.region.api}}/v1"}}]
      - {name: read, steps: [{http: {url: "{{.region.api}}/v1"}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tg := range cfg.Targets {
		ids = append(ids, tg.ID)
	}
	want := "logs/submit@us1 logs/read@eu1 logs/read@us1 web/home@eu1 web/home@us1 web/home@ap1"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("targets\n got %s\nwant %s", got, want)
	}
	submit := cfg.Targets[0]
	if submit.Interval != 10*time.Second || submit.Timeout != 5*time.Second || submit.FailureThreshold != 3 ||
		submit.SuccessThreshold != DefaultSuccessThreshold || submit.Retries != 2 || submit.Priority != 1 {
		t.Errorf("settings not resolved: %+v", submit)
	}
	if cfg.Products[0].Name != "logs" || cfg.Regions[2].Name != "ap1" {
		t.Errorf("order: products %v regions %v", cfg.Products, cfg.Regions)
	}
	if cfg.Targets[1].Steps[0] != cfg.Targets[2].Steps[0] {
		t.Error("regions of one journey should share compiled steps")
	}
	if cfg.Targets[1].Fingerprint == cfg.Targets[2].Fingerprint {
		t.Error("targets with different region vars must have different fingerprints")
	}
}

func TestFingerprintStableAcrossLoads(t *testing.T) {
	a, err := Load("../examples/platform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("../examples/platform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Targets {
		if a.Targets[i].Fingerprint != b.Targets[i].Fingerprint {
			t.Errorf("%s: fingerprint changed between loads", a.Targets[i].ID)
		}
	}
}

const marker = "SECRET-MARKER-7f3a9c"

func TestSecretsNeverPrinted(t *testing.T) {
	t.Setenv("PICKET_TEST_KEY", marker)
	dir := t.TempDir()
	file := filepath.Join(dir, "pd")
	if err := os.WriteFile(file, []byte(strings.Repeat("k", 24)+marker[:8]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`
secrets:
  api: {env: PICKET_TEST_KEY}
  pd: {file: %s}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products:
  - name: web
    journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/", headers: {Authorization: "Bearer {{.secret.api}}"}}}]}]
notifiers:
  pd: {pagerduty: {routing_key: "{{.secret.pd}}"}}
`, file)
	cfg, err := Parse("s.yaml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	key := cfg.Notifiers["pd"].PagerDuty.RoutingKey
	if key.Reveal() != strings.Repeat("k", 24)+marker[:8] {
		t.Fatalf("routing key not resolved")
	}
	var logBuf strings.Builder
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "key", key, "notifier", cfg.Notifiers["pd"])
	js, _ := json.Marshal(cfg.Notifiers["pd"])
	outputs := []string{
		fmt.Sprint(key), fmt.Sprintf("%v %+v %#v %s %q", key, key, key, key, key),
		fmt.Sprintf("%+v", *cfg.Notifiers["pd"].PagerDuty), string(js), logBuf.String(),
		cfg.Secrets.Redact("Authorization: Bearer " + marker),
	}
	for _, out := range outputs {
		if strings.Contains(out, marker) || strings.Contains(out, marker[:8]) {
			t.Errorf("secret leaked: %s", out)
		}
	}
}

func TestSecretErrorsNameTheSourceNotTheValue(t *testing.T) {
	t.Setenv("PICKET_EMPTY", "")
	_, err := Parse("s.yaml", []byte(`
secrets:
  a: {env: PICKET_UNSET_VARIABLE_X}
  b: {env: PICKET_EMPTY}
  c: {file: /nonexistent/picket/secret}
  d: {env: X, file: Y}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: web, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
`))
	want := []string{
		"s.yaml:3:3: secret a: environment variable PICKET_UNSET_VARIABLE_X is not set",
		"s.yaml:4:3: secret b: environment variable PICKET_EMPTY is empty",
		"s.yaml:5:3: secret c: read secret file /nonexistent/picket/secret: no such file or directory",
		"s.yaml:6:3: secret d: give either env or file, not both",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

func TestRelativePathsFollowTheConfigFile(t *testing.T) {
	cfg, err := Load("../examples/platform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secrets.Names()) != 4 {
		t.Errorf("secrets: %v", cfg.Secrets.Names())
	}
	if got := cfg.Notifiers["chat"].Slack.WebhookURL.Reveal(); got != "http://127.0.0.1:18091/slack" {
		t.Errorf("chat's webhook_url, from secrets/slack_webhook: %q", got)
	}
}

func TestRedactLongestFirst(t *testing.T) {
	s := newSecrets(map[string]string{"a": "abcdef", "b": "abcdefghij"})
	if got := s.Redact("x abcdefghij y abcdef"); got != "x [redacted] y [redacted]" {
		t.Errorf("got %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"../examples/platform.yaml", "testdata/valid-minimal.yaml", "testdata/invalid-types.yaml", "testdata/invalid-templates.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		var errs Errors
		if err != nil && !errors.As(err, &errs) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Column < 1 {
				t.Fatalf("error without a position: %v", e)
			}
		}
	})
}

func TestAliasBombIsAnError(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		doc += fmt.Sprintf("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	doc += "regions: {eu1: {vars: {api: http://127.0.0.1:1, list: *h}}}\n"
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(doc))
	if err == nil {
		t.Fatal("alias bomb loaded")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func TestShardsCoverEveryTargetOnce(t *testing.T) {
	cfg, err := Load("../examples/platform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 5} {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			sh, err := ParseShard(fmt.Sprintf("%d/%d", i, n))
			if err != nil {
				t.Fatal(err)
			}
			part, err := cfg.WithShard(sh)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range part.Targets {
				seen[tg.ID]++
			}
		}
		if len(seen) != len(cfg.Targets) {
			t.Errorf("%d shards cover %d of %d targets", n, len(seen), len(cfg.Targets))
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("%d shards: %s probed %d times", n, id, k)
			}
		}
	}
	for _, bad := range []string{"3/3", "-1/2", "1", "a/b", "0/0", "+1/3", "-0/3"} { // (the signed ones: FuzzParseShard)
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	_, err = Parse("s.yaml", []byte("shard: {index: 2, count: 2}\nregions: {eu1: {vars: {api: \"http://127.0.0.1:1\"}}}\nproducts: [{name: web, journeys: [{name: home, steps: [{http: {url: \"{{.region.api}}/\"}}]}]}]\n"))
	if err == nil || !strings.Contains(err.Error(), "s.yaml:1:8: shard 2/2") {
		t.Errorf("bad shard in config: %v", err)
	}
}

func TestClusterConfig(t *testing.T) {
	const key = "ZmxlZXQtdGVzdC1nb3NzaXAta2V5LTMyYnl0ZXMhISE=" // base64 of 32 bytes
	cfg, err := Parse("t.yaml", []byte(`
vantage: fsn1
regions:
  eu1: {vars: {api: "http://127.0.0.1:1"}}
  us1: {vars: {api: "http://127.0.0.1:2"}}
products:
  - name: web
    journeys:
      - {name: home, steps: [{http: {url: "{{.region.api}}/"}}]}
      - {name: login, steps: [{http: {url: "{{.region.api}}/login"}}]}
notifiers:
  ops: {webhook: {url: "http://127.0.0.1:9/hook"}}
self_check: {targets: ["tcp://127.0.0.1:9"], notify: [ops]}
cluster: {peers: ["10.0.0.2:7946"], secret: "`+key+`"}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c == nil || c.Member != "fsn1" || c.Bind != DefaultClusterBind || c.Quorum != 0 ||
		c.AloneAfter != DefaultAloneAfter || c.TakeoverAfter != DefaultTakeoverAfter || len(c.Notify) != 1 || c.Notify[0] != "ops" {
		t.Fatalf("cluster defaults: %+v", c)
	}
	if got := len(c.Secret.Reveal()); got != 32 {
		t.Errorf("the base64 gossip key decodes to %d bytes, want 32", got)
	}
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, key) || strings.Contains(s, "fleet-test") {
		t.Errorf("gossip key printed: %s", s)
	}
	sharded, err := cfg.WithShard(Shard{Index: 1, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sharded.Cluster.Member != "fsn1#1" || cfg.Cluster.Member != "fsn1" {
		t.Errorf("member names: sharded %q, whole %q", sharded.Cluster.Member, cfg.Cluster.Member)
	}
	if len(sharded.AllTargets) != 4 || len(sharded.Targets) >= 4 {
		t.Errorf("sharded: %d of %d targets", len(sharded.Targets), len(sharded.AllTargets))
	}
	if raw, err := GossipKey("0123456789abcdef"); err != nil || string(raw) != "0123456789abcdef" {
		t.Errorf("a raw 16-character key: %q %v", raw, err)
	}
}

// A secret file of /dev/zero was read without bound, and a FIFO hung validate (opening
// it waits for a writer).
func TestSecretFilesAreRegularAndSmall(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("k"), MaxSecretFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("s.yaml", []byte(`
secrets:
  zero: {file: /dev/zero}
  fifo: {file: `+fifo+`}
  big: {file: `+big+`}
regions: {eu1: {vars: {api: "http://127.0.0.1:1"}}}
products: [{name: web, journeys: [{name: home, steps: [{http: {url: "{{.region.api}}/"}}]}]}]
`))
		done <- err
	}()
	select {
	case err := <-done:
		for _, want := range []string{
			"s.yaml:3:3: secret zero: read secret file /dev/zero: not a regular file (Dc---------)",
			"secret fifo: read secret file " + fifo + ": not a regular file (p---------)",
			"secret big: read secret file " + big + ": larger than 65536 bytes",
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant it to contain %q", err, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading a config with a FIFO secret file did not return within 10 s")
	}
}

// TestNoBrowserFoundSaysSo: with no Chromium on PATH and no browser.path, validate names
// the first browser step and says what to install; a config without browser steps does
// not care.
func TestNoBrowserFoundSaysSo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	src := `regions: {eu1: {vars: {web: "http://127.0.0.1:1"}}}
products:
  - name: web
    journeys:
      - {name: home, steps: [{http: {url: "{{.region.web}}/"}}]}
      - name: login
        steps:
          - browser: {actions: [{navigate: "{{.region.web}}/app/login"}]}
`
	_, err := Parse("b.yaml", []byte(src))
	want := "b.yaml:8:22: no Chromium found for the browser steps (looked for chromium, chromium-browser, google-chrome-stable, google-chrome, chrome, headless-shell on PATH); install it (Debian: apt-get install chromium, as .ci/install-chromium does) or set browser.path"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	httpOnly := src[:strings.Index(src, "      - name: login")]
	if _, err := Parse("h.yaml", []byte(httpOnly)); err != nil {
		t.Errorf("a config without browser steps needs no browser: %v", err)
	}
}

// TestBrowserStepCompiles: actions in order, defaults, the shorthand selector, secrets
// marked, and one settings value shared by every browser step.
func TestBrowserStepCompiles(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PICKET_TEST_PW", "a-long-password")
	src := `secrets: {pw: {env: PICKET_TEST_PW}}
browser: {path: ` + exe + `, pool: 3}
regions: {eu1: {vars: {web: "http://127.0.0.1:1"}}, us1: {vars: {web: "http://127.0.0.1:2"}}}
products:
  - name: web
    journeys:
      - name: login
        steps:
          - name: ui
            browser:
              viewport: {width: 1024, height: 768}
              actions:
                - navigate: "{{.region.web}}/app/login"
                - type: {selector: "#password", text: "{{.secret.pw}}"}
                - click: {selector: "#login", timeout: 9s}
                - wait_visible: "#welcome"
                - expect: {selector: "#welcome", text: Welcome}
            expect: {max_lcp: 2s, no_console_errors: true}
            extract: {token: {selector: "#token"}}
          - http: {url: "{{.region.web}}/api", headers: {Authorization: "Bearer {{.vars.token}}"}}
`
	cfg, err := Parse("b.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Targets[0].Steps[0]
	b := st.Browser
	if st.Kind() != "browser" || b.Width != 1024 || b.ActionTimeout != DefaultActionTimeout || b.Settings != cfg.Browser ||
		cfg.Browser.Path != exe || cfg.Browser.Pool != 3 || cfg.Targets[1].Steps[0].Browser.Settings != cfg.Browser {
		t.Fatalf("step %+v, settings %+v", b, cfg.Browser)
	}
	var got []string
	for _, a := range b.Actions {
		got = append(got, fmt.Sprintf("%s/%v/%s", a.Describe(), a.Secret, a.Timeout))
	}
	want := "navigate/false/0s type `#password`/true/0s click `#login`/false/9s wait_visible `#welcome`/false/0s expect `#welcome`/false/0s"
	if strings.Join(got, " ") != want {
		t.Errorf("actions %q\nwant %q", strings.Join(got, " "), want)
	}
	if len(st.Extract) != 1 || st.Extract[0].Selector != "#token" || !st.Checks.HasBrowserChecks() {
		t.Errorf("extract %+v, checks %+v", st.Extract, st.Checks)
	}
}

// TestConfirmDefaultsAndSwitch: confirmation runs are on by default at 50 a second;
// confirm: can turn them off or set the rate.
func TestConfirmDefaultsAndSwitch(t *testing.T) {
	base := "regions: {eu1: {vars: {api: \"http://127.0.0.1:1\"}}}\nproducts: [{name: web, journeys: [{name: home, steps: [{http: {url: \"{{.region.api}}/\"}}]}]}]\n"
	for _, c := range []struct {
		extra string
		want  Confirm
	}{
		{"", Confirm{Enabled: true, MaxPerSecond: DefaultConfirmPerSecond}},
		{"confirm: {enabled: false}\n", Confirm{Enabled: false, MaxPerSecond: DefaultConfirmPerSecond}},
		{"confirm: {max_per_second: 2.5}\n", Confirm{Enabled: true, MaxPerSecond: 2.5}},
	} {
		cfg, err := Parse("c.yaml", []byte(base+c.extra))
		if err != nil {
			t.Fatalf("%q: %v", c.extra, err)
		}
		if cfg.Confirm != c.want {
			t.Errorf("%q: confirm %+v, want %+v", c.extra, cfg.Confirm, c.want)
		}
	}
}

func TestKeepAliveDefaultsOffAndIsSetInDefaultsOrPerStep(t *testing.T) {
	for _, c := range []struct {
		defaults, step string
		want           bool
	}{
		{"", "", false},
		{"defaults: {keep_alive: true}\n", "", true},
		{"defaults: {keep_alive: true}\n", ", keep_alive: false", false},
		{"", ", keep_alive: true", true},
	} {
		cfg, err := Parse("k.yaml", []byte(c.defaults+
			"regions: {eu1: {vars: {api: \"http://127.0.0.1:1\"}}}\n"+
			"products: [{name: web, journeys: [{name: home, steps: [{http: {url: \"{{.region.api}}/\""+c.step+"}}]}]}]\n"))
		if err != nil {
			t.Fatalf("%q %q: %v", c.defaults, c.step, err)
		}
		if got := cfg.Targets[0].Steps[0].HTTP.KeepAlive; got != c.want {
			t.Errorf("%q %q: keep_alive %v, want %v", c.defaults, c.step, got, c.want)
		}
	}
}
