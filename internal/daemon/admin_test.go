package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

// adminToken is the fixture's api.token; every answer and log line is checked for it.
const adminToken = "adm1n-t0ken-f0r-tests-0123456789"

// adminDaemon is a running daemon with a captured debug log, and a client that keeps
// every answer it read so a test can check that none carries the token.
type adminDaemon struct {
	t      *testing.T
	base   string // http://127.0.0.1:PORT of listen
	port   string
	logs   *testkit.Buffer
	mu     sync.Mutex
	bodies []string
}

// startAdmin runs the daemon on the fixture's config plus extra; stopping it (and so
// goleak's check of its goroutines, listeners included) is a cleanup.
func startAdmin(t *testing.T, extra string) *adminDaemon {
	t.Helper()
	f := newFixture(t, extra)
	a := &adminDaemon{t: t, logs: &testkit.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		errc <- Run(ctx, Options{ConfigPath: f.path, Logger: log, OnListen: func(addr string) { f.addr <- addr }})
	}()
	select {
	case addr := <-f.addr:
		a.base = "http://" + addr
		_, a.port, _ = net.SplitHostPort(addr)
	case err := <-errc:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("daemon did not listen within 10s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("stop: %v", err)
		}
		a.checkNoToken()
	})
	return a
}

// req is one request of a table: headers as pairs, host "" for the real one.
type req struct {
	method, path, host, body string
	header                   []string
}

func bearerHeader(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// jsonWrite is what the picket CLI and a careful curl send.
func jsonWrite(tok string) []string {
	return append(bearerHeader(tok), "Content-Type", "application/json")
}

// do sends r to base (the admin or the public listener) and returns status and body.
func (a *adminDaemon) do(base string, r req) (int, string) {
	a.t.Helper()
	hr, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(r.header); i += 2 {
		hr.Header.Set(r.header[i], r.header[i+1])
	}
	if r.host != "" {
		hr.Host = r.host
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		a.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.mu.Lock()
	a.bodies = append(a.bodies, resp.Header.Get("WWW-Authenticate")+"\n"+string(b))
	a.mu.Unlock()
	return resp.StatusCode, string(b)
}

// checkNoToken: the token is in no answer and no log line, refused requests included.
func (a *adminDaemon) checkNoToken() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range a.bodies {
		if strings.Contains(b, adminToken) {
			a.t.Errorf("an answer carries the API token: %s", b)
		}
	}
	if strings.Contains(a.logs.String(), adminToken) {
		a.t.Errorf("the log carries the API token:\n%s", a.logs.String())
	}
}

type adminCase struct {
	name       string
	r          req
	wantStatus int
	wantBody   string // a part of the answer
}

func (a *adminDaemon) run(base string, cases []adminCase) {
	a.t.Helper()
	for _, tc := range cases {
		status, body := a.do(base, tc.r)
		if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
			a.t.Errorf("%s: %s %s: got %d %q, want %d with %q", tc.name, tc.r.method, tc.r.path, status, short(body), tc.wantStatus, tc.wantBody)
		}
	}
}

// TestReloadNeedsTheToken: POST /-/reload is a write like any other.
func TestReloadNeedsTheToken(t *testing.T) {
	a := startAdmin(t, "api: {token: "+adminToken+"}\n")
	a.run(a.base, []adminCase{
		{"no token", req{method: "POST", path: "/-/reload", header: []string{"Content-Type", "application/json"}}, 401, "Authorization: Bearer"},
		{"wrong token", req{method: "POST", path: "/-/reload", header: jsonWrite("nope")}, 401, "missing or wrong"},
		{"token as a prefix", req{method: "POST", path: "/-/reload", header: jsonWrite(adminToken + "x")}, 401, ""},
		{"basic auth", req{method: "POST", path: "/-/reload", header: []string{"Authorization", "Basic " + adminToken, "Content-Type", "application/json"}}, 401, ""},
		{"token", req{method: "POST", path: "/-/reload", header: jsonWrite(adminToken)}, 200, "reloaded"},
	})
}

// TestWritesRefusedWithoutAConfiguredToken: no api.token, no writes over HTTP (SIGHUP
// still reloads), also from loopback.
func TestWritesRefusedWithoutAConfiguredToken(t *testing.T) {
	a := startAdmin(t, "")
	silence := `{"comment": "x", "duration": "1h", "match": {"region": ["eu1"]}}`
	a.run(a.base, []adminCase{
		{"reload", req{method: "POST", path: "/-/reload", header: []string{"Content-Type", "application/json"}}, 403, "set api.token"},
		{"reload with some token", req{method: "POST", path: "/-/reload", header: jsonWrite("guess")}, 403, "set api.token"},
		{"silence", req{method: "POST", path: "/api/v1/silences", body: silence, header: []string{"Content-Type", "application/json"}}, 403, "set api.token"},
		{"reads still work", req{method: "GET", path: "/api/v1/silences"}, 200, "[]"},
	})
}

// TestCrossSiteWritesRefused: what a page on another site can make a browser send —
// a form POST, or a no-cors fetch — is refused before the token is looked at; so is a
// POST that is not JSON, since only simple content types cross sites without a preflight.
func TestCrossSiteWritesRefused(t *testing.T) {
	a := startAdmin(t, "api: {token: "+adminToken+"}\n")
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	silence := `{"comment": "planned", "duration": "1h", "match": {"region": ["eu1"]}}`
	a.run(a.base, []adminCase{
		{"cross-site form", req{method: "POST", path: "/-/reload", body: "a=b",
			header: append(form, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")}, 403, "cross-origin"},
		{"cross-site form with a token", req{method: "POST", path: "/api/v1/silences", body: "a=b",
			header: append(bearerHeader(adminToken), append(form, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")...)}, 403, "cross-origin"},
		{"old browser: Origin only", req{method: "POST", path: "/-/reload",
			header: append(jsonWrite(adminToken), "Origin", "http://evil.example")}, 403, "cross-origin"},
		{"same-site is another origin", req{method: "POST", path: "/-/reload",
			header: append(jsonWrite(adminToken), "Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:1")}, 403, "cross-origin"},
		{"cross-site delete", req{method: "DELETE", path: "/api/v1/silences/x",
			header: append(bearerHeader(adminToken), "Sec-Fetch-Site", "cross-site")}, 403, "cross-origin"},
		{"form with the token", req{method: "POST", path: "/-/reload", body: "a=b", header: append(bearerHeader(adminToken), form...)}, 415, "application/json"},
		{"text/plain with the token", req{method: "POST", path: "/api/v1/silences", body: silence,
			header: append(bearerHeader(adminToken), "Content-Type", "text/plain")}, 415, "application/json"},
		{"no content type", req{method: "POST", path: "/-/reload", header: bearerHeader(adminToken)}, 415, "application/json"},
		{"same origin", req{method: "POST", path: "/api/v1/silences", body: silence,
			header: append(jsonWrite(adminToken), "Sec-Fetch-Site", "same-origin", "Origin", a.base)}, 201, `"comment":"planned"`},
		{"JSON with charset", req{method: "POST", path: "/-/reload", header: append(bearerHeader(adminToken), "Content-Type", "application/json; charset=utf-8")}, 200, "reloaded"},
	})
}

// TestHostMustBeOurs: a DNS-rebinding page reaches the admin listener under the
// attacker's name, so only names an attacker cannot point at us are served: loopback
// names and IP literals (any port: SSH tunnels and proxies change it).
func TestHostMustBeOurs(t *testing.T) {
	a := startAdmin(t, "api: {token: "+adminToken+"}\n")
	a.run(a.base, []adminCase{
		{"rebound name", req{method: "GET", path: "/api/v1/status", host: "evil.example:" + a.port}, 421, "allowed_hosts"},
		{"rebound name, page", req{method: "GET", path: "/", host: "evil.example"}, 421, "allowed_hosts"},
		{"rebound name, metrics", req{method: "GET", path: "/metrics", host: "evil.example:" + a.port}, 421, ""},
		{"rebound name, reload with token", req{method: "POST", path: "/-/reload", host: "evil.example:" + a.port, header: jsonWrite(adminToken)}, 421, ""},
		{"localhost", req{method: "GET", path: "/healthz", host: "localhost:" + a.port}, 200, "ok"},
		{"localhost, trailing dot", req{method: "GET", path: "/healthz", host: "localhost.:" + a.port}, 200, "ok"},
		{"127.0.0.1", req{method: "GET", path: "/healthz", host: "127.0.0.1:" + a.port}, 200, "ok"},
		{"[::1]", req{method: "GET", path: "/healthz", host: "[::1]:" + a.port}, 200, "ok"},
		{"another IP (scrape by address)", req{method: "GET", path: "/healthz", host: "10.1.2.3:" + a.port}, 200, "ok"},
		{"an SSH tunnel's port", req{method: "GET", path: "/healthz", host: "localhost:8080"}, 200, "ok"},
		{"reload by IP", req{method: "POST", path: "/-/reload", host: "127.0.0.1:" + a.port, header: jsonWrite(adminToken)}, 200, "reloaded"},
	})
}

// TestAllowedHosts: a name in allowed_hosts (a DNS name operators use) is served, in
// any case and with any port; one that merely ends like it is not.
func TestAllowedHosts(t *testing.T) {
	a := startAdmin(t, "api: {token: "+adminToken+"}\nallowed_hosts: [picket.internal]\n")
	a.run(a.base, []adminCase{
		{"allowed name", req{method: "GET", path: "/healthz", host: "picket.internal:" + a.port}, 200, "ok"},
		{"allowed name, any case, no port", req{method: "GET", path: "/healthz", host: "Picket.Internal"}, 200, "ok"},
		{"allowed name, reload", req{method: "POST", path: "/-/reload", host: "picket.internal", header: jsonWrite(adminToken)}, 200, "reloaded"},
		{"a name that ends like it", req{method: "GET", path: "/healthz", host: "evilpicket.internal:" + a.port}, 421, "allowed_hosts"},
		{"a subdomain of it", req{method: "GET", path: "/healthz", host: "x.picket.internal"}, 421, "allowed_hosts"},
	})
}

// TestPublicListenerServesOnlyThePage: public.listen serves the customers' page, its
// feed, badge and Statuspage-shaped JSON under any Host; none of the operators' page or
// API (not even read-only), and nothing that writes.
func TestPublicListenerServesOnlyThePage(t *testing.T) {
	pub := freeLoopbackAddr(t)
	a := startAdmin(t, "api: {token: "+adminToken+"}\npublic: {listen: "+pub+", title: Acme status}\n")
	base := "http://" + pub
	a.run(base, []adminCase{
		{"page", req{method: "GET", path: "/", host: "status.example.com"}, 200, "Acme status"},
		{"style", req{method: "GET", path: "/static/public.css"}, 200, "Picket's public status page"},
		{"summary JSON", req{method: "GET", path: "/api/v2/summary.json", host: "status.example.com"}, 200, `"url":"http://status.example.com"`},
		{"feed", req{method: "GET", path: "/history.atom"}, 200, "<feed"},
		{"badge", req{method: "GET", path: "/badge.svg"}, 200, "<svg"},
		{"operators' status JSON", req{method: "GET", path: "/api/v1/status"}, 404, ""},
		{"operators' incidents JSON", req{method: "GET", path: "/api/v1/incidents"}, 404, ""},
		{"operators' script", req{method: "GET", path: "/static/app.js"}, 404, ""},
		{"reload", req{method: "POST", path: "/-/reload", header: jsonWrite(adminToken)}, 404, ""},
		{"update", req{method: "POST", path: "/api/v1/incidents/picket~global/updates", body: `{}`, header: jsonWrite(adminToken)}, 404, ""},
		{"silences list", req{method: "GET", path: "/api/v1/silences"}, 404, ""},
		{"outbox", req{method: "GET", path: "/api/v1/outbox"}, 404, ""},
		{"metrics", req{method: "GET", path: "/metrics"}, 404, ""},
		{"summary POST", req{method: "POST", path: "/api/v2/summary.json", header: jsonWrite(adminToken)}, 404, ""},
	})
	// The admin listener is unchanged beside it.
	a.run(a.base, []adminCase{
		{"admin metrics", req{method: "GET", path: "/metrics"}, 200, "picket_build_info"},
		{"admin reload", req{method: "POST", path: "/-/reload", header: jsonWrite(adminToken)}, 200, "reloaded"},
	})
}

// TestUpdateAPINeedsTheToken: POST /api/v1/incidents/{key}/updates is a write like the
// others (token, JSON, same site); with them, an unknown incident is a 404 and a bad
// status a 400.
func TestUpdateAPINeedsTheToken(t *testing.T) {
	a := startAdmin(t, "api: {token: "+adminToken+"}\n")
	path := "/api/v1/incidents/picket~region~eu1/updates"
	a.run(a.base, []adminCase{
		{"no token", req{method: "POST", path: path, body: `{"status":"identified","text":"x"}`, header: []string{"Content-Type", "application/json"}}, 401, ""},
		{"form post", req{method: "POST", path: path, body: `status=identified`, header: append(bearerHeader(adminToken), "Content-Type", "application/x-www-form-urlencoded")}, 415, ""},
		{"unknown incident", req{method: "POST", path: path, body: `{"status":"identified","text":"x"}`, header: jsonWrite(adminToken)}, 404, "no open or closed incident"},
		{"list of unknown", req{method: "GET", path: path}, 404, ""},
	})
}

// TestPublicListenTakenIsAStartError: a public_listen that cannot be bound stops the
// start, like listen, rather than running without the page someone relies on.
func TestPublicListenTakenIsAStartError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	f := newFixture(t, "public_listen: "+taken.Addr().String()+"\n") // the deprecated name works the same
	err = Run(context.Background(), Options{ConfigPath: f.path})
	if err == nil || !strings.Contains(err.Error(), "public.listen on "+taken.Addr().String()) {
		t.Errorf("Run: %v, want a public.listen error", err)
	}
}

// short keeps a failure message readable when the answer is a whole page.
func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// freeLoopbackAddr is a loopback port free now (the daemon binds it a moment later).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tokenConfig is the fixture's extra config for tests that reload over HTTP.
const tokenConfig = "api: {token: " + adminToken + "}\n"

// postReload is POST /-/reload as an operator sends it: with the token, as JSON.
func postReload(base string) (*http.Response, error) {
	r, err := http.NewRequest(http.MethodPost, base+"/-/reload", nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "Bearer "+adminToken)
	r.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(r)
}
