package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidateWarnsAndStillExitsZero: a config whose only route pages drops every
// degraded incident under alerting.degraded: notify; validate says where and which, as
// a warning on stderr, and the config is still valid.
func TestValidateWarnsAndStillExitsZero(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	r := picket(t, "validate", "-c", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, ": ok: ") {
		t.Fatalf("exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	want := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(cfg) + `:\d+:\d+: warning: degraded incidents of ` +
		`logs in eu1, us1, us3, ap1; metrics in eu1, us1, us3, ap1; web in eu1, us1, us3, ap1 reach no notifier`)
	if !want.MatchString(r.stderr) {
		t.Errorf("stderr:\n%s\nwant a FILE:LINE:COL warning matching %s", r.stderr, want)
	}
}
