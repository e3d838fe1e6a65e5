// Package httpguard keeps browsers from being turned against Picket's admin listener.
// A browser on the operator's machine can reach a loopback address, so "only on
// loopback" protects nothing by itself; two attacks remain, and each has its check:
//
//   - cross-site writes (CSRF): a page on another site makes the browser send a form
//     POST or a no-cors fetch. Refused by Sec-Fetch-Site/Origin, by requiring JSON on
//     POST (a type no browser sends cross-site without a CORS preflight, which Picket
//     never grants) and by the bearer token, which no browser adds by itself.
//   - DNS rebinding: a page's own name is re-pointed at 127.0.0.1, so the browser
//     treats the admin listener as that page's origin and lets it read the answers.
//     Refused by the Host check: the attacker's name is not one of ours.
package httpguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/picket-dev/picket/config"
)

// Policy is what the admin listener accepts. Token and Hosts are read on every request,
// so a reload's new token or names apply at once.
type Policy struct {
	Token func() config.Secret // the api.token; zero: every write is refused
	Hosts func() []string      // names served besides localhost and IP literals, as config.NormalHost
	Log   *slog.Logger         // refusals at debug level; nil: discard
}

// Wrap checks the Host of every request and the origin, token and type of every write.
func (p Policy) Wrap(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		no := p.hostRefusal(r)
		if no == nil && !safeMethod(r.Method) {
			no = p.writeRefusal(cop, r)
		}
		if no != nil {
			// Neither the Authorization header nor the query is logged: either may hold the token.
			log.Debug("admin request refused", "method", r.Method, "path", r.URL.Path, "host", r.Host,
				"remote", r.RemoteAddr, "status", no.status, "why", no.msg)
			no.write(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refusal is an answer that ends a request before it reaches the handler.
type refusal struct {
	status int
	msg    string
	header [2]string // one extra header, if any
}

func (no *refusal) write(w http.ResponseWriter) {
	if no.header[0] != "" {
		w.Header().Set(no.header[0], no.header[1])
	}
	body, _ := json.Marshal(map[string]string{"error": no.msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(no.status)
	_, _ = w.Write(append(body, '\n'))
}

func (p Policy) hostRefusal(r *http.Request) *refusal {
	if HostAllowed(r.Host, p.Hosts()) {
		return nil
	}
	// 421 Misdirected Request: this server does not answer for that name.
	return &refusal{status: http.StatusMisdirectedRequest, msg: fmt.Sprintf(
		"host %q is not a name of this picket: it answers to localhost, IP addresses, the listen host and the names in allowed_hosts "+
			"(a defence against DNS rebinding); to reach it by this name, add the name to allowed_hosts in the config", r.Host)}
}

// writeRefusal checks a write: origin first (another site learns nothing, not even
// whether writes are enabled), then the token, then the content type.
func (p Policy) writeRefusal(cop *http.CrossOriginProtection, r *http.Request) *refusal {
	if err := cop.Check(r); err != nil {
		return &refusal{status: http.StatusForbidden, msg: "cross-origin write refused: the request comes from another site " +
			"(Sec-Fetch-Site or Origin says so); use curl, the picket CLI or a page of this picket"}
	}
	token := p.Token()
	if token.IsZero() {
		return &refusal{status: http.StatusForbidden, msg: "writes are refused: no API token is configured; " +
			`set api.token in the config (api: {token: "{{.secret.api_token}}"}) to allow them; SIGHUP still reloads the config`}
	}
	if !BearerMatches(r.Header.Get("Authorization"), token) {
		return &refusal{status: http.StatusUnauthorized, header: [2]string{"WWW-Authenticate", `Bearer realm="picket"`},
			msg: "expected the header Authorization: Bearer <api token>; it is missing or wrong"}
	}
	if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
		// Only POST can be a "simple" cross-site request; PUT, PATCH and DELETE always
		// need a preflight, so for them the type proves nothing.
		return &refusal{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf(
			"expected Content-Type: application/json on a POST, got %q (forms are refused; with curl add -H 'Content-Type: application/json')",
			r.Header.Get("Content-Type"))}
	}
	return nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// HostAllowed reports whether a Host header names this server. localhost and IP
// literals are always served: a rebinding attack needs a DNS name the attacker
// controls, and these are not. Any port is: SSH tunnels and proxies change it, and the
// name alone is what rebinding forges.
func HostAllowed(host string, names []string) bool {
	name := hostName(host)
	switch {
	case name == "":
		return false
	case name == "localhost":
		return true
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	return slices.Contains(names, name)
}

// hostName is the name part of a Host header, compared as config.NormalHost.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return config.NormalHost(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
}

// BearerMatches compares in constant time; hashing first makes the time independent of
// the lengths too.
func BearerMatches(header string, token config.Secret) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	a := sha256.Sum256([]byte(strings.TrimSpace(got)))
	b := sha256.Sum256([]byte(token.Reveal()))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
