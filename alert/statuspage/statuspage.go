// Package statuspage serves Picket's status page (server-rendered HTML that a small
// script refreshes in place) and its JSON API. It reads state from a Source and asks
// the Source for the only writes it offers (silences); it never touches the store.
package statuspage

import (
	"bytes"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
)

// Source is what the page and the API read, and the few writes they pass on.
type Source interface {
	Snapshot() alert.Status
	FindIncident(key string) (alert.Incident, bool, error)
	Closed(limit int) ([]alert.Incident, error)
	History(target string, from, to time.Time, step time.Duration) ([]store.Bucket, error)
	Silences() []alert.Silence
	AddSilence(s alert.Silence) (alert.Silence, error)
	DeleteSilence(id string) error
	Outbox() []notify.EntryInfo
	PostUpdate(key string, u alert.Update) (alert.Incident, alert.Update, error)
}

// Options configure New.
type Options struct {
	Token  config.Secret // bearer token for writes; zero: writes refused (403 with a clear message)
	Title  string        // page title, default "Platform status"
	Logger *slog.Logger  // nil: discard
	Now    func() time.Time
	// ScreenshotDir holds the failure screenshots of browser steps; set, the page shows
	// them on their incidents and serves them at /screenshots/NAME.
	ScreenshotDir string
}

// DefaultTitle is the page title when Options.Title is empty.
const DefaultTitle = "Platform status"

// Handler serves the status page, its static files and the JSON API.
type Handler struct {
	src    Source
	token  config.Secret
	title  string
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	page   *template.Template
	static map[string]staticFile
	scrub  *scrub.Redactor
	shots  string // ScreenshotDir
}

var _ http.Handler = (*Handler)(nil)

// New builds the handler. It panics only if the embedded template is broken, which
// the package's tests rule out.
func New(src Source, o Options) *Handler {
	h := &Handler{
		src: src, token: o.Token, title: o.Title, log: o.Logger, now: o.Now, shots: o.ScreenshotDir,
		page:   template.Must(template.New("page.html").Funcs(pageFuncs).ParseFS(assets, "templates/page.html")),
		static: loadStatic(),
		scrub:  scrub.NewWithForms(o.Token.Reveal()),
	}
	if h.title == "" {
		h.title = DefaultTitle
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = scrub.Logger(h.log, h.scrub)
	if h.now == nil {
		h.now = time.Now
	}
	h.mux = h.routes()
	return h
}

func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", only(map[string]http.HandlerFunc{http.MethodGet: h.servePage}))
	mux.HandleFunc("/static/{file}", only(map[string]http.HandlerFunc{http.MethodGet: h.serveStatic}))
	mux.HandleFunc("/screenshots/{name}", only(map[string]http.HandlerFunc{http.MethodGet: h.serveScreenshot}))
	mux.HandleFunc("/api/v1/status", only(map[string]http.HandlerFunc{http.MethodGet: h.apiStatus}))
	mux.HandleFunc("/api/v1/incidents", only(map[string]http.HandlerFunc{http.MethodGet: h.apiIncidents}))
	mux.HandleFunc("/api/v1/incidents/{key}/timeline", only(map[string]http.HandlerFunc{http.MethodGet: h.apiTimeline}))
	mux.HandleFunc("/api/v1/incidents/{key}/updates", only(map[string]http.HandlerFunc{
		http.MethodGet: h.apiUpdates, http.MethodPost: h.writer(h.apiPostUpdate),
	}))
	mux.HandleFunc("/api/v1/history/{target}", only(map[string]http.HandlerFunc{http.MethodGet: h.apiHistory}))
	mux.HandleFunc("/api/v1/silences", only(map[string]http.HandlerFunc{
		http.MethodGet: h.apiSilences, http.MethodPost: h.writer(h.apiCreateSilence),
	}))
	mux.HandleFunc("/api/v1/silences/{id}", only(map[string]http.HandlerFunc{http.MethodDelete: h.writer(h.apiDeleteSilence)}))
	mux.HandleFunc("/api/v1/outbox", only(map[string]http.HandlerFunc{http.MethodGet: h.apiOutbox}))
	mux.HandleFunc("/api/v1/cluster", only(map[string]http.HandlerFunc{http.MethodGet: h.apiCluster}))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, h.scrub, http.StatusNotFound, "no API route "+r.URL.Path)
	})
	return mux
}

// ServeHTTP adds the headers every answer carries, then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	// Only our own script and style: a value that slipped past escaping still cannot run.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
		"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	gzipped(w, r, func(w http.ResponseWriter) { h.mux.ServeHTTP(w, r) })
}

// only dispatches by method; others get a JSON 405 with Allow (HEAD rides on GET).
func only(byMethod map[string]http.HandlerFunc) http.HandlerFunc {
	allow := ""
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if byMethod[m] != nil {
			if allow != "" {
				allow += ", "
			}
			allow += m
			if m == http.MethodGet {
				allow += ", " + http.MethodHead
			}
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		if fn := byMethod[method]; fn != nil {
			fn(w, r)
			return
		}
		w.Header().Set("Allow", allow)
		writeError(w, nil, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; expected "+allow)
	}
}

// writeJSON answers v as JSON, with the token scrubbed from it.
func writeJSON(w http.ResponseWriter, x *scrub.Redactor, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Error: "encode answer: " + err.Error()})
	}
	body = x.Bytes(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, x *scrub.Redactor, status int, msg string) {
	writeJSON(w, x, status, errorBody{Error: msg})
}

// writeHTML answers a rendered page, with the token scrubbed from it.
func writeHTML(w http.ResponseWriter, x *scrub.Redactor, status int, body *bytes.Buffer) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(x.Bytes(body.Bytes()))
}
