package config

import "time"

// Public is the compiled public: block; nil in Config when there is none.
type Public struct {
	Listen  string
	Title   string
	LogoURL string
	URL     string // "" : from each request
	// Products has an entry for every product of the config, in the config's order
	// (by priority), with the defaults filled in.
	Products []PublicProduct
	Sync     *StatusSync // nil: off
}

// PublicProduct is one component group of the public page.
type PublicProduct struct {
	Name          string // the product's config name
	Title         string
	Description   string
	DegradedMeans string
	JourneysShown []string
}

// StatusSync is the compiled public.sync: block.
type StatusSync struct {
	URL        string
	PageID     string
	APIKey     Secret
	Components map[string]map[string]string // product -> region -> component id
	Every      time.Duration
}

// Comms is the compiled comms: block; nil in Config when there is none.
type Comms struct {
	Every         time.Duration // 0 with no Notify: no update-due messages
	Notify        []string
	UpdatesNotify []string
	Renotify      time.Duration // 0: no reminders
}

// Defaults of the public: and comms: blocks.
const (
	DefaultPublicTitle = "Service status"
	DefaultSyncURL     = "https://api.statuspage.io/v1"
	DefaultSyncEvery   = 5 * time.Minute
	DefaultCommsEvery  = 30 * time.Minute
)

// ChatNotifiers keeps the names that are not pagers: reminders and communications go
// to chat and webhooks, never re-trigger a pager.
func (c *Config) ChatNotifiers(names []string) []string { return c.withoutPagers(names) }

// PublicProduct returns the public side of a product ("" title: not found).
func (p *Public) Product(name string) PublicProduct {
	for _, pp := range p.Products {
		if pp.Name == name {
			return pp
		}
	}
	return PublicProduct{Name: name, Title: name}
}

// SecretValues are the values of every secret, for a redactor of what leaves the
// process (the public page scrubs its answers with them, though none should be there).
func (c *Config) SecretValues() []string {
	if c.Secrets == nil {
		return nil
	}
	out := make([]string, 0, len(c.Secrets.values))
	for _, v := range c.Secrets.values {
		out = append(out, v)
	}
	return out
}
