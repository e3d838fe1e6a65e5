package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/picket-dev/picket/config"
)

// journeysPerRegion is how many journeys each region has in a generated config; the
// targets are regions x journeys, as in a real config, so that config.Parse compiles one
// step per journey and shares it across regions.
const journeysPerRegion = 100

// journeysPerProduct groups the journeys into products, as a real config would.
const journeysPerProduct = 10

// layout says how n targets split into regions and journeys.
func layout(n int) (regions, journeys int, err error) {
	switch {
	case n < 1:
		return 0, 0, fmt.Errorf("targets: want at least 1, got %d", n)
	case n <= journeysPerRegion:
		return 1, n, nil
	case n%journeysPerRegion != 0:
		return 0, 0, fmt.Errorf("targets: want up to %d or a multiple of %d, got %d", journeysPerRegion, journeysPerRegion, n)
	}
	return n / journeysPerRegion, journeysPerRegion, nil
}

// scaleConfig writes a Picket config of n targets, each one GET expecting 200; region i
// points at urls[i % len(urls)], under a path of its own (/r0007/p00/j003), so that
// the servers can tell every target's requests apart.
func scaleConfig(n int, urls []string, interval, timeout time.Duration) ([]byte, error) {
	regions, journeys, err := layout(n)
	if err != nil {
		return nil, err
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("scale config: no server URL")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vantage: bench\ndefaults: {interval: %s, timeout: %s}\nregions:\n", interval, timeout)
	for i := range regions {
		fmt.Fprintf(&b, "  r%04d: {vars: {api: %q}}\n", i, fmt.Sprintf("%s/r%04d", urls[i%len(urls)], i))
	}
	b.WriteString("products:\n")
	for j := range journeys {
		if j%journeysPerProduct == 0 {
			fmt.Fprintf(&b, "  - name: p%02d\n    journeys:\n", j/journeysPerProduct)
		}
		fmt.Fprintf(&b, "      - {name: j%03d, steps: [{name: get, http: {url: \"{{.region.api}}/p%02d/j%03d\"}, expect: {status: [200]}}]}\n",
			j, j/journeysPerProduct, j)
	}
	return []byte(b.String()), nil
}

// scaleTargets parses the generated config: the same path a real config takes, so the
// targets carry compiled steps and templates.
func scaleTargets(n int, urls []string, interval, timeout time.Duration) ([]*config.Target, error) {
	src, err := scaleConfig(n, urls, interval, timeout)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse("scale.yaml", src)
	if err != nil {
		return nil, fmt.Errorf("generated config does not load: %w", err)
	}
	if len(cfg.Targets) != n {
		return nil, fmt.Errorf("generated config has %d targets, want %d", len(cfg.Targets), n)
	}
	return cfg.Targets, nil
}
