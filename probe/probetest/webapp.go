package probetest

import (
	"crypto/rand"
	"encoding/hex"
	"html"
	"net/http"
	"strings"
	"sync"
)

// The web app under /app: what a customer's browser loads. A login form (POST sets a
// session cookie), a dashboard shell whose script fetches the session from the API and
// renders it, a stylesheet, and the API (/app/api/session, by cookie or bearer token).
//
// Its faults are the ones a browser sees and an HTTP check does not: every page still
// answers 200 with its usual HTML.
const (
	webSessionCookie = "sid"
	maxWebSessions   = 10_000
)

// webApp holds one region's pages (rendered once) and its sessions.
type webApp struct {
	login, loginFailed, shell, blank []byte
	script, brokenScript             []byte
	style                            []byte
	password                         string // "" accepts any non-empty password

	mu       sync.Mutex
	sessions map[string]string // token -> user
}

func newWebApp(region, password string) *webApp {
	title := "Platform " + html.EscapeString(region)
	loginPage := func(errLine string) []byte {
		return []byte("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + title + " - Log in</title>\n" +
			"<link rel=\"stylesheet\" href=\"/app/app.css\"></head>\n<body><h1>Log in to " + title + "</h1>\n" + errLine +
			"<form method=\"post\" action=\"/app/login\">\n" +
			"<label>User <input id=\"user\" name=\"user\" autocomplete=\"username\"></label>\n" +
			"<label>Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\n" +
			"<button id=\"login\" type=\"submit\">Log in</button>\n</form></body></html>\n")
	}
	head := "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + title + " - Dashboard</title>\n" +
		"<link rel=\"stylesheet\" href=\"/app/app.css\">\n<script src=\"/app/app.js\" defer></script></head>\n"
	return &webApp{
		login:        loginPage(""),
		loginFailed:  loginPage("<p id=\"error\">Wrong user or password.</p>\n"),
		shell:        []byte(head + "<body><header>" + title + "</header>\n<main id=\"app\"><p id=\"loading\">Loading…</p></main></body></html>\n"),
		blank:        []byte(head + "<body><div id=\"app\"></div></body></html>\n"),
		script:       []byte(strings.Replace(webScript, "/*FAULT*/", "", 1)),
		brokenScript: []byte(strings.Replace(webScript, "/*FAULT*/", webScriptFault, 1)),
		style:        []byte("body{font-family:sans-serif;margin:2em;color:#222}h1{font-size:2em}#token{font-family:monospace}\n"),
		password:     password,
		sessions:     map[string]string{},
	}
}

// webScript renders the dashboard from the session API; a failure shows #error and
// logs it, as a real app would.
const webScript = `(function () {
  "use strict";
  var app = document.getElementById("app");
  function add(tag, id, text) {
    var el = document.createElement(tag);
    el.id = id;
    el.textContent = text;
    app.appendChild(el);
  }
  fetch("/app/api/session", { credentials: "same-origin" }).then(function (r) {
    if (!r.ok) { throw new Error("HTTP " + r.status); }
    return r.json();
  }).then(function (s) {
    app.textContent = "";
    add("h1", "welcome", "Welcome, " + s.user);
    add("p", "region", "Region " + s.region);
    add("p", "status", "All systems operational");
    add("code", "token", s.token);
  }).catch(function (e) {
    app.textContent = "";
    add("p", "error", "Could not load your session: " + e.message);
    console.error("could not load the session: " + e.message);
  });
  /*FAULT*/
})();
`

// webScriptFault is the js_error fault: a widget that throws, uncaught, while the rest
// of the page works.
const webScriptFault = `setTimeout(function () { var widget; widget.render(); }, 0);`

func (rs *regionServer) webRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /app/login", rs.handleAppLogin)
	mux.HandleFunc("POST /app/login", rs.handleAppSignIn)
	mux.HandleFunc("GET /app", rs.handleAppShell)
	mux.HandleFunc("GET /app/app.js", rs.handleAppScript)
	mux.HandleFunc("GET /app/app.css", rs.handleAppStyle)
	mux.HandleFunc("GET /app/api/session", rs.handleAppSession)
}

func writeHTML(w http.ResponseWriter, status int, page []byte) {
	writeAsset(w, status, "text/html; charset=utf-8", page)
}

// writeAsset answers body as contentType, never cached: a fault set or cleared shows
// on the next load.
func writeAsset(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (rs *regionServer) handleAppLogin(w http.ResponseWriter, r *http.Request) {
	writeHTML(w, http.StatusOK, rs.web.login)
}

// handleAppSignIn checks the form and starts a session: a cookie for the browser and
// the same token for API calls (the dashboard shows it).
func (rs *regionServer) handleAppSignIn(w http.ResponseWriter, r *http.Request) {
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	if user == "" || password == "" || (rs.web.password != "" && password != rs.web.password) {
		writeHTML(w, http.StatusUnauthorized, rs.web.loginFailed)
		return
	}
	token := rs.web.start(user)
	http.SetCookie(w, &http.Cookie{Name: webSessionCookie, Value: token, Path: "/app", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/app", http.StatusSeeOther)
}

// handleAppShell serves the dashboard shell; without a session, the login page. The
// blank_page fault serves an app with nothing in it, blocked_api a Content-Security-
// Policy that refuses the API call: both still 200.
func (rs *regionServer) handleAppShell(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := rs.web.session(r); !ok {
		http.Redirect(w, r, "/app/login", http.StatusSeeOther)
		return
	}
	connect := "'self'"
	page := rs.web.shell
	switch rs.productFault("web") {
	case FaultBlankPage:
		page = rs.web.blank
	case FaultBlockedAPI:
		connect = "'none'"
	}
	w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src "+connect)
	writeHTML(w, http.StatusOK, page)
}

func (rs *regionServer) handleAppScript(w http.ResponseWriter, r *http.Request) {
	body := rs.web.script
	switch rs.productFault("web") {
	case FaultJSError:
		body = rs.web.brokenScript
	case FaultBlankPage:
		body = nil // the app's bundle came out empty
	}
	writeAsset(w, http.StatusOK, "text/javascript; charset=utf-8", body)
}

// handleAppStyle serves the stylesheet; the slow_asset fault holds it for the fault's
// delay (default 3s). It blocks rendering, so the page paints late.
func (rs *regionServer) handleAppStyle(w http.ResponseWriter, r *http.Request) {
	if f, _ := rs.p.faultTable().resolve(rs.name, "web"); f.Kind == FaultSlowAsset {
		delay := f.Delay
		if delay == 0 {
			delay = defaultSlowDelay
		}
		if !pause(r.Context(), delay) {
			return
		}
	}
	writeAsset(w, http.StatusOK, "text/css; charset=utf-8", rs.web.style)
}

// handleAppSession is the app's API: who is signed in, by cookie or bearer token.
func (rs *regionServer) handleAppSession(w http.ResponseWriter, r *http.Request) {
	token, user, ok := rs.web.session(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, errorBody{"not signed in"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": user, "region": rs.name, "token": token})
}

// start opens a session; when the table is full it starts over (a test platform, not
// a user database).
func (a *webApp) start(user string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= maxWebSessions {
		clear(a.sessions)
	}
	a.sessions[token] = user
	return token
}

// session finds the request's session token (the cookie, else "Authorization:
// Bearer") and its user.
func (a *webApp) session(r *http.Request) (token, user string, ok bool) {
	if c, err := r.Cookie(webSessionCookie); err == nil {
		token = c.Value
	} else if t, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		token = t
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	user, ok = a.sessions[token]
	return token, user, ok && token != ""
}
