package config

import (
	"time"

	"github.com/picket-dev/picket/probe/expect"
)

// File is the YAML schema, as written by a person. Keys are a contract (DESIGN.md):
// add keys, never rename them. Load turns a File into a Config.
type File struct {
	Vantage     string                   `yaml:"vantage"`
	Listen      string                   `yaml:"listen"`
	StateDir    string                   `yaml:"state_dir"`
	Concurrency int                      `yaml:"concurrency"`
	Defaults    Defaults                 `yaml:"defaults"`
	Secrets     map[string]*SecretRef    `yaml:"secrets"`
	Regions     map[string]*RegionSpec   `yaml:"regions"`
	Products    []*ProductSpec           `yaml:"products"`
	Notifiers   map[string]*NotifierSpec `yaml:"notifiers"`
	Routes      []*RouteSpec             `yaml:"routes"`
	BlastRadius BlastRadius              `yaml:"blast_radius"`
	Alerting    AlertingSpec             `yaml:"alerting"`
	Silences    []*SilenceSpec           `yaml:"silences"`
	SelfCheck   *SelfCheckSpec           `yaml:"self_check"`
	Heartbeat   *HeartbeatSpec           `yaml:"heartbeat"`
	API         APISpec                  `yaml:"api"`
	Shard       *ShardSpec               `yaml:"shard"`
	Cluster     *ClusterSpec             `yaml:"cluster"`
	Browser     *BrowserConfigSpec       `yaml:"browser"`
	Confirm     *ConfirmSpec             `yaml:"confirm"`

	Public *PublicSpec `yaml:"public"`
	Comms  *CommsSpec  `yaml:"comms"`

	// PublicListen is the old name of public.listen (deprecated; validate warns).
	PublicListen string `yaml:"public_listen"`
	// AllowedHosts are DNS names the listen address may be reached by, besides
	// localhost and IP literals (a DNS-rebinding defence: other Host headers are refused).
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// ClusterSpec makes this vantage a member of a fleet that agrees before paging.
type ClusterSpec struct {
	Bind          string         `yaml:"bind"`      // host:port to gossip on
	Advertise     string         `yaml:"advertise"` // host:port the others reach us at
	Peers         []string       `yaml:"peers"`     // host:port of other vantages
	Secret        string         `yaml:"secret"`    // a template, usually "{{.secret.gossip_key}}"
	Insecure      bool           `yaml:"insecure"`  // gossip in plaintext without a secret: anyone who reaches bind can join and vote
	Quorum        int            `yaml:"quorum"`    // vantages that must agree; 0: a majority of the live ones
	AloneAfter    *time.Duration `yaml:"alone_after"`
	TakeoverAfter *time.Duration `yaml:"takeover_after"`
	Notify        []string       `yaml:"notify"` // where "vantage X silent" notices go
	// Gossip timing; memberlist's LAN defaults fit a fleet across providers.
	GossipInterval   *time.Duration `yaml:"gossip_interval"`
	ProbeInterval    *time.Duration `yaml:"probe_interval"`
	PushPullInterval *time.Duration `yaml:"push_pull_interval"`
}

// ConfirmSpec: on a target's first failure, run it again at once, and once it fails,
// the targets that share its region or its product, so that thresholds and scope are
// known within seconds (see Confirm).
type ConfirmSpec struct {
	Enabled      *bool    `yaml:"enabled"`        // default true
	MaxPerSecond *float64 `yaml:"max_per_second"` // extra runs a second, at most; default 50
}

// ShardSpec makes this instance probe one share of the targets (by a stable hash of the
// target id), for target counts beyond one host.
type ShardSpec struct {
	Index int `yaml:"index"` // 0 to count-1
	Count int `yaml:"count"`
}

// Defaults apply to every journey that does not say otherwise.
type Defaults struct {
	RunSpec      `yaml:",inline"`
	MaxBodyBytes *int64 `yaml:"max_body_bytes"`
	MaxRedirects *int   `yaml:"max_redirects"`
	KeepAlive    *bool  `yaml:"keep_alive"` // HTTP steps reuse connections (see HTTPSpec)
}

// RunSpec is how often a journey runs, for how long, and how its runs are judged: said
// by the journey, else by defaults (the same keys in both places).
type RunSpec struct {
	Interval         *time.Duration `yaml:"interval"`
	Timeout          *time.Duration `yaml:"timeout"`
	FailureThreshold *int           `yaml:"failure_threshold"`
	SuccessThreshold *int           `yaml:"success_threshold"`
	FailureWindow    *WindowSpec    `yaml:"failure_window"`
	Retries          *int           `yaml:"retries"`
	DegradedAfter    *time.Duration `yaml:"degraded_after"`
}

// WindowSpec is "failures of the last runs": a target also fires when at least
// Failures of its last Runs runs failed, so one that fails every other run is paged
// although it never fails twice in a row. failures: 0 turns the window off.
type WindowSpec struct {
	Failures *int `yaml:"failures"`
	Runs     *int `yaml:"runs"`
}

// SecretRef says where a secret comes from: an environment variable or a file.
type SecretRef struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// RegionSpec is one isolated stack of the watched platform.
type RegionSpec struct {
	Title string            `yaml:"title"`
	Vars  map[string]string `yaml:"vars"`
}

// ProductSpec is what customers buy, with its critical user journeys.
type ProductSpec struct {
	Name     string         `yaml:"name"`
	Title    string         `yaml:"title"`
	Priority int            `yaml:"priority"`
	Regions  []string       `yaml:"regions"`
	Journeys []*JourneySpec `yaml:"journeys"`
}

// JourneySpec is ordered steps; each field left out takes its value from defaults.
type JourneySpec struct {
	Name    string `yaml:"name"`
	RunSpec `yaml:",inline"`
	Regions []string          `yaml:"regions"`
	Vars    map[string]string `yaml:"vars"`
	Steps   []*StepSpec       `yaml:"steps"`
}

// StepSpec is one request and what must hold of its answer.
type StepSpec struct {
	Name    string                  `yaml:"name"`
	Timeout *time.Duration          `yaml:"timeout"`
	HTTP    *HTTPSpec               `yaml:"http"`
	TCP     *TCPSpec                `yaml:"tcp"`
	DNS     *DNSSpec                `yaml:"dns"`
	TLS     *TLSCheckSpec           `yaml:"tls"`
	GRPC    *GRPCSpec               `yaml:"grpc"`
	ICMP    *ICMPSpec               `yaml:"icmp"`
	Browser *BrowserSpec            `yaml:"browser"`
	Expect  expect.Spec             `yaml:"expect"`
	Extract map[string]*ExtractSpec `yaml:"extract"`
	Poll    *PollSpec               `yaml:"poll"`
}

// HTTPSpec is an HTTP request. Strings may be templates.
type HTTPSpec struct {
	Method          string            `yaml:"method"`
	URL             string            `yaml:"url"`
	Body            string            `yaml:"body"`
	Headers         map[string]string `yaml:"headers"`
	MaxBodyBytes    *int64            `yaml:"max_body_bytes"`
	MaxRedirects    *int              `yaml:"max_redirects"`
	FollowRedirects *bool             `yaml:"follow_redirects"`
	// KeepAlive reuses connections between runs, as an SDK would, instead of opening a
	// fresh one every run (default false: a fresh connection measures and tests DNS,
	// connect and TLS each time).
	KeepAlive *bool    `yaml:"keep_alive"`
	TLS       *TLSSpec `yaml:"tls"`
}

// TLSSpec configures the client side of TLS for one step.
type TLSSpec struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// TCPSpec connects (optionally with TLS) and runs send / expect-line exchanges.
type TCPSpec struct {
	Address  string          `yaml:"address"` // host:port; a template
	TLS      *TLSSpec        `yaml:"tls"`     // set: TLS after connect
	Exchange []*ExchangeSpec `yaml:"exchange"`
}

// ExchangeSpec sends a line (if any) and then reads lines until one matches expect.
type ExchangeSpec struct {
	Send   string `yaml:"send"`   // a template; sent as written (add \r\n yourself)
	Expect string `yaml:"expect"` // regexp a received line must match; "" = read nothing
}

// DNSSpec queries a named server.
type DNSSpec struct {
	Server    string   `yaml:"server"`    // host:port (53, or 853 for tls, when no port)
	Name      string   `yaml:"name"`      // the name to query; a template
	Type      string   `yaml:"type"`      // A (default), AAAA, CNAME, MX, TXT, SRV, NS
	Transport string   `yaml:"transport"` // udp (default), tcp, tls
	Recursion *bool    `yaml:"recursion"` // RD flag; default true
	TLS       *TLSSpec `yaml:"tls_config"`
}

// TLSCheckSpec is a TLS handshake only: certificate and protocol facts.
type TLSCheckSpec struct {
	Address            string `yaml:"address"` // host:port; a template
	ServerName         string `yaml:"server_name"`
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// GRPCSpec calls the standard grpc.health.v1 Check.
type GRPCSpec struct {
	Address   string   `yaml:"address"` // host:port; a template
	Service   string   `yaml:"service"` // "" = the whole server
	TLS       *TLSSpec `yaml:"tls"`     // set: TLS; else plaintext
	Plaintext bool     `yaml:"plaintext"`
}

// ICMPSpec pings a host.
type ICMPSpec struct {
	Host       string        `yaml:"host"` // a template
	Count      int           `yaml:"count"`
	Interval   time.Duration `yaml:"interval"`
	Privileged bool          `yaml:"privileged"` // raw sockets; default unprivileged (UDP) ping
}

// ExtractSpec takes one value out of a step's answer into .vars; exactly one source.
type ExtractSpec struct {
	JSON   string `yaml:"json"`   // gjson path into the body
	Header string `yaml:"header"` // header name
	Regex  string `yaml:"regex"`  // regexp over the body; group 1 if any, else the match
	// Selector takes the text of the first element a CSS selector finds (browser steps).
	Selector string `yaml:"selector"`
}

// PollSpec repeats a step until its expectations hold.
type PollSpec struct {
	Every  time.Duration `yaml:"every"`
	Within time.Duration `yaml:"within"`
}

// NotifierSpec has exactly one kind set.
type NotifierSpec struct {
	PagerDuty *PagerDutySpec `yaml:"pagerduty"`
	Opsgenie  *OpsgenieSpec  `yaml:"opsgenie"`
	Slack     *SlackSpec     `yaml:"slack"`
	Teams     *TeamsSpec     `yaml:"teams"`
	Email     *EmailSpec     `yaml:"email"`
	Webhook   *WebhookSpec   `yaml:"webhook"`
	Timeout   *time.Duration `yaml:"timeout"`
	Rate      string         `yaml:"rate"` // "120/m": requests per period to its destination; "unlimited"
}

type PagerDutySpec struct {
	RoutingKey string `yaml:"routing_key"`
	EventsURL  string `yaml:"events_url"`
}

// OpsgenieSpec is an Opsgenie API integration (Alert API v2).
type OpsgenieSpec struct {
	APIKey string `yaml:"api_key"` // the integration's key: a secret
	Region string `yaml:"region"`  // us (default) or eu
	APIURL string `yaml:"api_url"` // instead of region: another host (a proxy, a test)
}

// SlackSpec is an incoming webhook (webhook_url) or a bot (token and channel).
type SlackSpec struct {
	WebhookURL string `yaml:"webhook_url"`
	Token      string `yaml:"token"`   // a bot token (xoxb-): chat.postMessage, threads, edits
	Channel    string `yaml:"channel"` // the bot's channel; ignored by incoming webhooks
	APIURL     string `yaml:"api_url"` // the bot's Web API base; default https://slack.com/api
}

// TeamsSpec is a Microsoft Teams Workflows webhook ("When a Teams webhook request is
// received"); its URL carries the signature, so it is a secret.
type TeamsSpec struct {
	URL string `yaml:"url"`
}

// EmailSpec sends mail through an SMTP server.
type EmailSpec struct {
	Host          string   `yaml:"host"`
	Port          int      `yaml:"port"` // default 587 (starttls), 465 (implicit), 25 (none)
	TLS           string   `yaml:"tls"`  // starttls (default), implicit, none
	Username      string   `yaml:"username"`
	Password      string   `yaml:"password"` // a secret
	Auth          string   `yaml:"auth"`     // plain, login; default: plain if offered, else login
	From          string   `yaml:"from"`
	To            []string `yaml:"to"`
	SubjectPrefix string   `yaml:"subject_prefix"`
}

type WebhookSpec struct {
	URL         string            `yaml:"url"`
	Headers     map[string]string `yaml:"headers"`
	Body        string            `yaml:"body"`         // a template of the body; default the JSON payload
	ContentType string            `yaml:"content_type"` // of body; default application/json
}

// RouteSpec sends matching incidents to notifiers; fallback when they keep failing.
type RouteSpec struct {
	Match         MatchSpec      `yaml:"match"`
	Notify        []string       `yaml:"notify"`
	Fallback      []string       `yaml:"fallback"`
	FallbackAfter *time.Duration `yaml:"fallback_after"`
	Continue      bool           `yaml:"continue"`
}

// MatchSpec: every non-empty list must contain the incident's value.
type MatchSpec struct {
	Scope    []string `yaml:"scope"`
	Product  []string `yaml:"product"`
	Priority []int    `yaml:"priority"`
	Region   []string `yaml:"region"`
}

// BlastRadius sets when failures add up to a wider scope.
type BlastRadius struct {
	RegionMinProducts int `yaml:"region_min_products"`
	ProductMinRegions int `yaml:"product_min_regions"`
	GlobalMinRegions  int `yaml:"global_min_regions"`
}

// AlertingSpec holds alerting knobs that are not per journey.
type AlertingSpec struct {
	Degraded      string         `yaml:"degraded"` // page | notify | ignore
	FallbackAfter *time.Duration `yaml:"fallback_after"`
	GroupWait     *time.Duration `yaml:"group_wait"`
	StatusURL     string         `yaml:"status_url"`
	// OutboxMaxEntries bounds the outbox (entries not yet delivered); default 10,000.
	OutboxMaxEntries *int `yaml:"outbox_max_entries"`
}

// SilenceSpec mutes matching incidents during a window (a maintenance).
type SilenceSpec struct {
	Comment string    `yaml:"comment"`
	Start   string    `yaml:"start"` // RFC 3339
	End     string    `yaml:"end"`
	Match   MatchSpec `yaml:"match"`
}

// SelfCheckSpec lists targets that share nothing with the platform.
type SelfCheckSpec struct {
	Targets  []string       `yaml:"targets"` // URLs or host:port
	Interval *time.Duration `yaml:"interval"`
	Timeout  *time.Duration `yaml:"timeout"`
	MinOK    int            `yaml:"min_ok"`
	Notify   []string       `yaml:"notify"`
}

// HeartbeatSpec is a dead man's switch.
type HeartbeatSpec struct {
	URL   string        `yaml:"url"`
	Every time.Duration `yaml:"every"`
}

// APISpec guards the write API.
type APISpec struct {
	Token string `yaml:"token"` // a template, usually "{{.secret.api_token}}"
}

// BrowserConfigSpec sets up the headless browsers that browser steps run in.
type BrowserConfigSpec struct {
	Path               string `yaml:"path"`                 // Chromium or Chrome; default: found on PATH
	Pool               *int   `yaml:"pool"`                 // browser processes, one run each at a time; default 2
	MaxMemoryMB        *int   `yaml:"max_memory_mb"`        // a browser over it is killed and replaced; default 1024
	NoSandbox          bool   `yaml:"no_sandbox"`           // for containers without user namespaces (as root it is implied)
	KeepScreenshots    *int   `yaml:"keep_screenshots"`     // failure screenshots kept in state_dir; default 200, 0: none
	MaxScreenshotBytes *int   `yaml:"max_screenshot_bytes"` // a bigger PNG is retaken at half scale, then dropped; default 1 MiB
}

// BrowserSpec is a scripted visit with a real browser: ordered actions in one fresh
// incognito context.
type BrowserSpec struct {
	Actions       []*BrowserActionSpec `yaml:"actions"`
	ActionTimeout *time.Duration       `yaml:"action_timeout"` // each waiting action's; default 5s
	Viewport      *ViewportSpec        `yaml:"viewport"`       // default 1280x800
}

// ViewportSpec is the browser window's size in CSS pixels.
type ViewportSpec struct {
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
}

// BrowserActionSpec is one action; exactly one key is set.
type BrowserActionSpec struct {
	Navigate    string          `yaml:"navigate"`     // URL; a template
	WaitVisible *SelectorSpec   `yaml:"wait_visible"` // "#id" or {selector, timeout}
	Click       *SelectorSpec   `yaml:"click"`
	Type        *TypeSpec       `yaml:"type"`
	Expect      *PageExpectSpec `yaml:"expect"`
}

// SelectorSpec is a CSS selector, written alone or with its own timeout.
type SelectorSpec struct {
	Selector string         `yaml:"selector"`
	Timeout  *time.Duration `yaml:"timeout"`
}

// fromScalar lets `wait_visible: "#welcome"` stand for {selector: "#welcome"}.
func (s *SelectorSpec) fromScalar(v string) { s.Selector = v }

// TypeSpec types text (a template: secrets allowed, never shown) into an element.
type TypeSpec struct {
	Selector string         `yaml:"selector"`
	Text     string         `yaml:"text"`
	Timeout  *time.Duration `yaml:"timeout"`
}

// PageExpectSpec waits until the page shows something: text (in selector, or anywhere),
// an element (selector alone), a title or a URL (each a substring; templates).
type PageExpectSpec struct {
	Selector string         `yaml:"selector"`
	Text     string         `yaml:"text"`
	Title    string         `yaml:"title"`
	URL      string         `yaml:"url"`
	Timeout  *time.Duration `yaml:"timeout"`
}
