package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/probe/probetest"
)

// TestCheckScopeNamesOnlyTheWidestScope: eu1 fully down plus one stray failing journey
// in ap1 and one in us1 is REGION eu1 with eu1's products, the strays told apart.
func TestCheckScopeNamesOnlyTheWidestScope(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	e.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	e.plat.SetFault("ap1", "logs", probetest.Fault{Kind: probetest.FaultError})
	e.plat.SetFault("us1", "web", probetest.Fault{Kind: probetest.FaultError})
	r := picket(t, "check", "-c", cfg, "-o", "json")
	var out struct {
		Scope struct {
			Kind              string
			Regions, Products []string
			OtherTargets      int `json:"other_targets"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("exit %d, not JSON: %v\n%s", r.code, err, r.stdout)
	}
	s := out.Scope
	if s.Kind != "region" || strings.Join(s.Regions, ",") != "eu1" ||
		strings.Join(s.Products, ",") != "logs,metrics,web" || s.OtherTargets != 2 {
		t.Errorf("scope %+v, want region [eu1] [logs metrics web] and 2 other targets", s)
	}
	r = picket(t, "check", "-c", cfg)
	paras := strings.Split(strings.TrimSpace(r.stdout), "\n\n")
	footer := strings.Join(strings.Fields(paras[len(paras)-1]), " ")
	if want := "7 up, 0 degraded, 5 down; scope REGION eu1 (logs, metrics, web); also 2 other failing targets"; footer != want {
		t.Errorf("table footer %q, want %q", footer, want)
	}
}

// testRoutingKey is the pd_key file newEnv writes: it must never be printed.
const testRoutingKey = "cmdtestroutingkey000000000000001"

type pageLine struct {
	Action, Notifier, Outcome, Reason string
	DedupKey                          string `json:"dedup_key"`
	Attempts                          int
}

// TestCheckPageSaysWhatItSent: after the flush, `check --page` tells per notification
// what became of it (accepted, refused with the reason, still queued), on stderr for the
// table and as "pages" in the JSON, and never prints a routing key.
func TestCheckPageSaysWhatItSent(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("c.yaml", "timeout: 3s", "")
	e.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	const trigger = "picket: page: trigger picket/region/eu1 via pd: "
	noSecret := func(r result) {
		t.Helper()
		for _, s := range []string{testRoutingKey, testAPIKey} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("a secret in the output:\n%s\n%s", r.stdout, r.stderr)
			}
		}
	}

	r := picket(t, "check", "-c", cfg, "--page")
	if r.code != 1 || !strings.Contains(r.stderr, trigger+"accepted\n") {
		t.Errorf("accepted: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	noSecret(r)

	r = picket(t, "check", "-c", cfg, "--page", "-o", "json")
	var out struct{ Pages []pageLine }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if p := find(out.Pages, "trigger", "picket/region/eu1"); p == nil || p.Notifier != "pd" || p.Outcome != "accepted" || p.Attempts != 1 {
		t.Errorf("pages: want the eu1 trigger accepted by pd, got %+v", out.Pages)
	}
	if strings.Contains(r.stderr, "picket: page: ") {
		t.Errorf("with -o json the pages go in the JSON, not on stderr:\n%s", r.stderr)
	}
	noSecret(r)

	e.pd.SetFault(pdtest.Fault{Status: 400})
	r = picket(t, "check", "-c", cfg, "--page")
	if !strings.Contains(r.stderr, trigger+"refused: ") || !strings.Contains(r.stderr, "400") {
		t.Errorf("refused: stderr:\n%s", r.stderr)
	}
	noSecret(r)

	e.pd.SetFault(pdtest.Fault{Status: 503}) // retryable: still queued when the run ends
	r = picketWithin(t, 4*time.Second, "check", "-c", cfg, "--page")
	if r.code != 1 || !strings.Contains(r.stderr, trigger+"still queued (") || !strings.Contains(r.stderr, "503") {
		t.Errorf("still queued: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	noSecret(r)
}

// TestCheckPageOutputNeverShowsARoutingKey: a receiver (a proxy, say) that quotes the
// request back in its refusal still does not put the routing key on the terminal.
func TestCheckPageOutputNeverShowsARoutingKey(t *testing.T) {
	e := newEnv(t)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		http.Error(w, "cannot parse "+string(body)+" for "+r.URL.String(), http.StatusBadRequest)
	}))
	defer echo.Close()
	path := e.config("c.yaml", "timeout: 3s", "")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(raw), e.pd.BaseURL(), echo.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.plat.SetFault("eu1", "", probetest.Fault{Kind: probetest.FaultDown})
	for _, format := range []string{"table", "json"} {
		r := picket(t, "check", "-c", path, "--page", "-o", format)
		if !strings.Contains(r.stdout+r.stderr, "cannot parse") {
			t.Errorf("%s: the refusal is not reported:\n%s\n%s", format, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, testRoutingKey) {
			t.Errorf("%s: the routing key is in the output:\n%s\n%s", format, r.stdout, r.stderr)
		}
	}
}

func find(pages []pageLine, action, key string) *pageLine {
	for i := range pages {
		if pages[i].Action == action && pages[i].DedupKey == key {
			return &pages[i]
		}
	}
	return nil
}

// picketWithin is picket with a deadline, for runs meant to end before their pages do.
func picketWithin(t *testing.T, limit time.Duration, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	code := run(ctx, args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}
