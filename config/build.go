package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
)

// builder turns a decoded File into a Config, reporting problems through d.
type builder struct {
	d       *decoder
	f       *File
	cfg     *Config
	secrets map[string]string
	regions map[string]*Region
	dir     string // the config file's folder: relative file paths are relative to it
	// stepTemplates are the templates of the step being built, with their positions.
	stepTemplates []placedTemplate
	// browserResolved: the browser executable was looked for (once, at the first
	// browser step).
	browserResolved bool
}

// path resolves a file name written in the config.
func (b *builder) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.dir, p)
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (b *builder) build() {
	f, cfg := b.f, b.cfg
	cfg.Vantage = f.Vantage
	if cfg.Vantage == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "picket"
		}
		cfg.Vantage = host
	}
	if n := len(vantageKeyPrefix) + len(cfg.Vantage); n > MaxDedupKeyChars {
		b.d.errorf(b.d.at(f, "vantage"), "vantage is %d characters: its notices' dedup key (%s…) would be %d, over the Events API's %d; use a shorter name",
			len(cfg.Vantage), vantageKeyPrefix, n, MaxDedupKeyChars)
	}
	b.buildListen()
	// Relative to the config file, like secret files: the same config finds the same
	// state whatever directory the daemon was started from.
	cfg.StateDir = b.path(orDefault(f.StateDir, DefaultStateDir))
	cfg.Concurrency = f.Concurrency
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Concurrency < 0 {
		b.d.errorf(b.d.at(f, "concurrency"), "concurrency must be at least 1, got %d", f.Concurrency)
	}
	b.checkDefaults()
	b.buildSecrets()
	b.buildRegions()
	b.buildBrowserSettings()
	b.buildProducts()
	b.buildAlerting()
	b.buildPublic()
	b.buildComms()
	b.buildCluster()
	b.buildConfirm()
	b.cfg.AllTargets = b.cfg.Targets
	b.applyShard()
}

func (b *builder) applyShard() {
	sh := b.f.Shard
	if sh == nil {
		return
	}
	s := Shard{Index: sh.Index, Count: sh.Count}
	if err := s.check(); err != nil {
		b.d.errorf(b.d.at(sh, ""), "%v", err)
		return
	}
	sharded, _ := b.cfg.WithShard(s)
	*b.cfg = *sharded
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (b *builder) checkDefaults() {
	df := &b.f.Defaults
	b.checkRun(&df.RunSpec)
	b.atLeast(df, "max_redirects", df.MaxRedirects, 0)
	if df.MaxBodyBytes != nil && *df.MaxBodyBytes < 1 {
		b.d.errorf(b.d.at(df, "max_body_bytes"), "max_body_bytes must be at least 1, got %d", *df.MaxBodyBytes)
	}
}

// checkRun checks, where they are written, the run settings of a journey or of the
// defaults.
func (b *builder) checkRun(r *RunSpec) {
	b.positiveDuration(r, "interval", r.Interval)
	b.positiveDuration(r, "timeout", r.Timeout)
	b.atLeast(r, "failure_threshold", r.FailureThreshold, 1)
	b.atLeast(r, "success_threshold", r.SuccessThreshold, 1)
	b.atLeast(r, "retries", r.Retries, 0)
}

func (b *builder) positiveDuration(owner any, key string, v *time.Duration) {
	if v != nil && *v <= 0 {
		b.d.errorf(b.d.at(owner, key), "%s must be more than 0", key)
	}
}

func (b *builder) atLeast(owner any, key string, v *int, min int) {
	if v != nil && *v < min {
		b.d.errorf(b.d.at(owner, key), "%s must be at least %d, got %d", key, min, *v)
	}
}

func (b *builder) buildSecrets() {
	b.secrets = map[string]string{}
	names := keysInOrder(b.d.value(b.f, "secrets"))
	for _, name := range names {
		ref := b.f.Secrets[name]
		node := keyAt(b.d.at(b.f, "secrets"), name)
		if ref == nil {
			b.d.errorf(node, "secret %s: want {env: NAME} or {file: PATH}", name)
			continue
		}
		v, err := ref.resolve(b.path)
		if err != nil {
			b.d.errorf(node, "secret %s: %v", name, err)
			continue
		}
		if len(v) < minRedactLen {
			b.d.errorf(node, "secret %s is shorter than %d characters; it could not be kept out of logs", name, minRedactLen)
			continue
		}
		b.secrets[name] = v
	}
	b.cfg.Secrets = newSecrets(b.secrets)
}

func (b *builder) buildRegions() {
	node := b.d.value(b.f, "regions")
	names := keysInOrder(node)
	if len(names) == 0 {
		b.d.errorf(node, "no regions: define at least one under regions:")
	}
	b.regions = map[string]*Region{}
	for _, name := range names {
		if !namePattern.MatchString(name) {
			b.d.errorf(keyAt(node, name), "region name %q: use letters, digits, '.', '_' and '-'", name)
		}
		spec := b.f.Regions[name]
		r := Region{Name: name, Title: name, Vars: map[string]string{}}
		if spec != nil {
			r.Title = orDefault(spec.Title, name)
			for k, v := range spec.Vars {
				r.Vars[k] = v
			}
		}
		if _, ok := r.Vars["name"]; !ok {
			r.Vars["name"] = name
		}
		b.cfg.Regions = append(b.cfg.Regions, r)
		b.regions[name] = &b.cfg.Regions[len(b.cfg.Regions)-1]
	}
	// Pointers into cfg.Regions are stable now that it no longer grows.
	for i := range b.cfg.Regions {
		b.regions[b.cfg.Regions[i].Name] = &b.cfg.Regions[i]
	}
}

func (b *builder) regionList(owner any, key string, names []string, allowed []string) []string {
	if len(names) == 0 {
		return allowed
	}
	list := b.d.at(owner, key)
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	seen := map[string]bool{}
	var out []string
	for i, name := range names {
		n := list
		if list != nil && list.Kind == yaml.SequenceNode && i < len(list.Content) {
			n = list.Content[i]
		}
		switch {
		case b.regions[name] == nil:
			b.d.errorf(n, "region %q is not defined under regions: (defined: %s)", name, joinNames(b.regionNames()))
		case !ok[name]:
			b.d.errorf(n, "region %q is not one of the product's regions (%s)", name, joinNames(allowed))
		case seen[name]:
			b.d.errorf(n, "region %q is listed twice", name)
		default:
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

func (b *builder) regionNames() []string {
	names := make([]string, len(b.cfg.Regions))
	for i, r := range b.cfg.Regions {
		names[i] = r.Name
	}
	return names
}

func joinNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

func (b *builder) buildProducts() {
	if len(b.f.Products) == 0 {
		b.d.errorf(b.d.at(b.f, "products"), "no products: define at least one under products:")
	}
	seen := map[string]bool{}
	for _, p := range b.f.Products {
		if p == nil {
			continue
		}
		b.buildProduct(p, seen)
	}
	// Targets and products by priority (1 first), then as written.
	sort.SliceStable(b.cfg.Products, func(i, j int) bool { return b.cfg.Products[i].Priority < b.cfg.Products[j].Priority })
	prio := map[string]int{}
	for i, p := range b.cfg.Products {
		prio[p.Name] = i
	}
	sort.SliceStable(b.cfg.Targets, func(i, j int) bool {
		return prio[b.cfg.Targets[i].Product] < prio[b.cfg.Targets[j].Product]
	})
}

func (b *builder) buildProduct(p *ProductSpec, seen map[string]bool) {
	nameNode := b.d.at(p, "name")
	switch {
	case p.Name == "":
		b.d.errorf(b.d.at(p, ""), "a product needs a name")
		return
	case !namePattern.MatchString(p.Name):
		b.d.errorf(nameNode, "product name %q: use letters, digits, '.', '_' and '-'", p.Name)
	case seen[p.Name]:
		b.d.errorf(nameNode, "product %q is defined twice", p.Name)
		return
	}
	seen[p.Name] = true
	prio := p.Priority
	if prio == 0 {
		prio = 3
	}
	if prio < 1 || prio > 5 {
		b.d.errorf(b.d.at(p, "priority"), "priority must be 1 (most important) to 5, got %d", p.Priority)
	}
	product := Product{Name: p.Name, Title: orDefault(p.Title, p.Name), Priority: prio}
	product.Regions = b.regionList(p, "regions", p.Regions, b.regionNames())
	if len(p.Journeys) == 0 {
		b.d.errorf(b.d.at(p, "journeys"), "product %q has no journeys", p.Name)
	}
	journeys := map[string]bool{}
	for _, j := range p.Journeys {
		if j == nil {
			continue
		}
		if j.Name == "" {
			b.d.errorf(b.d.at(j, ""), "a journey needs a name")
			continue
		}
		if !namePattern.MatchString(j.Name) {
			b.d.errorf(b.d.at(j, "name"), "journey name %q: use letters, digits, '.', '_' and '-'", j.Name)
		}
		if journeys[j.Name] {
			b.d.errorf(b.d.at(j, "name"), "journey %q is defined twice in product %q", j.Name, p.Name)
			continue
		}
		journeys[j.Name] = true
		product.Journeys = append(product.Journeys, j.Name)
		b.buildJourney(&product, j)
	}
	b.cfg.Products = append(b.cfg.Products, product)
}

// settings are a journey's resolved knobs.
type settings struct {
	interval, timeout, degradedAfter time.Duration
	failures, successes, retries     int
	window                           Window
	maxBody                          int64
	maxRedirects                     int
	keepAlive                        bool
}

func (b *builder) journeySettings(j *JourneySpec) settings {
	df := &b.f.Defaults
	s := settings{
		interval:      pickDur(j.Interval, df.Interval, DefaultInterval),
		timeout:       pickDur(j.Timeout, df.Timeout, DefaultTimeout),
		degradedAfter: pickDur(j.DegradedAfter, df.DegradedAfter, 0),
		failures:      pickInt(j.FailureThreshold, df.FailureThreshold, DefaultFailureThreshold),
		successes:     pickInt(j.SuccessThreshold, df.SuccessThreshold, DefaultSuccessThreshold),
		retries:       pickInt(j.Retries, df.Retries, 0),
		maxRedirects:  pickInt(nil, df.MaxRedirects, DefaultMaxRedirects),
		maxBody:       DefaultMaxBodyBytes,
		keepAlive:     df.KeepAlive != nil && *df.KeepAlive,
	}
	if df.MaxBodyBytes != nil {
		s.maxBody = *df.MaxBodyBytes
	}
	s.window = b.window(j, df, s.failures)
	b.checkRun(&j.RunSpec)
	if s.interval > 0 && s.timeout > s.interval {
		b.d.errorf(b.d.at(j, "name"), "journey %q: timeout %v is longer than its interval %v; runs would overlap", j.Name, s.timeout, s.interval)
	}
	if s.degradedAfter > 0 && s.degradedAfter >= s.timeout {
		b.d.errorf(b.d.at(j, "degraded_after"), "degraded_after %v must be shorter than the timeout %v", s.degradedAfter, s.timeout)
	}
	return s
}

// window resolves failure_window (journey's, else the defaults', else DefaultWindow of
// the journey's threshold) and checks it where it was written.
func (b *builder) window(j *JourneySpec, df *Defaults, failureThreshold int) Window {
	w := DefaultWindow(failureThreshold)
	for _, spec := range []*WindowSpec{df.FailureWindow, j.FailureWindow} {
		if spec == nil {
			continue
		}
		w.Failures = pickInt(spec.Failures, nil, w.Failures)
		w.Runs = pickInt(spec.Runs, nil, w.Runs)
		if spec.Runs != nil && (*spec.Runs < 1 || *spec.Runs > MaxWindowRuns) {
			b.d.errorf(b.d.at(spec, "runs"), "runs must be between 1 and %d, got %d", MaxWindowRuns, *spec.Runs)
		}
		if spec.Failures != nil && *spec.Failures < 0 {
			b.d.errorf(b.d.at(spec, "failures"), "failures must be at least 0 (0 turns the window off), got %d", *spec.Failures)
		}
	}
	if w.Failures > w.Runs {
		owner := j.FailureWindow
		if owner == nil {
			owner = df.FailureWindow
		}
		if owner != nil {
			b.d.errorf(b.d.at(owner, ""), "failure_window: failures (%d) cannot be more than runs (%d)", w.Failures, w.Runs)
		}
		w.Failures = w.Runs
	}
	return w
}

func pickDur(own, def *time.Duration, builtin time.Duration) time.Duration {
	if own != nil {
		return *own
	}
	if def != nil {
		return *def
	}
	return builtin
}

func pickInt(own, def *int, builtin int) int {
	if own != nil {
		return *own
	}
	if def != nil {
		return *def
	}
	return builtin
}

func (b *builder) buildJourney(p *Product, j *JourneySpec) {
	s := b.journeySettings(j)
	regions := b.regionList(j, "regions", j.Regions, p.Regions)
	steps := b.buildSteps(p, j, s, regions)
	journeyYAML := marshalNode(b.d.at(j, ""))
	for _, region := range regions {
		r := b.regions[region]
		t := &Target{
			ID:               p.Name + "/" + j.Name + "@" + region,
			Product:          p.Name,
			ProductTitle:     p.Title,
			Journey:          j.Name,
			Region:           region,
			Priority:         p.Priority,
			Interval:         s.interval,
			Timeout:          s.timeout,
			DegradedAfter:    s.degradedAfter,
			FailureThreshold: s.failures,
			SuccessThreshold: s.successes,
			FailureWindow:    s.window,
			Retries:          s.retries,
			Steps:            steps,
			JourneyVars:      j.Vars,
			regionData:       r.Vars,
			secrets:          b.cfg.Secrets,
			vantage:          b.cfg.Vantage,
		}
		t.Fingerprint = fingerprint(journeyYAML, r, s, p)
		b.checkKeyLength(j, t.ID)
		b.cfg.Targets = append(b.cfg.Targets, t)
	}
}

// Dedup keys are built from names; PagerDuty's Events API refuses (400, for good) a
// dedup_key over 255 characters, so a name that would make one is a load error, not a
// page lost at 3 a.m.
const (
	MaxDedupKeyChars = 255
	targetKeyPrefix  = "picket/degraded/" // the longest prefix of a target's keys
	vantageKeyPrefix = "picket/impaired/" // the longest prefix of a vantage's notices
)

func (b *builder) checkKeyLength(j *JourneySpec, id string) {
	if n := len(targetKeyPrefix) + len(id); n > MaxDedupKeyChars {
		b.d.errorf(b.d.at(j, "name"), "target %s is %d characters: its dedup key (%s…) would be %d, over the Events API's %d; shorten the product, journey or region name",
			id, len(id), targetKeyPrefix, n, MaxDedupKeyChars)
	}
}

// marshalNode serialises a journey once; every region's fingerprint hashes the bytes.
func marshalNode(n *yaml.Node) []byte {
	if n == nil {
		return nil
	}
	out, _ := yaml.Marshal(n)
	return out
}

// fingerprint hashes what decides how a target is probed and alerted on, so that a
// reload can tell a changed target from an unchanged one.
func fingerprint(journeyYAML []byte, r *Region, s settings, p *Product) string {
	h := sha256.New()
	h.Write(journeyYAML)
	keys := make([]string, 0, len(r.Vars))
	for k := range r.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, r.Vars[k])
	}
	fmt.Fprintf(h, "%+v|%d", s, p.Priority)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
