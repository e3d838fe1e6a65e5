package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/picket-dev/picket/config"
)

func TestVersionFlagSaysWhatVersionSays(t *testing.T) {
	flag, cmd := picket(t, "--version"), picket(t, "version")
	if flag.code != 0 || flag.stdout != cmd.stdout || !strings.HasPrefix(flag.stdout, "picket ") {
		t.Errorf("--version: exit %d %q; version: %q", flag.code, flag.stdout, cmd.stdout)
	}
}

// Without --config, PICKET_CONFIG names the config, then /etc/picket/picket.yaml.
func TestConfigFromTheEnvironmentThenTheDefaultPath(t *testing.T) {
	t.Setenv("PICKET_CONFIG", "../../examples/platform.yaml")
	if r := picket(t, "validate"); r.code != 0 || !strings.HasPrefix(r.stdout, "../../examples/platform.yaml: ok") {
		t.Errorf("validate with PICKET_CONFIG: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	// --config wins over the environment.
	if r := picket(t, "validate", "-c", "../../config/testdata/valid-minimal.yaml"); r.code != 0 || !strings.Contains(r.stdout, "valid-minimal.yaml: ok") {
		t.Errorf("validate -c with PICKET_CONFIG set: exit %d %q", r.code, r.stdout)
	}
	t.Setenv("PICKET_CONFIG", "")
	if _, err := os.Stat(defaultConfigPath); err == nil {
		t.Skipf("%s exists on this machine", defaultConfigPath)
	}
	r := picket(t, "check")
	if r.code != 2 || !strings.Contains(r.stderr, "no config: give --config FILE or set PICKET_CONFIG (/etc/picket/picket.yaml does not exist)") {
		t.Errorf("no config anywhere: exit %d, stderr %q", r.code, r.stderr)
	}
}

// completions lists what `picket __complete ARGS` offers (cobra's hidden command that
// the completion scripts call), without the directive line.
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	r := picket(t, append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %v: exit %d %s", args, r.code, r.stderr)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(l, ":") {
			out = append(out, l)
		}
	}
	return out
}

func TestShellCompletionOffersTheConfigsNames(t *testing.T) {
	const cfg = "../../examples/platform.yaml"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "-c", cfg, "--region", ""}, "ap1 eu1 us1 us3"},
		{[]string{"check", "-c", cfg, "--region", "u"}, "us1 us3"},
		{[]string{"check", "-c", cfg, "--region", "eu1,u"}, "eu1,us1 eu1,us3"},
		{[]string{"check", "-c", cfg, "--product", ""}, "events logs metrics web"},
		{[]string{"check", "-c", cfg, "--journey", "lo"}, "login-page"},
		{[]string{"check", "-c", cfg, "-o", ""}, "table json"},
		{[]string{"page", "test", "-c", cfg, "--notifier", ""}, "chat highsev lowsev"},
	} {
		if got := strings.Join(completions(t, tc.args...), " "); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	t.Setenv("PICKET_CONFIG", cfg)
	if got := strings.Join(completions(t, "check", "--region", "a"), " "); got != "ap1" {
		t.Errorf("with PICKET_CONFIG: %q, want ap1", got)
	}
	if r := picket(t, "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "__start_picket") {
		t.Errorf("completion bash: exit %d", r.code)
	}
}

func TestValidateJSON(t *testing.T) {
	var v validation
	r := picket(t, "validate", "-o", "json", "-c", "../../config/testdata/invalid-three-mistakes.yaml")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 2 {
		t.Fatalf("invalid: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	if v.Valid || len(v.Problems) != 3 || v.Problems[1].Line != 6 || v.Problems[1].Column != 20 ||
		!strings.Contains(v.Problems[1].Message, `region "eu9" is not defined`) {
		t.Errorf("invalid: %+v", v)
	}
	r = picket(t, "validate", "-o", "json", "-c", "../../config/testdata/warn-degraded-unrouted.yaml")
	v = validation{}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || !v.Valid || len(v.Warnings) == 0 || v.Targets == 0 {
		t.Errorf("warned: exit %d, %v: %+v", r.code, err, v)
	}
	if r := picket(t, "validate", "-o", "yaml", "-c", "../../examples/platform.yaml"); r.code != 2 {
		t.Errorf("-o yaml: exit %d", r.code)
	}
}

func TestSchemaCommandPrintsTheSchema(t *testing.T) {
	r := picket(t, "schema")
	if r.code != 0 || !bytes.Equal([]byte(r.stdout), config.JSONSchema) || !json.Valid([]byte(r.stdout)) {
		t.Errorf("schema: exit %d, %d bytes", r.code, len(r.stdout))
	}
}
