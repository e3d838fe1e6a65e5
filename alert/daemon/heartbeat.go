package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/clock"
)

// heartbeat pings the dead man's switch only while the scheduler is healthy: silence
// there means Picket itself is down or stuck, and the switch pages someone.
func (d *daemon) heartbeat(ctx context.Context) {
	hb := d.config().Heartbeat
	if hb == nil {
		return
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t := clock.NewTicker(d.clock, hb.Every)
	defer t.Stop()
	for {
		if ok, why := d.healthy(); ok {
			if err := ping(ctx, client, hb.URL); err != nil {
				d.log.Warn("heartbeat failed", "err", err)
			}
		} else {
			d.log.Warn("heartbeat withheld: scheduler unhealthy", "why", why)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// ping GETs u; the error never repeats the URL (a heartbeat URL is often a token).
func ping(ctx context.Context, client *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("bad heartbeat url")
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("heartbeat request: %w", ue.Err)
		}
		return fmt.Errorf("heartbeat request failed")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("heartbeat answered %d", resp.StatusCode)
	}
	return nil
}

// selfCheck decides "is it them or is it us": when most of the targets that share
// nothing with the platform fail too, this vantage is impaired, platform pages are held
// and a notice goes to the self-check's own notifiers.
func (d *daemon) selfCheck(ctx context.Context) {
	sc := d.config().SelfCheck
	if sc == nil {
		return
	}
	t := clock.NewTicker(d.clock, sc.Interval)
	defer t.Stop()
	impaired := false
	for {
		ok, failures := checkOutside(ctx, sc)
		now := ok < sc.MinOK
		if ctx.Err() != nil {
			return
		}
		if now != impaired {
			impaired = now
			d.setImpaired(impaired, ok, len(sc.Targets), failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (d *daemon) setImpaired(impaired bool, ok, total int, failures []string) {
	cfg := d.config()
	d.engine.SetImpaired(impaired)
	if impaired {
		d.metrics.impaired.Set(1)
		d.log.Error("vantage impaired: platform pages are held", "ok", ok, "of", total, "failures", failures)
	} else {
		d.metrics.impaired.Set(0)
		d.log.Info("vantage no longer impaired: held pages are released", "ok", ok, "of", total)
	}
	if len(cfg.SelfCheck.Notify) == 0 {
		return
	}
	action, summary := notify.ActionTrigger, fmt.Sprintf("[IMPAIRED %s] Picket's own network checks fail (%d of %d ok); platform pages are held", cfg.Vantage, ok, total)
	if !impaired {
		action, summary = notify.ActionResolve, fmt.Sprintf("[IMPAIRED %s] recovered (%d of %d ok)", cfg.Vantage, ok, total)
	}
	now := d.clock.Now()
	n := notify.Notification{
		ID: fmt.Sprintf("picket/impaired/%s|%s|%d", cfg.Vantage, action, now.UnixNano()), Action: action,
		DedupKey: "picket/impaired/" + cfg.Vantage, Scope: "impaired", Subject: cfg.Vantage, Summary: summary,
		Severity: notify.SeverityWarning, Source: cfg.Vantage, Created: now.UTC(),
		Details: map[string]any{"ok": ok, "total": total, "failures": failures},
	}
	if err := d.outbox.Enqueue(notify.Delivery{Notification: n, Notify: cfg.SelfCheck.Notify}); err != nil {
		d.log.Error("could not queue the impaired notice", "err", err)
	}
}

// checkOutside probes each self-check target once, in parallel, and counts successes.
func checkOutside(ctx context.Context, sc *config.SelfCheck) (int, []string) {
	type outcome struct {
		target string
		err    error
	}
	results := make(chan outcome, len(sc.Targets))
	for _, target := range sc.Targets {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, sc.Timeout)
			defer cancel()
			results <- outcome{target, reach(cctx, target)}
		}()
	}
	ok := 0
	var failures []string
	for range sc.Targets {
		o := <-results
		if o.err == nil {
			ok++
		} else {
			failures = append(failures, o.target+": "+o.err.Error())
		}
	}
	return ok, failures
}

// reach: any HTTP answer (even an error status) proves the network works; tcp:// dials.
func reach(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	if u.Scheme == "tcp" {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, target, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	return resp.Body.Close()
}
