package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/httpguard"
	"github.com/picket-dev/picket/internal/scrub"
	"github.com/picket-dev/picket/internal/store"
)

// routes: operational endpoints here, the status page and API from statuspage; all of
// it behind the admin policy (Host check, and origin, token and JSON for every write).
func (d *daemon) routes() http.Handler {
	cfg := d.config()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler(d.log))
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

// publicRoutes is the public listener's handler: the customers' status page
// (statuspage.PublicHandler), whichever the last (re)load built. It serves only the
// public page, its feed, badge and JSON; none of the operators' page or API, so the
// admin listen can stay private. It needs no Host check: all of it is public.
func (d *daemon) publicRoutes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.publicPage.Load().ServeHTTP(w, r)
	})
}

// listenPublic binds public.listen (or the deprecated public_listen), if set, at
// start, so that a taken port is a start error like one of listen; nil without one.
func listenPublic(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("public.listen on %s: %w", addr, err)
	}
	return ln, nil
}

// servePublic serves the public status page on ln until ctx ends, then shuts it down.
// An error of its own ends only this listener: probing and paging go on without it.
func (d *daemon) servePublic(ctx context.Context, ln net.Listener) {
	srv := &http.Server{Handler: d.publicRoutes(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }() // Serve closes ln when it returns
	d.log.Info("public status page", "listen", ln.Addr().String())
	select {
	case err := <-done:
		d.log.Error("public status page stopped", "listen", ln.Addr().String(), "err", err)
		return
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	<-done
}

// setStatusPage builds the page and API for cfg; a reload swaps it, so a new api.token
// takes effect at once.
func (d *daemon) setStatusPage(cfg *config.Config) {
	var h http.Handler = statuspage.New(source{d}, statuspage.Options{Token: cfg.APIToken, Logger: d.log, ScreenshotDir: d.screenshots})
	d.page.Store(&h)
	if cfg.Public != nil { // a reload that drops public: keeps the page until the next start
		d.publicPage.Store(statuspage.NewPublic(source{d}, statuspage.PublicOptions{
			Public: cfg.Public, Names: alert.NamesOf(cfg), Logger: d.log, Now: d.clock.Now,
			Redactor: scrub.NewWithForms(cfg.SecretValues()...),
		}))
	}
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
func (s source) PostUpdate(key string, u alert.Update) (alert.Incident, alert.Update, error) {
	return s.d.engine.PostUpdate(key, u)
}
