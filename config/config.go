// Package config loads Picket's YAML strictly: every problem is reported at once as
// FILE:LINE:COL, templates and expectations are compiled at load, secrets are resolved
// and wrapped, and products x regions x journeys are expanded into targets. A Config is
// immutable once loaded.
package config

import (
	"crypto/tls"
	"regexp"
	"time"

	"github.com/picket-dev/picket/probe/expect"
	"github.com/picket-dev/picket/probe/tmpl"
)

// Built-in defaults, used where neither the journey nor `defaults:` says.
const (
	DefaultInterval         = 30 * time.Second
	DefaultTimeout          = 10 * time.Second
	DefaultFailureThreshold = 2
	DefaultSuccessThreshold = 2
	// MaxWindowRuns bounds failure_window.runs: a target's recent outcomes are one word.
	MaxWindowRuns        = 64
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxRedirects  = 10
	DefaultListen        = "127.0.0.1:9115"
	DefaultStateDir      = "./picket-state"
	DefaultConcurrency   = 64
	DefaultFallbackAfter = 2 * time.Minute
)

// Config is a loaded, validated, compiled configuration.
type Config struct {
	Path        string
	Vantage     string
	Listen      string
	StateDir    string
	Concurrency int
	Regions     []Region  // as written
	Products    []Product // by priority, then as written
	Targets     []*Target // products x regions x journeys
	Notifiers   map[string]*Notifier
	Routes      []Route
	BlastRadius BlastRadius
	Alerting    Alerting
	Silences    []Silence
	SelfCheck   *SelfCheck
	Heartbeat   *HeartbeatSpec
	APIToken    Secret
	Secrets     *Secrets
	Shard       *Shard // nil: every target
	// AllTargets are every target of the file, also when Shard leaves only some in
	// Targets: a fleet's engine judges all of them from the vantages' shared verdicts.
	AllTargets []*Target
	Cluster    *Cluster // nil: a lone vantage
	// Browser sets up the browsers of browser steps (shared by every such step).
	Browser *BrowserSettings
	Confirm Confirm
	// Warnings are problems that do not stop a load, as FILE:LINE:COL (validate prints
	// them and still exits 0; the daemon logs them at start and reload).
	Warnings []Error

	// PublicListen is the address of the public status page (public.listen, or the
	// deprecated public_listen); "": none.
	PublicListen string
	Public       *Public // nil: no public page
	Comms        *Comms  // nil: no communications cadence
	// AllowedHosts are the extra names of the listen address, as NormalHost.
	AllowedHosts []string
}

// Cluster makes this vantage one member of a fleet (see alert/cluster).
type Cluster struct {
	Member        string // the vantage, with "#INDEX" when sharded: unique per instance
	Bind          string
	Advertise     string
	Peers         []string
	Secret        Secret // the gossip key: 16, 24 or 32 bytes (raw or base64); empty only with Insecure
	Insecure      bool   // no secret, on purpose: plaintext gossip that anyone who reaches Bind can join
	Quorum        int    // 0: a majority of the live vantages
	AloneAfter    time.Duration
	TakeoverAfter time.Duration
	Notify        []string

	GossipInterval, ProbeInterval, PushPullInterval time.Duration // 0: memberlist's defaults
}

// Defaults of the cluster: block.
const (
	DefaultClusterBind   = "0.0.0.0:7946"
	DefaultAloneAfter    = 2 * time.Minute
	DefaultTakeoverAfter = 15 * time.Second
)

// Region is one isolated stack of the platform.
type Region struct {
	Name  string
	Title string
	Vars  map[string]string
}

// Product is what a status page lists.
type Product struct {
	Name     string
	Title    string
	Priority int
	Regions  []string
	Journeys []string
}

// Target is one journey in one region: what is scheduled, probed and alerted on.
type Target struct {
	ID               string // product/journey@region
	Product          string
	ProductTitle     string
	Journey          string
	Region           string
	Priority         int
	Interval         time.Duration
	Timeout          time.Duration
	DegradedAfter    time.Duration
	FailureThreshold int
	SuccessThreshold int
	// FailureWindow also fires the target on Failures of its last Runs runs, and holds a
	// target that fires again within Runs runs of recovering as flapping.
	FailureWindow Window
	Retries       int
	Steps         []*Step // shared between the regions of one journey; read-only
	JourneyVars   map[string]string
	// Fingerprint changes when anything that decides how the target is probed changes;
	// a reload keeps the state of targets whose fingerprint did not change.
	Fingerprint string

	regionData map[string]string
	secrets    *Secrets
	vantage    string
}

// TemplateData builds the data a run's templates see; vars is the run's own map, which
// the journey fills as steps extract values.
func (t *Target) TemplateData(run map[string]string, vars map[string]string) tmpl.Data {
	return tmpl.Data{
		"region":  t.regionData,
		"secret":  t.secrets.templateData(),
		"vars":    vars,
		"run":     run,
		"product": t.Product,
		"journey": t.Journey,
		"vantage": t.vantage,
	}
}

// Redact removes every secret of the config from text.
func (t *Target) Redact(text string) string { return t.secrets.Redact(text) }

// Step is one compiled step.
type Step struct {
	Name    string
	Timeout time.Duration // 0: the journey's deadline only
	HTTP    *HTTPRequest
	TCP     *TCPRequest
	DNS     *DNSQuery
	TLS     *TLSCheck
	GRPC    *GRPCCheck
	ICMP    *ICMPCheck
	Browser *BrowserStep
	Checks  *expect.Checks
	// ExpectsStatus is false when expect: says nothing of the status; the prober then
	// wants 2xx or 3xx.
	ExpectsStatus bool
	Extract       []Extractor
	Poll          *PollSpec
}

// Kind names the protocol of the step, for output and metrics.
func (s *Step) Kind() string {
	switch {
	case s.HTTP != nil:
		return "http"
	case s.TCP != nil:
		return "tcp"
	case s.DNS != nil:
		return "dns"
	case s.TLS != nil:
		return "tls"
	case s.GRPC != nil:
		return "grpc"
	case s.ICMP != nil:
		return "icmp"
	case s.Browser != nil:
		return "browser"
	}
	return "none"
}

// TCPRequest is a compiled tcp step.
type TCPRequest struct {
	Address    *tmpl.Template
	TLS        *tls.Config    // nil: plain TCP
	ServerName *tmpl.Template // a templated tls.server_name; nil: in TLS or the host
	Exchange   []Exchange
}

// Exchange is one send / expect pair of a tcp step.
type Exchange struct {
	Send   *tmpl.Template // nil: send nothing
	Expect *regexp.Regexp // nil: read nothing
}

// DNSQuery is a compiled dns step.
type DNSQuery struct {
	Server    string
	Name      *tmpl.Template
	Type      uint16 // miekg/dns type code
	TypeName  string
	Transport string // udp, tcp, tls
	Recursion bool
	TLS       *tls.Config // for transport tls
}

// TLSCheck is a compiled tls (handshake only) step.
type TLSCheck struct {
	Address    *tmpl.Template
	Config     *tls.Config    // ServerName empty: taken from the address's host
	ServerName *tmpl.Template // a templated server_name, rendered per run
}

// GRPCCheck is a compiled grpc health step.
type GRPCCheck struct {
	Address *tmpl.Template
	Service string
	TLS     *tls.Config // nil: plaintext
}

// ICMPCheck is a compiled icmp step.
type ICMPCheck struct {
	Host       *tmpl.Template
	Count      int
	Interval   time.Duration
	Privileged bool
}

// HTTPRequest is a compiled HTTP step.
type HTTPRequest struct {
	Method          string
	URL             *tmpl.Template
	Body            *tmpl.Template
	Headers         []Header
	MaxBodyBytes    int64
	MaxRedirects    int
	FollowRedirects bool
	KeepAlive       bool           // reuse connections between runs (pooled per host)
	TLS             *tls.Config    // nil: Go's defaults
	ServerName      *tmpl.Template // a templated tls.server_name, rendered per run; nil: in TLS
}

// Header is one request header whose value may be a template.
type Header struct {
	Name  string
	Value *tmpl.Template
}

// Extractor takes one value from a step's answer.
type Extractor struct {
	Name   string
	JSON   string
	Header string
	Regex  *regexp.Regexp
	// Selector: the text of the first element it finds (browser steps only).
	Selector string
}

// Notifier is a compiled notifier: exactly one of the kinds is set.
type Notifier struct {
	Name      string
	Timeout   time.Duration // one attempt's; the outbox honours it
	Rate      Rate          // the pace of its destination; the zero Rate is unlimited
	PagerDuty *PagerDuty
	Opsgenie  *Opsgenie
	Slack     *Slack
	Teams     *Teams
	Email     *Email
	Webhook   *Webhook
}

// Kind names the notifier's kind.
func (n *Notifier) Kind() string {
	switch {
	case n.PagerDuty != nil:
		return "pagerduty"
	case n.Opsgenie != nil:
		return "opsgenie"
	case n.Slack != nil:
		return "slack"
	case n.Teams != nil:
		return "teams"
	case n.Email != nil:
		return "email"
	case n.Webhook != nil:
		return "webhook"
	}
	return "none"
}

// IsPager reports whether the notifier pages a person (PagerDuty, Opsgenie) rather
// than posting to a channel: degraded incidents are kept from pagers.
func (n *Notifier) IsPager() bool { return IsPagerKind(n.Kind()) }

// IsPagerKind reports whether notifiers of kind page a person.
func IsPagerKind(kind string) bool { return kind == "pagerduty" || kind == "opsgenie" }

type PagerDuty struct {
	RoutingKey Secret
	EventsURL  string // "" means PagerDuty's own
}

// Opsgenie is an Opsgenie API integration.
type Opsgenie struct {
	APIKey Secret
	APIURL string // https://api.opsgenie.com, https://api.eu.opsgenie.com, or api_url
}

// Slack posts through an incoming webhook (WebhookURL) or as a bot (Token).
type Slack struct {
	WebhookURL Secret // the URL is the credential
	Token      Secret // a bot token: chat.postMessage and chat.update
	Channel    string
	APIURL     string // the bot's Web API base, without a trailing slash
}

// Teams posts Adaptive Cards to a Teams Workflows webhook.
type Teams struct {
	URL Secret // the URL (its sig) is the credential
}

// Email sends through one SMTP server.
type Email struct {
	Host          string
	Port          int
	TLS           string // starttls, implicit or none
	Username      string
	Password      Secret
	Auth          string // plain, login, or "" (plain if offered, else login)
	From          string
	To            []string
	SubjectPrefix string
}

// Email TLS modes.
const (
	EmailStartTLS = "starttls"
	EmailImplicit = "implicit"
	EmailNoTLS    = "none"
)

type Webhook struct {
	URL     Secret
	Headers map[string]Secret
	// Body, when set, renders the body instead of the JSON payload, over the
	// notification's fields (WebhookBodyData); ContentType is its type.
	Body        *tmpl.Template
	ContentType string
}

// Route is a compiled route.
type Route struct {
	Match         Match
	Notify        []string
	Fallback      []string
	FallbackAfter time.Duration
	Continue      bool
}

// Match: an empty list matches anything.
type Match struct {
	Scope    []string
	Product  []string
	Priority []int
	Region   []string
}

// Window is a compiled failure_window: Failures of the last Runs runs (Failures 0: off).
type Window struct {
	Failures, Runs int
}

// DefaultWindow scales with the failure threshold: failing half of 5 × threshold runs
// fires (every other run, at threshold 2: the 9th run), while a path that loses one run
// in ten almost never does (P(5 of 10) ≈ 0.15 % per run, less than 2 in a row's 1 %).
func DefaultWindow(failureThreshold int) Window {
	runs := min(5*max(failureThreshold, 1), MaxWindowRuns)
	return Window{Failures: (runs + 1) / 2, Runs: runs}
}

// Alerting holds compiled alerting knobs.
type Alerting struct {
	Degraded      string // page | notify | ignore
	FallbackAfter time.Duration
	// GroupWait holds a new incident's first page so that targets failing together are
	// paged as one wider incident. Default: the shortest journey interval, at most 30s.
	GroupWait time.Duration
	StatusURL string
	// OutboxMaxEntries bounds the outbox: past it the least important entries are
	// dropped, never the first page of a global or regional outage.
	OutboxMaxEntries int
}

// Silence mutes matching incidents between Start and End.
type Silence struct {
	Comment    string
	Start, End time.Time
	Match      Match
}

// SelfCheck is the "is it them or is it us" check.
type SelfCheck struct {
	Targets  []string
	Interval time.Duration
	Timeout  time.Duration
	MinOK    int
	Notify   []string
}

// Scopes are the widths a problem can have, narrowest first.
var Scopes = []string{"target", "region", "product", "global"}
