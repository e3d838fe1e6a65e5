// Package alert decides: per-target states from results (thresholds), the width of
// what is failing (scope), incidents with stable dedup keys, and where they are sent.
package alert

import (
	"sort"

	"github.com/picket-dev/picket/config"
)

// Scope kinds, narrowest first.
const (
	ScopeTarget  = "target"
	ScopeRegion  = "region"
	ScopeProduct = "product"
	ScopeGlobal  = "global"
)

// Failing is one failing target, as the scope sees it.
type Failing struct {
	Target  string
	Product string
	Region  string
}

// DegradedGroups makes one target-scope group per degraded target: slowness is told
// (to chat, by default) but never widened into an outage.
func DegradedGroups(degraded []Failing) []Group { return targetGroups(degraded, ConditionDegraded) }

// targetGroups makes one target-scope group of the condition per failing target.
func targetGroups(fs []Failing, condition string) []Group {
	groups := make([]Group, 0, len(fs))
	for _, f := range fs {
		g := newGroup(ScopeTarget, f.Target, []Failing{f})
		g.Condition = condition
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Subject < groups[j].Subject })
	return groups
}

// Group is one incident-sized problem: a scope, its subject, and the failing targets
// it explains.
type Group struct {
	Scope     string
	Subject   string // "" for global, the region, the product, or the target id
	Targets   []string
	Regions   []string
	Products  []string
	Condition string // down, or degraded for DegradedGroups, cert_expiry for CertGroups
}

// Key is the dedup key: stable across runs, restarts and vantages, distinct per
// incident, readable in PagerDuty.
func (g Group) Key() string {
	if g.Condition == ConditionDegraded {
		return "picket/degraded/" + g.Subject
	}
	if g.Condition == ConditionCertExpiry {
		return CertKey(g.Subject)
	}
	return DedupKey(g.Scope, g.Subject)
}

// DedupKey builds the dedup key of an incident.
func DedupKey(scope, subject string) string {
	if scope == ScopeGlobal {
		return "picket/global"
	}
	return "picket/" + scope + "/" + subject
}

// Classify explains the failing targets with as few, as wide groups as the blast radius
// allows: global absorbs everything; otherwise each failing target belongs to exactly
// one group, its region's if that region is out, else its product's if that product is
// out in enough regions, else its own.
func Classify(br config.BlastRadius, failing []Failing) []Group {
	if len(failing) == 0 {
		return nil
	}
	productsIn := map[string]map[string]bool{} // region -> failing products
	regionsOf := map[string]map[string]bool{}  // product -> failing regions
	for _, f := range failing {
		addTo(productsIn, f.Region, f.Product)
		addTo(regionsOf, f.Product, f.Region)
	}
	outRegions := map[string]bool{}
	for r, ps := range productsIn {
		if len(ps) >= br.RegionMinProducts {
			outRegions[r] = true
		}
	}
	// A product is out everywhere when it fails in enough regions that are not already
	// explained as regional outages; otherwise a region outage plus one more failure
	// would make a product incident of a single region.
	outProducts := map[string]bool{}
	for p, rs := range regionsOf {
		n := 0
		for r := range rs {
			if !outRegions[r] {
				n++
			}
		}
		if n >= br.ProductMinRegions {
			outProducts[p] = true
		}
	}
	if len(outRegions) >= br.GlobalMinRegions {
		return []Group{newGroup(ScopeGlobal, "", failing)}
	}
	buckets := map[[2]string][]Failing{}
	for _, f := range failing {
		var k [2]string
		switch {
		case outRegions[f.Region]:
			k = [2]string{ScopeRegion, f.Region}
		case outProducts[f.Product]:
			k = [2]string{ScopeProduct, f.Product}
		default:
			k = [2]string{ScopeTarget, f.Target}
		}
		buckets[k] = append(buckets[k], f)
	}
	groups := make([]Group, 0, len(buckets))
	for k, fs := range buckets {
		groups = append(groups, newGroup(k[0], k[1], fs))
	}
	sort.Slice(groups, func(i, j int) bool {
		if wi, wj := Width(groups[i].Scope), Width(groups[j].Scope); wi != wj {
			return wi > wj
		}
		return groups[i].Subject < groups[j].Subject
	})
	return groups
}

// Width orders scopes: target 0 … global 3.
func Width(scope string) int {
	switch scope {
	case ScopeRegion:
		return 1
	case ScopeProduct:
		return 2
	case ScopeGlobal:
		return 3
	}
	return 0
}

func addTo(m map[string]map[string]bool, k, v string) {
	if m[k] == nil {
		m[k] = map[string]bool{}
	}
	m[k][v] = true
}

func newGroup(scope, subject string, fs []Failing) Group {
	g := Group{Scope: scope, Subject: subject, Condition: ConditionDown}
	regions, products := map[string]bool{}, map[string]bool{}
	for _, f := range fs {
		g.Targets = append(g.Targets, f.Target)
		regions[f.Region] = true
		products[f.Product] = true
	}
	sort.Strings(g.Targets)
	g.Regions = sortedKeys(regions)
	g.Products = sortedKeys(products)
	return g
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Summary is the overall width of a set of groups, for `check -o json`, the status API
// and the banner. It names the widest scope and only what that scope's groups cover: a
// stray failing journey elsewhere must not make its region part of a regional outage.
// What lies outside is counted in OtherTargets, so it is told apart, not hidden.
type Summary struct {
	Kind         string   `json:"kind"`     // none, target, region, product, global
	Regions      []string `json:"regions"`  // covered by the widest scope's groups
	Products     []string `json:"products"` // likewise
	OtherTargets int      `json:"other_targets"`
}

// Summarize reports the widest scope, the regions and products its groups cover, and
// how many failing targets the narrower groups hold.
func Summarize(groups []Group) Summary {
	widest := -1
	for _, g := range groups {
		widest = max(widest, Width(g.Scope))
	}
	s := Summary{Kind: "none"}
	var regions, products []string
	for _, g := range groups {
		if Width(g.Scope) != widest {
			s.OtherTargets += len(g.Targets)
			continue
		}
		s.Kind = g.Scope
		regions = append(regions, g.Regions...)
		products = append(products, g.Products...)
	}
	s.Regions, s.Products = uniqueSorted(regions), uniqueSorted(products)
	return s
}

func uniqueSorted(xs []string) []string {
	set := map[string]bool{}
	for _, x := range xs {
		set[x] = true
	}
	return sortedKeys(set)
}
