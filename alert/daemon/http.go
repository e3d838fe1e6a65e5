package daemon

import (
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/alert/store"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/httpguard"
)

// routes: operational endpoints here, the status page and API from statuspage; all of
// it behind the admin policy (Host check, and origin, token and JSON for every write).
func (d *daemon) routes() http.Handler {
	cfg := d.config()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{Registry: d.metrics.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := d.healthy()
		if !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready: " + why + "\n"))
	})
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := d.requestReload(r.Context()); err != nil {
			http.Error(w, "reload refused:\n"+err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("reloaded\n"))
	})
	d.setStatusPage(cfg)
	mux.Handle("/", d.statusPage())
	return d.adminPolicy(cfg.Listen).Wrap(mux)
}

// statusPage serves whichever page the last (re)load built.
func (d *daemon) statusPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*d.page.Load()).ServeHTTP(w, r)
	})
}

// adminPolicy: the token and allowed_hosts are read per request, so a reload applies
// them at once; the listen host is the one bound at start, since a reload does not
// move the listener.
func (d *daemon) adminPolicy(listen string) httpguard.Policy {
	host, _, _ := net.SplitHostPort(listen)
	host = config.NormalHost(host)
	return httpguard.Policy{
		Token: func() config.Secret { return d.config().APIToken },
		Hosts: func() []string { return slices.Concat([]string{host}, d.config().AllowedHosts) },
		Log:   d.log,
	}
}

// setStatusPage builds the page and API for cfg; a reload swaps it, so a new api.token
// takes effect at once.
func (d *daemon) setStatusPage(cfg *config.Config) {
	var h http.Handler = statuspage.New(source{d}, statuspage.Options{Token: cfg.APIToken, Logger: d.log})
	d.page.Store(&h)
}

// source adapts the daemon's parts to what the status page reads.
type source struct{ d *daemon }

func (s source) Snapshot() alert.Status { return s.d.engine.Snapshot() }
func (s source) FindIncident(key string) (alert.Incident, bool, error) {
	return s.d.engine.FindIncident(key)
}
func (s source) Closed(limit int) ([]alert.Incident, error) { return s.d.engine.Closed(limit) }
func (s source) History(target string, from, to time.Time, step time.Duration) ([]store.Bucket, error) {
	return s.d.store.History(target, from, to, step)
}
func (s source) Silences() []alert.Silence                         { return s.d.engine.Silences() }
func (s source) AddSilence(x alert.Silence) (alert.Silence, error) { return s.d.engine.AddSilence(x) }
func (s source) DeleteSilence(id string) error                     { return s.d.engine.DeleteSilence(id) }
func (s source) Outbox() []notify.EntryInfo                        { return s.d.outbox.Entries() }
