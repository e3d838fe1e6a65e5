package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/picket-dev/picket/internal/clock"
)

// heartbeat pings the dead man's switch only while the scheduler is healthy: silence
// there means Picket itself is down or stuck, and the switch pages someone. It reads
// heartbeat: every round, and a reload wakes it, so a new url or every (or a heartbeat
// added or removed) takes effect at once.
func (d *daemon) heartbeat(ctx context.Context) {
	client := &http.Client{Timeout: 10 * time.Second}
	var every period
	defer every.stop()
	for {
		if hb := d.config().Heartbeat; hb == nil {
			every.stop()
		} else {
			every.set(d.clock, hb.Every)
			if ok, why := d.healthy(); ok {
				if err := ping(ctx, client, hb.URL); err != nil {
					d.log.Warn("heartbeat failed", "err", err)
				}
			} else {
				d.log.Warn("heartbeat withheld: scheduler unhealthy", "why", why)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-every.C():
		case <-d.wakeHeartbeat:
		}
	}
}

// period is a ticker whose period follows the config: none while the part is off, the
// same phase while the period stays.
type period struct {
	t *clock.Ticker
	d time.Duration
}

// set makes it tick every d.
func (p *period) set(c clock.Clock, d time.Duration) {
	switch {
	case p.t == nil:
		p.t = clock.NewTicker(c, d)
	case d != p.d:
		p.t.Reset(d)
	}
	p.d = d
}

// stop ends the ticks until the next set.
func (p *period) stop() {
	if p.t != nil {
		p.t.Stop()
		p.t = nil
	}
}

// C delivers the ticks; nil (never ready) while stopped.
func (p *period) C() <-chan time.Time {
	if p.t == nil {
		return nil
	}
	return p.t.C()
}

// wake tells a loop that the config changed, without waiting for it.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a wake-up is pending already
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
