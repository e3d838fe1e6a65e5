package config

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

// buildPublic compiles public: (and the deprecated public_listen, which is its listen
// address) once products and notifiers are known.
func (b *builder) buildPublic() {
	f, cfg := b.f, b.cfg
	spec := f.Public
	if spec == nil && f.PublicListen == "" {
		return
	}
	if spec == nil {
		spec = &PublicSpec{} // public_listen alone: the public page with its defaults
	}
	pub := &Public{Listen: spec.Listen, Title: orDefault(spec.Title, DefaultPublicTitle), LogoURL: spec.LogoURL, URL: spec.URL}
	switch {
	case f.PublicListen != "" && spec.Listen != "":
		b.d.errorf(b.d.at(f, "public_listen"), "public_listen and public.listen are both set: public_listen is the old name of public.listen; keep public.listen only")
	case f.PublicListen != "":
		pub.Listen = f.PublicListen
		b.checkPublicListen(f, "public_listen", "public_listen", f.PublicListen)
	case spec.Listen == "":
		b.d.errorf(b.d.at(spec, ""), "public.listen is required: the address of the public status page, a listener of its own (for example 0.0.0.0:8080)")
	default:
		b.checkPublicListen(spec, "listen", "public.listen", spec.Listen)
	}
	cfg.PublicListen = pub.Listen
	if spec.LogoURL != "" {
		b.checkURL(spec, "logo_url", spec.LogoURL)
	}
	if spec.URL != "" {
		b.checkURL(spec, "url", spec.URL)
	}
	pub.Products = b.publicProducts(spec)
	pub.Sync = b.buildSync(spec.Sync)
	cfg.Public = pub
}

// checkPublicListen: host:port, and not the admin listen address.
func (b *builder) checkPublicListen(owner any, key, name, addr string) {
	if err := hostPort(addr, true); err != nil {
		b.d.errorf(b.d.at(owner, key), "%s %q: %v", name, addr, err)
		return
	}
	if sameListenAddr(b.cfg.Listen, addr) {
		b.d.errorf(b.d.at(owner, key), "%s %q is the listen address: the public status page needs its own address (the admin one stays on listen)", name, addr)
	}
}

// publicProducts gives every product its public side; public.products may only name
// products and journeys that exist.
func (b *builder) publicProducts(spec *PublicSpec) []PublicProduct {
	node := b.d.value(spec, "products")
	for _, name := range keysInOrder(node) {
		p := b.product(name)
		if p == nil {
			b.d.errorf(keyAt(node, name), "public.products: product %q is not defined under products: (defined: %s)", name, joinNames(b.productNames()))
			continue
		}
		if ps := spec.Products[name]; ps != nil {
			b.checkJourneysShown(ps, p)
		}
	}
	out := make([]PublicProduct, 0, len(b.cfg.Products))
	for _, p := range b.cfg.Products {
		pp := PublicProduct{Name: p.Name, Title: p.Title}
		if ps := spec.Products[p.Name]; ps != nil {
			pp.Title = orDefault(ps.Title, p.Title)
			pp.Description, pp.DegradedMeans, pp.JourneysShown = ps.Description, ps.DegradedMeans, ps.JourneysShown
		}
		out = append(out, pp)
	}
	return out
}

func (b *builder) checkJourneysShown(ps *PublicProductSpec, p *Product) {
	list := b.d.at(ps, "journeys_shown")
	for i, j := range ps.JourneysShown {
		if !slices.Contains(p.Journeys, j) {
			b.d.errorf(item(list, i), "journeys_shown: journey %q is not a journey of product %s (journeys: %s)", j, p.Name, joinNames(p.Journeys))
		}
	}
}

// product is the compiled product of that name (nil: none).
func (b *builder) product(name string) *Product {
	for i := range b.cfg.Products {
		if b.cfg.Products[i].Name == name {
			return &b.cfg.Products[i]
		}
	}
	return nil
}

func (b *builder) productNames() []string {
	names := make([]string, len(b.cfg.Products))
	for i, p := range b.cfg.Products {
		names[i] = p.Name
	}
	return names
}

// buildSync compiles public.sync: every mapped component must be a product offered in
// that region, with an id.
func (b *builder) buildSync(spec *StatusSyncSpec) *StatusSync {
	if spec == nil {
		return nil
	}
	s := &StatusSync{URL: orDefault(spec.URL, DefaultSyncURL), PageID: spec.PageID,
		Components: map[string]map[string]string{}, Every: pickDur(spec.Every, nil, DefaultSyncEvery)}
	if spec.URL != "" {
		b.checkURL(spec, "url", spec.URL)
	}
	if spec.PageID == "" {
		b.d.errorf(b.d.at(spec, ""), "public.sync.page_id is required: the id of the page whose components are set")
	}
	if spec.APIKey == "" {
		b.d.errorf(b.d.at(spec, ""), "public.sync.api_key is required, usually \"{{.secret.statuspage_key}}\"")
	} else {
		s.APIKey = b.secretValue(spec, "api_key", spec.APIKey)
	}
	b.positiveDuration(spec, "every", spec.Every)
	node := b.d.value(spec, "components")
	if len(spec.Components) == 0 {
		b.d.errorf(b.d.at(spec, ""), "public.sync.components is required: product -> region -> the remote component's id")
	}
	for _, product := range keysInOrder(node) {
		s.Components[product] = b.syncRegions(node, product, spec.Components[product])
	}
	return s
}

func (b *builder) syncRegions(mapping *yaml.Node, product string, regions map[string]string) map[string]string {
	p := b.product(product)
	out := map[string]string{}
	if p == nil {
		b.d.errorf(keyAt(mapping, product), "public.sync.components: product %q is not defined under products:", product)
		return out
	}
	rows := valueAt(mapping, product)
	for _, region := range keysInOrder(rows) {
		switch id := regions[region]; {
		case !slices.Contains(p.Regions, region):
			b.d.errorf(keyAt(rows, region), "public.sync.components.%s: region %q is not one of the product's regions (%s)", product, region, joinNames(p.Regions))
		case id == "":
			b.d.errorf(keyAt(rows, region), "public.sync.components.%s.%s: the component id is empty", product, region)
		default:
			out[region] = id
		}
	}
	return out
}

// buildComms compiles comms: its notifiers must exist and must not be pagers (a
// reminder to write a customer update is nobody's page).
func (b *builder) buildComms() {
	spec := b.f.Comms
	if spec == nil {
		return
	}
	c := &Comms{
		Notify:        b.chatList(spec, "notify", spec.Notify),
		UpdatesNotify: b.chatList(spec, "updates_notify", spec.UpdatesNotify),
		Renotify:      pickDur(spec.Renotify, nil, 0),
	}
	b.positiveDuration(spec, "every", spec.Every)
	b.positiveDuration(spec, "renotify", spec.Renotify)
	switch {
	case len(spec.Notify) > 0:
		c.Every = pickDur(spec.Every, nil, DefaultCommsEvery)
	case spec.Every != nil:
		b.d.errorf(b.d.at(spec, "every"), "comms.every needs comms.notify: the chat notifiers that hear an update is due")
	}
	b.cfg.Comms = c
}

// chatList checks a list of notifier names that must exist and not be pagers.
func (b *builder) chatList(owner any, key string, names []string) []string {
	list := b.d.at(owner, key)
	for i, name := range b.notifierList(owner, key, names) {
		if nf := b.cfg.Notifiers[name]; nf != nil && len(b.cfg.withoutPagers([]string{name})) == 0 {
			b.d.errorf(item(list, i), "comms.%s: notifier %q is a pager (%s); communications go to chat or webhook notifiers", key, name, nf.Kind())
		}
	}
	return names
}
