package probetest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// signIn posts the login form without following the redirect and returns the token.
func signIn(t *testing.T, base, user, password string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(c.CloseIdleConnections)
	resp, err := c.PostForm(base+"/app/login", url.Values{"user": {user}, "password": {password}})
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == webSessionCookie {
			return resp, ck.Value
		}
	}
	return resp, ""
}

func TestWebAppSignIn(t *testing.T) {
	p := startPlatform(t, Options{WebPassword: "s3cret-web"})
	base := p.URL("eu1")
	if resp, token := signIn(t, base, "probe", "wrong"); resp.StatusCode != http.StatusUnauthorized || token != "" {
		t.Errorf("wrong password: status %d, token %q; want 401 and no session", resp.StatusCode, token)
	}
	resp, token := signIn(t, base, "probe", "s3cret-web")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app" || token == "" {
		t.Fatalf("sign in: status %d, Location %q, token %q; want 303 to /app with a session", resp.StatusCode, resp.Header.Get("Location"), token)
	}
	c := newClient(t, 5*time.Second)
	a := mustCall(t, c, "GET", base+"/app/api/session", "", "Authorization", "Bearer "+token)
	if got := decode(t, a.body); a.status != 200 || got["user"] != "probe" || got["region"] != "eu1" || got["token"] != token {
		t.Errorf("session by bearer token: %d %s", a.status, a.body)
	}
	if a := mustCall(t, c, "GET", base+"/app/api/session", ""); a.status != http.StatusUnauthorized {
		t.Errorf("session without a token: %d, want 401", a.status)
	}
	if a := mustCall(t, c, "GET", base+"/app/app.js", ""); a.status != 200 || !strings.Contains(a.body, "/app/api/session") {
		t.Errorf("app.js: %d %.80s", a.status, a.body)
	}
	if p.Requests("eu1", "web") < 4 {
		t.Errorf("web requests counted: %d, want the app's", p.Requests("eu1", "web"))
	}
}

// TestBrowserFaultsLookHealthyToHTTP: under each browser fault every page of the app
// still answers 200 with HTML, and the old web pages are untouched; only what a
// browser does with them differs (tested with Chromium in probe/browser_test.go).
func TestBrowserFaultsLookHealthyToHTTP(t *testing.T) {
	p := startPlatform(t, Options{})
	base := p.URL("eu1")
	_, token := signIn(t, base, "probe", "any")
	c := newClient(t, 5*time.Second)
	cookie := webSessionCookie + "=" + token
	cases := []struct {
		fault Fault
		check func(shell, script answer, cssTook time.Duration) string
	}{
		{Fault{Kind: FaultJSError}, func(_, script answer, _ time.Duration) string {
			return unless(strings.Contains(script.body, "widget.render()"), "the script has no throwing widget")
		}},
		{Fault{Kind: FaultBlankPage}, func(shell, script answer, _ time.Duration) string {
			return unless(!strings.Contains(shell.body, "Loading") && script.body == "", "the app is not empty")
		}},
		{Fault{Kind: FaultBlockedAPI}, func(shell, _ answer, _ time.Duration) string {
			return unless(shell.header.Get("Content-Security-Policy") == "default-src 'self'; connect-src 'none'", "no CSP blocking the API")
		}},
		{Fault{Kind: FaultSlowAsset, Delay: 300 * time.Millisecond}, func(_, _ answer, took time.Duration) string {
			return unless(took >= 300*time.Millisecond, "the stylesheet came at once")
		}},
	}
	for _, tc := range cases {
		t.Run(string(tc.fault.Kind), func(t *testing.T) {
			p.SetFault("eu1", "web", tc.fault)
			defer p.ClearFaults()
			shell := mustCall(t, c, "GET", base+"/app", "", "Cookie", cookie)
			script := mustCall(t, c, "GET", base+"/app/app.js", "")
			start := time.Now()
			css := mustCall(t, c, "GET", base+"/app/app.css", "")
			took := time.Since(start)
			session := mustCall(t, c, "GET", base+"/app/api/session", "", "Authorization", "Bearer "+token)
			for name, a := range map[string]answer{"shell": shell, "script": script, "css": css, "session": session} {
				if a.status != 200 {
					t.Errorf("%s: status %d, want 200 (an HTTP check must see nothing wrong)", name, a.status)
				}
			}
			if err := journey(c, base, "eu1", "web"); err != nil {
				t.Errorf("the HTTP web journey fails: %v", err)
			}
			if msg := tc.check(shell, script, took); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func unless(ok bool, msg string) string {
	if ok {
		return ""
	}
	return msg
}

func TestBrowserFaultKindsThroughControlAPI(t *testing.T) {
	p := startPlatform(t, Options{})
	c := newClient(t, 5*time.Second)
	for _, kind := range []string{"js_error", "blank_page", "slow_asset", "blocked_api"} {
		a := mustCall(t, c, "POST", p.ControlURL()+"/faults", `{"region":"eu1","product":"web","kind":"`+kind+`","delay":"1s"}`)
		if a.status != 200 || !strings.Contains(a.body, kind) {
			t.Errorf("POST /faults %s: %d %s", kind, a.status, a.body)
		}
	}
	if help := mustCall(t, c, "GET", p.ControlURL()+"/", ""); !strings.Contains(help.body, "blank_page") {
		t.Errorf("help lacks the browser faults:\n%s", help.body)
	}
}
