// Package pagerduty sends notifications to PagerDuty's Events API v2 through
// github.com/PagerDuty/go-pagerduty (v1.8.0). It does not retry: the outbox does.
//
// Two things go-pagerduty v1.8.0 does not give, and how they are got here:
//   - its Client decodes error answers into APIError, whose JSON shape is the REST
//     API's ({"error": {...}}), so the Events API's {"status","message","errors"} and
//     the Retry-After header are lost; and transport errors come back flattened with
//     %v. The HTTP client handed to go-pagerduty is a per-call recorder that keeps
//     the answer's status, headers and (bounded) body, or the transport error, so
//     they can be classified and quoted.
//   - it has no option for an HTTP client or a User-Agent: the recorder is set on
//     Client.HTTPClient, and it sets User-Agent "picket" on the way out.
package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/config"
)

// Kind is what Kind returns.
const Kind = "pagerduty"

// Limits and names of the Events API v2.
const (
	MaxSummaryRunes = 1024
	clientName      = "Picket"
	enqueuePath     = "/v2/enqueue"
	defaultEndpoint = "https://events.pagerduty.com"
)

// Options are what the caller injects: an HTTP client and a logger.
type Options = notify.ChannelOptions

// Notifier sends to one PagerDuty service (one routing key). Safe for concurrent use.
type Notifier struct {
	notify.Channel // name, kind, limits, HTTP client, logger, misconfig
	routingKey     string
	endpoint       string // scheme://host[/prefix]; go-pagerduty appends /v2/enqueue
}

// New builds a notifier from its config. A config that is not PagerDuty's yields a
// notifier whose every Notify fails permanently, saying so.
func New(cfg *config.Notifier, opts Options) *Notifier {
	n := &Notifier{Channel: notify.ChannelOf(Kind, cfg, cfg.PagerDuty != nil, opts)}
	if n.Misconfig != nil {
		return n
	}
	n.routingKey = cfg.PagerDuty.RoutingKey.Reveal()
	n.endpoint = EndpointBase(cfg.PagerDuty.EventsURL)
	return n
}

// EndpointBase turns a configured events_url into what go-pagerduty's
// WithV2EventsAPIEndpoint wants: the URL without its /v2/enqueue, since the client
// appends that itself. "" is PagerDuty's own endpoint.
func EndpointBase(eventsURL string) string {
	base := strings.TrimRight(strings.TrimSpace(eventsURL), "/")
	base = strings.TrimSuffix(base, enqueuePath)
	base = strings.TrimRight(base, "/")
	if base == "" {
		return defaultEndpoint
	}
	return base
}

// Identity names the PagerDuty service this notifier pages (endpoint and routing key),
// hashed: "" for a misconfigured notifier, which reaches nothing.
func (n *Notifier) Identity() string {
	return n.IdentityOf(n.endpoint, n.routingKey)
}

// Notify sends one event and reports whether PagerDuty accepted it (2xx). Failures are
// classified as in notify.Classify; 400 (an invalid event) is permanent.
func (n *Notifier) Notify(ctx context.Context, msg notify.Notification) error {
	return n.Attempt(ctx, msg, n.send, n.routingKey)
}

func (n *Notifier) send(ctx context.Context, msg notify.Notification) error {
	event, err := n.event(msg)
	if err != nil {
		return notify.Permanent(fmt.Errorf("pagerduty %s: %w", n.Name(), err))
	}
	rec := &recorder{client: n.HTTP}
	// A client per call: its HTTPClient is this call's recorder. NewClient is a few
	// allocations; connections are pooled by n.HTTP.
	pd := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(n.endpoint))
	pd.HTTPClient = rec
	_, err = pd.ManageEventWithContext(ctx, event)
	if err := n.classify(err, rec); err != nil {
		return fmt.Errorf("pagerduty %s: %s %s: %w", n.Name(), msg.Action, msg.DedupKey, err)
	}
	return nil
}

// classify reads what happened from the recorder first (it saw the wire), and from
// go-pagerduty's error second.
func (n *Notifier) classify(err error, rec *recorder) error {
	switch {
	case !rec.sent:
		if err == nil {
			return nil
		}
		// go-pagerduty failed before sending: the event did not encode or the
		// endpoint is not a URL. The same event would fail the same way.
		return notify.Permanent(fmt.Errorf("expected to build the request, got: %v", err))
	case rec.transportErr != nil:
		return notify.TransportError(rec.transportErr)
	case rec.status >= 200 && rec.status <= 299:
		// Accepted. An answer go-pagerduty could not decode does not undo that.
		return nil
	}
	status := rec.status
	var apiErr pagerduty.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode != 0 {
		// APIError.Temporary() is 429 and 5xx; notify.RetryableStatus adds 408, as
		// go-pagerduty's own EventsAPIV2Error.Temporary does.
		status = apiErr.StatusCode
	}
	return notify.ClassifyExcerpt(status, answerExcerpt(rec.body, n.routingKey), rec.header)
}

// eventsAnswer is the Events API's body, for success and failure alike.
type eventsAnswer struct {
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Errors  []string `json:"errors"`
}

// answerExcerpt quotes an Events API error as "status: message: error; error", or the
// start of the body when it is not the Events API's JSON (a proxy's HTML page).
func answerExcerpt(body []byte, routingKey string) string {
	body = []byte(scrub.Redact(string(body), routingKey))
	var ans eventsAnswer
	if err := json.Unmarshal(body, &ans); err != nil || (ans.Status == "" && ans.Message == "" && len(ans.Errors) == 0) {
		return scrub.Excerpt(body, notify.MaxExcerptBytes)
	}
	parts := make([]string, 0, 3)
	for _, p := range []string{ans.Status, ans.Message, strings.Join(ans.Errors, "; ")} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	// The error list is what says which field is wrong: allow it more room.
	return scrub.Excerpt([]byte(strings.Join(parts, ": ")), 2*notify.MaxExcerptBytes)
}

// event maps a notification to an Events API v2 event. A resolve carries only the
// routing key, the action and the dedup key: go-pagerduty omits a nil Payload, empty
// links and client fields.
func (n *Notifier) event(msg notify.Notification) (*pagerduty.V2Event, error) {
	ev := &pagerduty.V2Event{RoutingKey: n.routingKey, Action: msg.Action, DedupKey: msg.DedupKey}
	switch msg.Action {
	case notify.ActionResolve:
		if msg.DedupKey == "" {
			return nil, errors.New("expected a dedup key to resolve, got none")
		}
		return ev, nil
	case notify.ActionTrigger:
	default:
		return nil, fmt.Errorf("expected action %s or %s, got %q", notify.ActionTrigger, notify.ActionResolve, msg.Action)
	}
	ev.Payload = payload(msg)
	ev.Client = clientName
	for _, l := range msg.Links {
		ev.Links = append(ev.Links, map[string]string{"href": l.Href, "text": l.Text})
	}
	if len(msg.Links) > 0 {
		ev.ClientURL = msg.Links[0].Href
	}
	for _, im := range msg.Images {
		ev.Images = append(ev.Images, map[string]string{"src": im.Src, "href": im.Href, "alt": im.Alt})
	}
	return ev, nil
}

// payload is PD-CEF for a trigger. Blank required fields get a stand-in rather than a
// 400: a page with a plain summary beats no page.
func payload(msg notify.Notification) *pagerduty.V2Payload {
	p := &pagerduty.V2Payload{
		Summary:   Summary(msg.Summary),
		Source:    msg.Source,
		Severity:  msg.Severity,
		Component: msg.Component,
		Group:     msg.Group,
		Class:     msg.Class,
	}
	if strings.TrimSpace(p.Summary) == "" {
		p.Summary = Summary("Picket incident " + msg.DedupKey)
	}
	if strings.TrimSpace(p.Source) == "" {
		p.Source = "picket"
	}
	switch p.Severity {
	case notify.SeverityCritical, notify.SeverityError, notify.SeverityWarning, notify.SeverityInfo:
	default:
		p.Severity = notify.SeverityError
	}
	if !msg.Created.IsZero() {
		p.Timestamp = msg.Created.UTC().Format(time.RFC3339)
	}
	if len(msg.Details) > 0 {
		p.Details = msg.Details
	}
	return p
}

// Summary cuts s to PagerDuty's 1024 characters, ending in "…" when cut.
func Summary(s string) string {
	if utf8.RuneCountInString(s) <= MaxSummaryRunes {
		return s
	}
	runes := []rune(s)
	return string(runes[:MaxSummaryRunes-1]) + "…"
}
