package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/picket-dev/picket/config"
)

// Channel is what every channel shares, embedded in each: its config's name, timeout
// and rate, its HTTP client (unused by email) and logger, and the permanent error that
// a notifier built from another kind's config answers every Notify with. The channel
// adds only what it sends and where.
type Channel struct {
	name, kind string
	timeout    time.Duration
	rate       Rate
	HTTP       *http.Client
	Log        *slog.Logger
	Misconfig  error // set when the config was not this channel's kind
}

// ChannelOptions are what the caller injects into a channel (each channel's Options).
type ChannelOptions struct {
	HTTPClient *http.Client // nil: NewHTTPClient (no redirects, bounded answers)
	Logger     *slog.Logger // nil: discard
}

// ChannelSpec is what NewChannel needs of a notifier's config and options.
type ChannelSpec struct {
	Kind       string // the channel's own kind
	Name       string // the config's name
	ConfigKind string // the config's kind
	Matches    bool   // the config holds this channel's section
	Timeout    time.Duration
	Rate       Rate
	ChannelOptions
}

// NewChannel fills in the defaults and, for a config of another kind, Misconfig.
func NewChannel(s ChannelSpec) Channel {
	c := Channel{name: s.Name, kind: s.Kind, timeout: s.Timeout, rate: s.Rate, HTTP: s.HTTPClient, Log: s.Logger}
	if c.HTTP == nil {
		c.HTTP = NewHTTPClient()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if !s.Matches {
		c.Misconfig = Permanent(fmt.Errorf("%s %s: expected a %s notifier config, got kind %s", s.Kind, s.Name, s.Kind, s.ConfigKind))
	}
	return c
}

// ChannelOf is NewChannel for a notifier's config (its name, kind, timeout and rate);
// matches says whether cfg holds this channel's section.
func ChannelOf(kind string, cfg *config.Notifier, matches bool, opts ChannelOptions) Channel {
	return NewChannel(ChannelSpec{Kind: kind, Name: cfg.Name, ConfigKind: cfg.Kind(), Matches: matches,
		Timeout: cfg.Timeout, Rate: Rate{Events: cfg.Rate.Events, Per: cfg.Rate.Per}, ChannelOptions: opts})
}

func (c *Channel) Name() string { return c.name }
func (c *Channel) Kind() string { return c.kind }

// Limits are its config's timeout and rate: the outbox bounds each attempt by the one
// and paces the destination by the other.
func (c *Channel) Limits() Limits { return Limits{Timeout: c.timeout, Rate: c.rate} }

// IdentityOf is the identity of the destination (see NewIdentity); "" for a
// misconfigured notifier, which reaches nothing.
func (c *Channel) IdentityOf(destination ...string) string {
	if c.Misconfig != nil {
		return ""
	}
	return NewIdentity(c.kind, destination...)
}

// Attempt is the body of every channel's Notify: the wrong-kind error first, then one
// send bounded by the config's timeout, secrets scrubbed from its error, and a debug
// line with the outcome.
func (c *Channel) Attempt(ctx context.Context, msg Notification, send func(context.Context, Notification) error, secrets ...string) error {
	bounded := func(ctx context.Context, msg Notification) error {
		if c.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
		return send(ctx, msg)
	}
	if c.Misconfig != nil {
		return c.Misconfig
	}
	started := time.Now()
	err := Scrub(bounded(ctx, msg), secrets...)
	attrs := []any{"notifier", c.name, "kind", c.kind, "action", msg.Action, "dedup_key", msg.DedupKey,
		"elapsed", time.Since(started).Round(time.Millisecond)}
	if err == nil {
		c.Log.Debug("notification delivered", attrs...)
		return nil
	}
	c.Log.Debug("notification failed", append(attrs, "permanent", IsPermanent(err),
		"retry_after", RetryAfter(err), "err", err.Error())...)
	return err
}
