package timetopage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/daemon"
	"github.com/picket-dev/picket/probe/probetest"
)

// ingestDelay is how long the platform takes to make a write readable: short, so a
// healthy write-then-read journey ends well within the timeouts used here.
const ingestDelay = 50 * time.Millisecond

// RigOptions configure StartRig.
type RigOptions struct {
	Shape  Shape
	Dir    string       // for the config and the state; the caller removes it
	Logger *slog.Logger // the daemon's; nil: discard
}

// Rig is one platform, one receiver and one daemon watching the platform and paging
// the receiver, every part in this process and on loopback.
type Rig struct {
	api
	Plat   *probetest.Platform
	PD     *pdtest.Receiver
	Timing Timing
	stop   func() error
}

// api reads the daemon's HTTP API.
type api struct {
	Base   string // http://127.0.0.1:port
	client *http.Client
}

func newAPI() api { return api{client: &http.Client{Timeout: 5 * time.Second}} }

// StartRig starts the platform, the receiver and the daemon, and returns once the
// daemon listens.
func StartRig(ctx context.Context, o RigOptions) (*Rig, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	plat, err := probetest.Start(probetest.Options{Regions: Regions(), IngestDelay: ingestDelay, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("start platform: %w", err)
	}
	r := &Rig{Plat: plat, api: newAPI()}
	if err := r.start(ctx, o); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	return r, nil
}

func (r *Rig) start(ctx context.Context, o RigOptions) error {
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		return fmt.Errorf("start receiver: %w", err)
	}
	r.PD = pd
	spec := configSpec{stateDir: filepath.Join(o.Dir, "state"), regionURL: regionURLs(r.Plat), eventsURL: pd.BaseURL(), shape: o.Shape, journeys: 1}
	path, err := writeConfig(o.Dir, spec)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("generated config does not load: %w", err)
	}
	if r.Timing, err = timingOf(o.Shape, cfg); err != nil {
		return err
	}
	addr, stop, err := startDaemon(ctx, daemon.Options{ConfigPath: path, Logger: o.Logger, Version: "timetopage"})
	if err != nil {
		return err
	}
	r.Base, r.stop = "http://"+addr, stop
	return nil
}

func regionURLs(p *probetest.Platform) map[string]string {
	m := map[string]string{}
	for _, r := range Regions() {
		m[r] = p.URL(r)
	}
	return m
}

// startDaemon runs daemon.Run until stop is called, and returns the address it listens
// on. stop returns Run's error.
func startDaemon(ctx context.Context, o daemon.Options) (addr string, stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	addrs := make(chan string, 1)
	o.OnListen = func(a string) { addrs <- a }
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, o) }()
	stop = func() error { cancel(); return <-done }
	select {
	case a := <-addrs:
		return a, stop, nil
	case err := <-done:
		cancel()
		return "", nil, fmt.Errorf("daemon did not start: %w", err)
	case <-time.After(10 * time.Second):
		return "", nil, errors.Join(errors.New("daemon did not listen within 10s"), stop())
	}
}

// Close stops the daemon first (it delivers what it can), then the receiver and the
// platform.
func (r *Rig) Close() error {
	var errs []error
	if r.stop != nil {
		errs = append(errs, r.stop())
	}
	r.client.CloseIdleConnections()
	if r.PD != nil {
		errs = append(errs, r.PD.Close())
	}
	errs = append(errs, r.Plat.Close())
	return errors.Join(errs...)
}

// Status is the daemon's /api/v1/status.
func (r api) Status(ctx context.Context) (alert.Status, error) {
	var s alert.Status
	return s, r.getJSON(ctx, "/api/v1/status", &s)
}

// Timeline is an incident's timeline by dedup key (open first, else the latest closed).
func (r api) Timeline(ctx context.Context, key string) ([]alert.Event, error) {
	var answer struct {
		Timeline []alert.Event `json:"timeline"`
	}
	err := r.getJSON(ctx, "/api/v1/incidents/"+strings.ReplaceAll(key, "/", "~")+"/timeline", &answer)
	return answer.Timeline, err
}

func (r api) getJSON(ctx context.Context, path string, into any) error {
	body, err := r.get(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// get returns the body of a 200 answer; any other status is an error.
func (r api) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: want 200, got %d: %.200s", path, resp.StatusCode, body)
	}
	return body, nil
}

// pollEvery is how often a wait re-reads the daemon's status.
const pollEvery = 25 * time.Millisecond

// waitStatus polls the daemon's status until cond holds or ctx ends; the error says
// what the last status showed.
func (r api) waitStatus(ctx context.Context, what string, cond func(alert.Status) (bool, string)) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	last := "no status read"
	for {
		s, err := r.Status(ctx)
		if err == nil {
			ok, why := cond(s)
			if ok {
				return nil
			}
			last = why
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %s)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// WaitQuiet waits until every target is ok and up, the daemon has no open incident,
// and the receiver no open alert: nothing of one trial can leak into the next.
func (r *Rig) WaitQuiet(ctx context.Context) error {
	return r.waitStatus(ctx, "quiet", func(s alert.Status) (bool, string) {
		if len(s.Targets) == 0 {
			return false, "no targets yet"
		}
		for _, t := range s.Targets {
			if t.State != alert.StateOK || t.LastStatus != "up" {
				return false, fmt.Sprintf("%s is %s/%q", t.Target, t.State, t.LastStatus)
			}
		}
		if len(s.Incidents) > 0 {
			return false, fmt.Sprintf("%d incident(s) open, first %s", len(s.Incidents), s.Incidents[0].Key)
		}
		if open := r.PD.Open(); len(open) > 0 {
			return false, fmt.Sprintf("%d alert(s) open at the receiver", len(open))
		}
		return true, ""
	})
}

// waitFiring waits until every target of region ("" = every region) is firing.
func (r *Rig) waitFiring(ctx context.Context, region string) error {
	return r.waitStatus(ctx, "every broken target firing", func(s alert.Status) (bool, string) {
		for _, t := range s.Targets {
			if (region == "" || t.Region == region) && t.State != alert.StateFiring {
				return false, fmt.Sprintf("%s is %s", t.Target, t.State)
			}
		}
		return true, ""
	})
}
