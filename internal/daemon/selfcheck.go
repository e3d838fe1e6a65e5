package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// selfCheck decides "is it them or is it us": when most of the targets that share
// nothing with the platform fail too, this vantage is impaired, platform pages are held
// and a notice goes to the self-check's own notifiers. It reads self_check: every round
// (targets, interval, timeout, min_ok, notify), and a reload wakes it: fixing the
// targets releases the held pages at once, and removing self_check releases them too.
func (d *daemon) selfCheck(ctx context.Context) {
	var every period
	defer every.stop()
	for {
		if sc := d.config().SelfCheck; sc == nil {
			every.stop()
			d.setImpaired(false, 0, 0, nil) // nothing checks any more: nothing holds pages
		} else {
			every.set(d.clock, sc.Interval)
			ok, failures := checkOutside(ctx, sc)
			if ctx.Err() != nil {
				return
			}
			d.setImpaired(ok < sc.MinOK, ok, len(sc.Targets), failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-every.C():
		case <-d.wakeSelfCheck:
		}
	}
}

// impairment is this vantage's impaired state: its notice's key, and who was told.
type impairment struct {
	Vantage string    `json:"vantage"` // of the dedup key: picket/impaired/<vantage>
	Notify  []string  `json:"notify"`  // the notifiers that got the trigger: they get the resolve
	Since   time.Time `json:"since"`
}

func (n *impairment) key() string { return "picket/impaired/" + n.Vantage }

// The store keeps an impairment (while there is one) in bucket meta, key impaired.
const bucketMeta, keyImpaired = "meta", "impaired"

// setImpaired applies a round's verdict; total 0: self_check is not configured. Only
// the self-check goroutine calls it: d.impaired is its own.
func (d *daemon) setImpaired(impaired bool, ok, total int, failures []string) {
	cfg := d.config()
	var notifyNow []string
	if cfg.SelfCheck != nil {
		notifyNow = cfg.SelfCheck.Notify
	}
	details := map[string]any{"ok": ok, "total": total, "failures": failures}
	trigger := func(open *impairment) string {
		return fmt.Sprintf("[IMPAIRED %s] Picket's own network checks fail (%d of %d ok); platform pages are held", open.Vantage, ok, total)
	}
	switch open := d.impaired; {
	case impaired && open == nil:
		open = &impairment{Vantage: cfg.Vantage, Notify: slices.Clone(notifyNow), Since: d.clock.Now().UTC()}
		d.impaired = open
		d.keepImpaired(open)
		d.engine.SetImpaired(true)
		d.metrics.impaired.Set(1)
		d.log.Error("vantage impaired: platform pages are held", "ok", ok, "of", total, "failures", failures)
		d.sendImpaired(open, open.Notify, notify.ActionTrigger, trigger(open), details)
	case impaired:
		// Notifiers added to self_check.notify meanwhile hear of it too.
		fresh := slices.DeleteFunc(slices.Clone(notifyNow), func(n string) bool { return slices.Contains(open.Notify, n) })
		if len(fresh) > 0 {
			open.Notify = append(open.Notify, fresh...)
			d.keepImpaired(open)
			d.sendImpaired(open, fresh, notify.ActionTrigger, trigger(open), details)
		}
	case open != nil:
		d.impaired = nil
		d.engine.SetImpaired(false)
		d.metrics.impaired.Set(0)
		summary := fmt.Sprintf("[IMPAIRED %s] recovered (%d of %d ok)", open.Vantage, ok, total)
		if total == 0 {
			summary = fmt.Sprintf("[IMPAIRED %s] self_check is no longer configured", open.Vantage)
		}
		d.log.Info("vantage no longer impaired: held pages are released", "ok", ok, "of", total)
		// Forgotten once the resolve is queued (the outbox keeps it): a crash in between
		// sends it again after the restart, which is harmless.
		if d.sendImpaired(open, open.Notify, notify.ActionResolve, summary, details) {
			d.forgetImpaired()
		}
	}
}

// keepImpaired stores the impaired state before its trigger is queued: a crash in
// between resolves a notice that was never sent (harmless) rather than leaving one open.
func (d *daemon) keepImpaired(im *impairment) {
	if err := d.store.Put(bucketMeta, keyImpaired, im); err != nil {
		d.log.Error("could not store the impaired state: a restart would not resolve its notice", "err", err)
	}
}

func (d *daemon) forgetImpaired() {
	if err := d.store.Delete(bucketMeta, keyImpaired); err != nil {
		d.log.Error("could not clear the impaired state: the next start holds pages until its first self-check round", "err", err)
	}
}

// restoreImpaired (before the engine is made) starts a vantage that was impaired when
// it stopped with its pages held, until the first self-check round says otherwise;
// that round's release resolves the notice sent before the restart.
func (d *daemon) restoreImpaired() {
	var im impairment
	found, err := d.store.Get(bucketMeta, keyImpaired, &im)
	if err != nil {
		d.log.Error("could not read the impaired state; starting as not impaired", "err", err)
		return
	}
	if !found {
		return
	}
	d.impaired = &im
	d.metrics.impaired.Set(1)
	d.log.Warn("vantage was impaired when it stopped: platform pages are held until the first self-check round", "since", im.Since)
}

// sendImpaired queues the notice to notifyTo (nothing when empty); false if it could
// not be queued.
func (d *daemon) sendImpaired(open *impairment, notifyTo []string, action, summary string, details map[string]any) bool {
	if len(notifyTo) == 0 {
		return true
	}
	now := d.clock.Now()
	n := notify.Notification{
		ID: fmt.Sprintf("%s|%s|%d", open.key(), action, now.UnixNano()), Action: action,
		DedupKey: open.key(), Scope: "impaired", Subject: open.Vantage, Summary: summary,
		Severity: notify.SeverityWarning, Source: open.Vantage, Created: now.UTC(), Details: details,
	}
	if err := d.outbox.Enqueue(notify.Delivery{Notification: n, Notify: notifyTo}); err != nil {
		d.log.Error("could not queue the impaired notice", "action", action, "err", err)
		return false
	}
	return true
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
