package probetest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
)

// maxControlBody bounds a fault rule posted to the control API.
const maxControlBody = 64 << 10

// controlHandler serves the control API: the faults in force, and how to change them
// with curl, for the demo and for tests that drive a platform in a child process.
func (p *Platform) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.handleHelp)
	mux.HandleFunc("GET /faults", p.handleListFaults)
	mux.HandleFunc("POST /faults", p.handleSetFault)
	mux.HandleFunc("DELETE /faults", p.handleClearFaults)
	mux.HandleFunc("GET /requests", p.handleRequests)
	return mux
}

func (p *Platform) handleListFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.Faults())
}

// handleSetFault takes {"region":"eu1","product":"logs","kind":"down","delay":"3s"};
// kind "" (or "none") removes the rule for that region and product.
func (p *Platform) handleSetFault(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields() // a typo in a curl line should not silently do nothing
	var wire faultWire
	if err := dec.Decode(&wire); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf(
			"expected {\"region\",\"product\",\"kind\",\"delay\"}: %v", err)})
		return
	}
	if wire.Kind == "none" {
		wire.Kind = FaultNone
	}
	rule, err := wire.rule()
	if err == nil {
		err = p.checkScope(rule.Region, rule.Product)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	p.SetFault(rule.Region, rule.Product, Fault{Kind: rule.Kind, Delay: rule.Delay})
	writeJSON(w, http.StatusOK, p.Faults())
}

// handleClearFaults clears every rule, or with ?region=&product= only that one.
func (p *Platform) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("region") && !q.Has("product") {
		p.ClearFaults()
		writeJSON(w, http.StatusOK, p.Faults())
		return
	}
	region, product := q.Get("region"), q.Get("product")
	if err := p.checkScope(region, product); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	p.SetFault(region, product, Fault{})
	writeJSON(w, http.StatusOK, p.Faults())
}

func (p *Platform) checkScope(region, product string) error {
	if region != "" && !slices.Contains(p.regions, region) {
		return fmt.Errorf("region: expected \"\" (every region) or one of %v, got %q", p.regions, region)
	}
	if product != "" && !slices.Contains(Products(), product) {
		return fmt.Errorf("product: expected \"\" (every product) or one of %v, got %q", Products(), product)
	}
	return nil
}

// handleRequests answers {"eu1":{"logs":3,...},...}, the counts Requests sums.
func (p *Platform) handleRequests(w http.ResponseWriter, r *http.Request) {
	out := make(map[string]map[string]int64, len(p.byRegion))
	for name, rs := range p.byRegion {
		counts := make(map[string]int64, len(rs.counters))
		for product, n := range rs.counters {
			counts[product] = n.Load()
		}
		out[name] = counts
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Platform) handleHelp(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(p.helpText()))
}

func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// firstGRPCAddr is the gRPC address of the first region that has one, for examples.
func (p *Platform) firstGRPCAddr() string {
	for _, name := range p.regions {
		if a := p.GRPCAddr(name); a != "" {
			return a
		}
	}
	return ""
}

func (p *Platform) helpText() string {
	var b strings.Builder
	c := p.controlURL
	first := p.regions[0]
	fmt.Fprintf(&b, "Simulated platform: fault control\n\nregions:\n")
	for _, name := range p.regions {
		fmt.Fprintf(&b, "  %-6s %s", name, p.URL(name))
		if u := p.TLSURL(name); u != "" {
			fmt.Fprintf(&b, "  %s", u)
		}
		if a := p.TCPAddr(name); a != "" {
			fmt.Fprintf(&b, "  line intake %s", a)
		}
		if a := p.GRPCAddr(name); a != "" {
			fmt.Fprintf(&b, "  grpc health %s", a)
		}
		b.WriteString("\n")
	}
	if a := p.DNSAddr(); a != "" {
		fmt.Fprintf(&b, "DNS for %s. on %s (udp, tcp):\n  dig @%s -p %s intake.%s.%s\n", zone, a, hostOf(a), portOf(a), first, zone)
	}
	if a := p.firstGRPCAddr(); a != "" {
		fmt.Fprintf(&b, "gRPC health (plaintext; service \"\" is the region, or a product):\n  grpc_health_probe -addr=%s -service=logs\n", a)
	}
	if f := p.CAFile(); f != "" {
		fmt.Fprintf(&b, "TLS certificates are signed by the CA in %s\n", f)
	}
	fmt.Fprintf(&b, "products: %s\n", strings.Join(Products(), " "))
	fmt.Fprintf(&b, "fault kinds: %v (\"delay\" waits first; slow defaults to %s)\n\n", faultKinds(), defaultSlowDelay)
	fmt.Fprintf(&b, "list faults:\n  curl -s %s/faults\n", c)
	fmt.Fprintf(&b, "take region %s down (connections close unanswered):\n  curl -s -X POST %s/faults -d '{\"region\":\"%s\",\"kind\":\"down\"}'\n", first, c, first)
	fmt.Fprintf(&b, "make logs slow in %s:\n  curl -s -X POST %s/faults -d '{\"region\":\"%s\",\"product\":\"logs\",\"kind\":\"slow\",\"delay\":\"3s\"}'\n", first, c, first)
	fmt.Fprintf(&b, "make metrics fail in every region:\n  curl -s -X POST %s/faults -d '{\"product\":\"metrics\",\"kind\":\"error\"}'\n", c)
	fmt.Fprintf(&b, "break the web app for browsers only (js_error, blank_page, slow_asset, blocked_api; HTTP still sees 200s):\n  curl -s -X POST %s/faults -d '{\"region\":\"%s\",\"product\":\"web\",\"kind\":\"blank_page\"}'\n", c, first)
	fmt.Fprintf(&b, "clear one rule:\n  curl -s -X DELETE '%s/faults?region=%s&product=logs'\n", c, first)
	fmt.Fprintf(&b, "clear all faults:\n  curl -s -X DELETE %s/faults\n", c)
	fmt.Fprintf(&b, "requests served per region and product:\n  curl -s %s/requests\n", c)
	return b.String()
}
