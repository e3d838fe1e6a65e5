package config

import "time"

// PublicSpec is the status page customers are shown, on a listener of its own: the
// products as components with a row per region, their uptime, incidents in plain
// words, a feed, a badge and a Statuspage-shaped JSON summary.
type PublicSpec struct {
	Listen  string `yaml:"listen"`   // host:port of the public page (never the admin listen)
	Title   string `yaml:"title"`    // default "Service status"
	LogoURL string `yaml:"logo_url"` // an http(s) image shown beside the title
	// URL is where customers reach the page (https://status.example.com): the feed's and
	// the summary's links; default: the scheme and Host of each request.
	URL      string                        `yaml:"url"`
	Products map[string]*PublicProductSpec `yaml:"products"`
	Sync     *StatusSyncSpec               `yaml:"sync"`
}

// PublicProductSpec is what customers read about one product.
type PublicProductSpec struct {
	Title         string   `yaml:"title"`          // the public name; default the product's title
	Description   string   `yaml:"description"`    // what it is
	DegradedMeans string   `yaml:"degraded_means"` // what "degraded" means for it, in customers' words
	JourneysShown []string `yaml:"journeys_shown"` // the critical user journeys listed as covered
}

// StatusSyncSpec pushes the components' states to a Statuspage-compatible API.
type StatusSyncSpec struct {
	URL    string `yaml:"url"`     // API base; default https://api.statuspage.io/v1
	PageID string `yaml:"page_id"` // the page whose components are set
	APIKey string `yaml:"api_key"` // a template, usually "{{.secret.statuspage_key}}"
	// Components maps product -> region -> the remote component's id.
	Components map[string]map[string]string `yaml:"components"`
	Every      *time.Duration               `yaml:"every"` // resend every state this often; default 5m
}

// CommsSpec is the communications cadence: reminders that a customer update is due,
// drafted from the evidence, and where human updates and reminders go.
type CommsSpec struct {
	Every         *time.Duration `yaml:"every"`          // an update is due this long after the last; default 30m
	Notify        []string       `yaml:"notify"`         // where "update due" goes (chat, not pagers)
	UpdatesNotify []string       `yaml:"updates_notify"` // where each human update is posted too
	Renotify      *time.Duration `yaml:"renotify"`       // open incidents remind their chat notifiers this often; 0: never
}
