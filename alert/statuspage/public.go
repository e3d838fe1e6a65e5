package statuspage

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
	"github.com/picket-dev/picket/internal/store"
)

// PublicSource is what the public page reads: the snapshot, closed incidents, history.
type PublicSource interface {
	Snapshot() alert.Status
	Closed(limit int) ([]alert.Incident, error)
	History(target string, from, to time.Time, step time.Duration) ([]store.Bucket, error)
}

// PublicOptions configure NewPublic.
type PublicOptions struct {
	Public *config.Public // required
	Names  alert.Names    // the public names of products and regions
	// Redactor scrubs every answer: nothing secret should reach the page, and if a
	// human update quoted one, it still would not.
	Redactor *scrub.Redactor
	Logger   *slog.Logger
	Now      func() time.Time // the injected clock's
	// CacheFor is how long one built page serves every request (default 5s): during an
	// outage customers reload, and each build reads the whole snapshot. Uptime is read
	// from the history at most once a minute.
	CacheFor time.Duration
}

// Public page bounds.
const (
	defaultPublicCache = 5 * time.Second
	publicUptimeEvery  = time.Minute
	publicHistoryLimit = 50 // resolved incidents read for the history and the feed
	publicRefresh      = 60 // seconds: the page reloads itself, without a script
	maxRendered        = 64 // answers kept per model
)

// PublicHandler serves the public status page: HTML that needs no script, an Atom
// feed, an SVG badge and Statuspage-shaped JSON. Read only; GET and HEAD.
type PublicHandler struct {
	src      PublicSource
	public   *config.Public
	names    alert.Names
	scrub    *scrub.Redactor
	log      *slog.Logger
	now      func() time.Time
	cacheFor time.Duration
	page     *template.Template
	css      staticFile
	csp      string
	mux      *http.ServeMux

	mu       sync.Mutex
	model    publicModel
	modelAt  time.Time
	rendered map[string][]byte // answers made from model, by kind and base URL
	gen      int               // model's generation: a rendering of an older one is not kept
	uptime   map[alert.Cell]cellUptime
	uptimeAt time.Time
}

var _ http.Handler = (*PublicHandler)(nil)

// NewPublic builds the public handler. It panics only if the embedded template is
// broken, which the package's tests rule out.
func NewPublic(src PublicSource, o PublicOptions) *PublicHandler {
	h := &PublicHandler{src: src, public: o.Public, names: o.Names, scrub: o.Redactor, log: o.Logger, now: o.Now, cacheFor: o.CacheFor}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.cacheFor <= 0 {
		h.cacheFor = defaultPublicCache
	}
	h.page = template.Must(template.New("public.html").Funcs(publicFuncs).ParseFS(assets, "templates/public.html"))
	h.css = loadStatic()["public.css"]
	h.csp = "default-src 'none'; style-src 'self'; img-src 'self'" + logoSource(o.Public.LogoURL) +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.servePage)
	mux.HandleFunc("GET /static/public.css", h.serveCSS)
	mux.HandleFunc("GET /history.atom", h.serveFeed)
	mux.HandleFunc("GET /badge.svg", h.serveBadge)
	for path, shape := range summaryShapes {
		mux.HandleFunc("GET /api/v2/"+path, h.serveJSON(shape))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: this is the public status page (/, /history.atom, /badge.svg, /api/v2/summary.json)", http.StatusNotFound)
	})
	h.mux = mux
	return h
}

// logoSource lets the page load its logo from the logo's origin, and nothing else.
func logoSource(logo string) string {
	u, err := url.Parse(logo)
	if logo == "" || err != nil || u.Host == "" {
		return ""
	}
	return " " + u.Scheme + "://" + u.Host
}

// ServeHTTP adds the headers every answer carries, then routes.
func (h *PublicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", h.csp) // no script at all: the page needs none
	if r.Method == http.MethodHead {
		r.Method = http.MethodGet // routes are GET; HEAD answers the same headers
	}
	gzipped(w, r, func(w http.ResponseWriter) { h.mux.ServeHTTP(w, r) })
}

// current returns the model, rebuilt when it is older than cacheFor.
func (h *PublicHandler) current() publicModel {
	m, _ := h.currentGen()
	return m
}

// currentGen is current with the model's generation.
func (h *PublicHandler) currentGen() (publicModel, int) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.modelAt.IsZero() && now.Sub(h.modelAt) < h.cacheFor && !now.Before(h.modelAt) {
		return h.model, h.gen
	}
	st := h.src.Snapshot()
	if h.uptime == nil || now.Sub(h.uptimeAt) >= publicUptimeEvery || now.Before(h.uptimeAt) {
		up, err := uptimeOf(h.src, alert.CellsOf(st.Targets), now)
		if err != nil {
			h.log.Warn("public status page: read history", "err", err) // the page goes on without uptime
		} else {
			h.uptime, h.uptimeAt = up, now
		}
	}
	closed, err := h.src.Closed(publicHistoryLimit)
	if err != nil {
		h.log.Warn("public status page: read closed incidents", "err", err)
	}
	h.model, h.modelAt = h.buildModel(st, closed, h.uptime), now
	h.rendered, h.gen = map[string][]byte{}, h.gen+1
	return h.model, h.gen
}

// answer is what render made of the current model for this kind and base URL; made
// once per model (rendering the page costs ten times more than serving it).
func (h *PublicHandler) answer(kind, base string, render func(publicModel) ([]byte, error)) ([]byte, error) {
	m, gen := h.currentGen()
	key := kind + " " + base
	h.mu.Lock()
	body, ok := h.rendered[key]
	h.mu.Unlock()
	if ok {
		return body, nil
	}
	body, err := render(m)
	if err != nil {
		return nil, err
	}
	body = h.scrub.Bytes(body)
	h.mu.Lock()
	if gen == h.gen && len(h.rendered) < maxRendered { // bounded: the Host header is the client's
		h.rendered[key] = body
	}
	h.mu.Unlock()
	return body, nil
}

// baseURL is public.url, else the scheme and host the request came by.
func (h *PublicHandler) baseURL(r *http.Request) string {
	if h.public.URL != "" {
		return strings.TrimRight(h.public.URL, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type publicView struct {
	Title, LogoURL, Base string
	Refresh              int
	M                    publicModel
}

var publicFuncs = template.FuncMap{
	"utc":    func(t time.Time) string { return t.UTC().Format(timeLayout) },
	"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join":   func(s []string) string { return strings.Join(s, ", ") },
	"words":  func(s alert.ComponentState) string { return s.Words() },
	"symbol": stateSymbol,
	"status": statusWord,
	"since":  func(a, b time.Time) string { return humanDuration(b.Sub(a)) },
}

// statusWord is an update status as a heading says it: "Investigating".
func statusWord(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// stateSymbol gives each state a sign, so colour is never the only cue.
func stateSymbol(s alert.ComponentState) string {
	switch s {
	case alert.ComponentDegraded:
		return "!"
	case alert.ComponentPartial:
		return "◐"
	case alert.ComponentMajor:
		return "✕"
	}
	return "✓"
}

func (h *PublicHandler) servePage(w http.ResponseWriter, r *http.Request) {
	base := h.baseURL(r)
	body, err := h.answer("page", base, func(m publicModel) ([]byte, error) {
		var buf bytes.Buffer
		err := h.page.Execute(&buf, publicView{Title: h.public.Title, LogoURL: h.public.LogoURL, Base: base, Refresh: publicRefresh, M: m})
		return buf.Bytes(), err
	})
	if err != nil {
		h.log.Error("public status page: render", "err", err)
		http.Error(w, "render the status page failed", http.StatusInternalServerError)
		return
	}
	writeHTML(w, nil, http.StatusOK, bytes.NewBuffer(body))
}

func (h *PublicHandler) serveCSS(w http.ResponseWriter, r *http.Request) { serveFile(w, r, h.css) }
