package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/probe/probetest"
)

// TestValidateSaysWhenNoBrowser: a config with browser steps on a host without
// Chromium does not validate, and the line says what to install.
func TestValidateSaysWhenNoBrowser(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := picket(t, "validate", "-c", "../../examples/browser.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "../../examples/browser.yaml:35:15: no Chromium found for the browser steps") ||
		!strings.Contains(r.stderr, "apt-get install chromium") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

const cmdWebPassword = "cmd-web-password-MARKER-77a1"

// TestCheckBrowserJourney: `check` runs a browser login then an API call; under a
// blank page it exits 1, says which action failed and where the screenshot is.
func TestCheckBrowserJourney(t *testing.T) {
	if _, err := config.FindBrowser(""); err != nil && os.Getenv("PICKET_REQUIRE_BROWSER") != "1" {
		t.Skipf("%v (PICKET_REQUIRE_BROWSER=1 makes this a failure)", err)
	}
	e := newEnvWith(t, probetest.Options{Regions: []string{"eu1"}, WebPassword: cmdWebPassword})
	plat, dir := e.plat, e.dir
	if err := os.WriteFile(filepath.Join(dir, "web_password"), []byte(cmdWebPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../examples/browser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.NewReplacer("secrets/web_password", "web_password", "./picket-state/browser", filepath.Join(dir, "state"),
		"http://127.0.0.1:18081", plat.URL("eu1")).Replace(string(src))
	yaml = yaml[:strings.Index(yaml, "  us1:")] + yaml[strings.Index(yaml, "\nproducts:"):]
	cfg := filepath.Join(dir, "browser.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := picket(t, "check", "-c", cfg, "-o", "json")
	if r.code != 0 {
		t.Fatalf("healthy web app: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	plat.SetFault("eu1", "web", probetest.Fault{Kind: probetest.FaultBlankPage})
	start := time.Now()
	r = picket(t, "check", "-c", cfg, "-o", "json")
	var out struct {
		Results []struct {
			Status, Error string
			Steps         []struct {
				Kind string
				Info map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 1 || len(out.Results) != 1 {
		t.Fatalf("blank page: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	res := out.Results[0]
	want := "step login: action 5 (wait_visible `#welcome, #error`): no element matches within 5s"
	shot := res.Steps[0].Info["screenshot"]
	if res.Status != "down" || res.Error != want || res.Steps[0].Kind != "browser" || !strings.HasPrefix(shot, filepath.Join(dir, "state", "screenshots")) {
		t.Fatalf("result %+v\nwant %q and a screenshot in the state folder", res, want)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	if strings.Contains(r.stdout+r.stderr, cmdWebPassword) {
		t.Errorf("the password is in the output")
	}
	t.Logf("blank page found in %s: %s", time.Since(start), fmt.Sprint(res.Error))
}
