package pdtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits and enumerations of the Events API v2, as PagerDuty documents them
// (developer.pagerduty.com, "Send an Alert Event" and "Events API v2 Overview").
const (
	MaxBodyBytes       = 512 * 1024 // "Events API payloads are limited to 512 KB"
	RoutingKeyLen      = 32         // "the 32 character Integration Key"
	MaxSummaryChars    = 1024
	MaxDedupKeyChars   = 255
	redactedRoutingKey = "***"
)

// Event actions accepted by the Events API v2.
const (
	ActionTrigger     = "trigger"
	ActionAcknowledge = "acknowledge"
	ActionResolve     = "resolve"
)

var (
	validActions    = []string{ActionTrigger, ActionAcknowledge, ActionResolve}
	validSeverities = []string{"critical", "error", "warning", "info"}
)

// Event is one accepted event, as received.
type Event struct {
	// RoutingKey is kept as sent so tests can check that it leaks nowhere else.
	RoutingKey string `json:"routing_key"`
	Action     string `json:"event_action"`
	// DedupKey is the key answered: the one sent, or the one generated for a
	// trigger that had none.
	DedupKey  string            `json:"dedup_key"`
	Payload   Payload           `json:"payload"`
	Links     []json.RawMessage `json:"links,omitempty"`
	Images    []json.RawMessage `json:"images,omitempty"`
	Client    string            `json:"client,omitempty"`
	ClientURL string            `json:"client_url,omitempty"`
	Received  time.Time         `json:"received"`
	Raw       json.RawMessage   `json:"raw"` // the body as sent
}

// Payload is the PD-CEF part of an event; only triggers must carry one.
type Payload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp,omitempty"`
	Component     string          `json:"component,omitempty"`
	Group         string          `json:"group,omitempty"`
	Class         string          `json:"class,omitempty"`
	CustomDetails json.RawMessage `json:"custom_details,omitempty"`
}

// clone returns a deep copy so callers of Events cannot alter what was recorded.
func (e Event) clone() Event {
	e.Links = cloneRawList(e.Links)
	e.Images = cloneRawList(e.Images)
	e.Raw = bytes.Clone(e.Raw)
	e.Payload.CustomDetails = bytes.Clone(e.Payload.CustomDetails)
	return e
}

// redacted is the copy served by the control surface: the routing key is a
// secret, in the field and in the raw body alike.
func (e Event) redacted() Event {
	e = e.clone()
	e.RoutingKey = redactedRoutingKey
	e.Raw = redactRawRoutingKey(e.Raw)
	return e
}

func cloneRawList(list []json.RawMessage) []json.RawMessage {
	if list == nil {
		return nil
	}
	out := make([]json.RawMessage, len(list))
	for i, m := range list {
		out[i] = bytes.Clone(m)
	}
	return out
}

// redactRawRoutingKey rewrites the routing_key member of a JSON object. The raw
// body was a valid object when it was accepted, so failure is not expected; if
// it happens anyway the body is dropped rather than served with the secret.
func redactRawRoutingKey(raw json.RawMessage) json.RawMessage {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil
	}
	if _, ok := members["routing_key"]; ok {
		members["routing_key"] = json.RawMessage(`"` + redactedRoutingKey + `"`)
	}
	out, err := json.Marshal(members)
	if err != nil {
		return nil
	}
	return out
}

// errUnrecognized is a body that is not a JSON object at all; PagerDuty answers
// it with a different status line than an invalid event.
type errUnrecognized struct{ reason string }

func (e errUnrecognized) Error() string { return e.reason }

// parseEvent decodes and validates one enqueue body. It returns either the
// event (dedup key not yet generated) or every problem found, worded the way
// PagerDuty words them ("'payload.summary' is missing or blank"). A body that
// is not a JSON object yields an errUnrecognized.
func parseEvent(body []byte) (Event, []string, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return Event{}, nil, errUnrecognized{reason: "JSON parse error"}
	}
	d := decoder{members: members, wrongType: map[string]bool{}}
	ev := Event{
		RoutingKey: d.str("routing_key"),
		Action:     d.str("event_action"),
		DedupKey:   d.str("dedup_key"),
		Client:     d.str("client"),
		ClientURL:  d.str("client_url"),
		Links:      d.list("links"),
		Images:     d.list("images"),
		Raw:        bytes.Clone(body),
	}
	if payload, ok := d.payloadMembers(); ok {
		ev.Payload = d.payload(payload)
	}
	problems := append(d.problems, validate(ev, d.presence())...)
	if len(problems) > 0 {
		return Event{}, problems, nil
	}
	return ev, nil, nil
}

// payload decodes the payload object with the same decoder, so its problems
// and wrongly typed fields are reported alongside the top-level ones.
func (d *decoder) payload(members map[string]json.RawMessage) Payload {
	outer := d.members
	d.members, d.prefix = members, "payload."
	defer func() { d.members, d.prefix = outer, "" }()
	return Payload{
		Summary:       d.str("summary"),
		Source:        d.str("source"),
		Severity:      d.str("severity"),
		Timestamp:     d.str("timestamp"),
		Component:     d.str("component"),
		Group:         d.str("group"),
		Class:         d.str("class"),
		CustomDetails: d.raw("custom_details"),
	}
}

// seen is what the decoder learnt beyond values: whether a payload was sent,
// and which fields had the wrong JSON type (those are reported once, as a type
// problem, and not again as missing).
type seen struct {
	payload   bool
	wrongType map[string]bool
}

// validate applies the documented rules to a decoded event.
func validate(ev Event, s seen) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch {
	case s.wrongType["routing_key"]:
	case blank(ev.RoutingKey):
		add("'routing_key' is missing or blank")
	case utf8.RuneCountInString(ev.RoutingKey) != RoutingKeyLen:
		add("Length of 'routing_key' is incorrect (should be %d characters)", RoutingKeyLen)
	}
	switch {
	case s.wrongType["event_action"]:
	case blank(ev.Action):
		add("'event_action' is missing or blank")
	case !oneOf(ev.Action, validActions):
		add("'event_action' is invalid (must be one of: %s)", strings.Join(validActions, ", "))
	}
	switch n := utf8.RuneCountInString(ev.DedupKey); {
	case s.wrongType["dedup_key"]:
	case n > MaxDedupKeyChars:
		add("'dedup_key' is too long (maximum is %d characters, got %d)", MaxDedupKeyChars, n)
	case (ev.Action == ActionAcknowledge || ev.Action == ActionResolve) && blank(ev.DedupKey):
		add("'dedup_key' is missing or blank (required for %s)", ev.Action)
	}
	if ev.Action == ActionTrigger {
		problems = append(problems, validateTriggerPayload(ev.Payload, s)...)
	}
	return problems
}

func validateTriggerPayload(p Payload, s seen) []string {
	switch {
	case s.wrongType["payload"]:
		return nil
	case !s.payload:
		return []string{"'payload' is missing (required for trigger)"}
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch n := utf8.RuneCountInString(p.Summary); {
	case s.wrongType["payload.summary"]:
	case blank(p.Summary):
		add("'payload.summary' is missing or blank")
	case n > MaxSummaryChars:
		add("'payload.summary' is too long (maximum is %d characters, got %d)", MaxSummaryChars, n)
	}
	switch {
	case s.wrongType["payload.source"]:
	case blank(p.Source):
		add("'payload.source' is missing or blank")
	}
	switch {
	case s.wrongType["payload.severity"]:
	case blank(p.Severity):
		add("'payload.severity' is missing or blank")
	case !oneOf(p.Severity, validSeverities):
		add("'payload.severity' is invalid (must be one of: %s)", strings.Join(validSeverities, ", "))
	}
	return problems
}

// decoder reads members of one JSON object and collects type problems instead
// of stopping at the first, so a 400 names every one of them.
type decoder struct {
	members    map[string]json.RawMessage
	prefix     string
	problems   []string
	wrongType  map[string]bool
	hasPayload bool
}

func (d *decoder) presence() seen { return seen{payload: d.hasPayload, wrongType: d.wrongType} }

// present reports whether name is there and not JSON null (null is treated as
// absent, the way most JSON APIs do).
func (d *decoder) present(name string) (json.RawMessage, bool) {
	v, ok := d.members[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

// decode unmarshals member name into dst; a type mismatch becomes a problem.
func (d *decoder) decode(name, want string, dst any) bool {
	v, ok := d.present(name)
	if !ok {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		d.problems = append(d.problems, fmt.Sprintf("'%s%s' must be %s", d.prefix, name, want))
		d.wrongType[d.prefix+name] = true
		return false
	}
	return true
}

func (d *decoder) str(name string) string {
	var s string
	d.decode(name, "a string", &s)
	return s
}

func (d *decoder) list(name string) []json.RawMessage {
	var l []json.RawMessage
	d.decode(name, "an array", &l)
	return l
}

// payloadMembers reads the payload object, remembering that one was sent.
func (d *decoder) payloadMembers() (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if !d.decode("payload", "an object", &m) {
		return nil, false
	}
	d.hasPayload = true
	return m, true
}

func (d *decoder) raw(name string) json.RawMessage {
	v, _ := d.present(name)
	return bytes.Clone(v)
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

// newDedupKey makes a key for a trigger sent without one; PagerDuty uses a
// random UUID, written here as 32 hex digits.
func newDedupKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}
