package probetest

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

func TestEndpoints(t *testing.T) {
	p := startPlatform(t, Options{})
	c := newClient(t, 2*time.Second)
	eu1 := p.URL("eu1")
	big := `{"m":"` + strings.Repeat("x", maxBodyBytes) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		contentType              string
		bodyHas                  []string
	}{
		{"logs write", "POST", "/v1/logs", `{"m":"hello"}`, 202, "application/json", []string{`"accepted":true`, `"id":"`}},
		{"logs write bad JSON", "POST", "/v1/logs", `{"m":`, 400, "application/json", []string{`"error"`}},
		{"logs write not an object", "POST", "/v1/logs", `["m"]`, 400, "application/json", []string{`JSON object`}},
		{"logs write null", "POST", "/v1/logs", `null`, 400, "application/json", []string{`got null`}},
		{"logs write too large", "POST", "/v1/logs", big, 413, "application/json", []string{`at most`}},
		{"logs read unknown id", "GET", "/v1/logs/0123456789abcdef", "", 404, "application/json", []string{`{"error":"not found"}`}},
		{"logs wrong method", "DELETE", "/v1/logs", "", 405, "", nil},
		{"metrics write", "POST", "/v1/metrics", `[{"metric":"up","value":1}]`, 202, "application/json", []string{`"accepted":true`}},
		{"metrics write bad JSON", "POST", "/v1/metrics", `[{`, 400, "application/json", []string{`"error"`}},
		{"metrics query up", "GET", "/v1/query?q=up", "", 200, "application/json",
			[]string{`{"status":"ok","data":{"result":[{"metric":"up","value":1}]}}`}},
		{"metrics query other", "GET", "/v1/query?q=other", "", 200, "application/json", []string{`"result":[]`}},
		{"metrics query without q", "GET", "/v1/query", "", 400, "application/json", []string{`"status":"error"`}},
		{"events write", "POST", "/v1/events", `{"kind":"deploy"}`, 202, "application/json", []string{`{"id":"`}},
		{"events write bad JSON", "POST", "/v1/events", `nope`, 400, "application/json", []string{`"error"`}},
		{"events read unknown id", "GET", "/v1/events/nope", "", 404, "application/json", []string{`not found`}},
		{"web home", "GET", "/", "", 200, "text/html", []string{"<title>Platform eu1</title>"}},
		{"web login", "GET", "/login", "", 200, "text/html", []string{"<form", `name="password"`}},
		{"healthz", "GET", "/healthz", "", 200, "text/plain", []string{"ok"}},
		{"unknown path", "GET", "/nope", "", 404, "", nil},
		{"unknown v1 path", "GET", "/v1/nope", "", 404, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := mustCall(t, c, tc.method, eu1+tc.path, tc.body, "Content-Type", "application/json")
			if a.status != tc.status {
				t.Fatalf("%s %s: expected status %d, got %d (body %s)", tc.method, tc.path, tc.status, a.status, a.body)
			}
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("expected Content-Type %s, got %s", tc.contentType, ct)
			}
			for _, want := range tc.bodyHas {
				if !strings.Contains(a.body, want) {
					t.Errorf("expected body to contain %s, got %s", want, a.body)
				}
			}
		})
	}
	t.Run("every product's journey works in every region", func(t *testing.T) {
		for _, region := range p.Regions() {
			for _, product := range append(Products(), "healthz") {
				if err := journey(c, p.URL(region), region, product); err != nil {
					t.Errorf("%s in %s: %v", product, region, err)
				}
			}
		}
	})
}

func TestWrittenRecordBecomesReadableAfterIngestDelay(t *testing.T) {
	const ingest = 300 * time.Millisecond
	p := startPlatform(t, Options{IngestDelay: ingest})
	c := newClient(t, 2*time.Second)
	for _, path := range []string{"/v1/logs", "/v1/events"} {
		t.Run(path, func(t *testing.T) {
			sent := time.Now()
			a := mustCall(t, c, "POST", p.URL("eu1")+path, `{"m":"hello","n":3,"tags":["a"]}`)
			id, _ := decode(t, a.body)["id"].(string)
			if a.status != 202 || len(id) != 16 {
				t.Fatalf("write: expected 202 with a 16-hex-digit id, got %d %s", a.status, a.body)
			}
			if a := mustCall(t, c, "GET", p.URL("eu1")+path+"/"+id, ""); a.status != 404 {
				t.Fatalf("read at once: expected 404 before IngestDelay, got %d %s", a.status, a.body)
			}
			var got answer
			testkit.WaitFor(t, ingest+2*time.Second, "the record to become readable", func() bool {
				got = mustCall(t, c, "GET", p.URL("eu1")+path+"/"+id, "")
				return got.status != 404
			})
			if waited := time.Since(sent); waited < ingest {
				t.Errorf("expected the record readable no sooner than %s after the write, was after %s", ingest, waited)
			}
			want := `{"id":"` + id + `","m":"hello","n":3,"region":"eu1","tags":["a"]}` + "\n"
			if got.status != 200 || got.body != want {
				t.Errorf("read-back: expected 200 %s, got %d %s", want, got.status, got.body)
			}
			// Regions are isolated: us1 never sees what eu1 stored.
			if a := mustCall(t, c, "GET", p.URL("us1")+path+"/"+id, ""); a.status != 404 {
				t.Errorf("read in us1: expected 404, got %d %s", a.status, a.body)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	const key = "s3cret-key"
	p := startPlatform(t, Options{APIKey: key})
	c := newClient(t, 2*time.Second)
	eu1 := p.URL("eu1")
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
	}{
		{"logs without key", "POST", "/v1/logs", `{"m":"x"}`, nil, 401},
		{"logs with wrong key", "POST", "/v1/logs", `{"m":"x"}`, []string{"Authorization", "Bearer nope"}, 401},
		{"logs with key but not bearer", "POST", "/v1/logs", `{"m":"x"}`, []string{"Authorization", key}, 401},
		{"logs with key", "POST", "/v1/logs", `{"m":"x"}`, []string{"Authorization", "Bearer " + key}, 202},
		{"metrics query without key", "GET", "/v1/query?q=up", "", nil, 401},
		{"metrics query with key", "GET", "/v1/query?q=up", "", []string{"Authorization", "Bearer " + key}, 200},
		{"events read without key", "GET", "/v1/events/x", "", nil, 401},
		{"unknown v1 path without key", "GET", "/v1/nope", "", nil, 401},
		{"web needs no key", "GET", "/", "", nil, 200},
		{"login needs no key", "GET", "/login", "", nil, 200},
		{"healthz needs no key", "GET", "/healthz", "", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := mustCall(t, c, tc.method, eu1+tc.path, tc.body, tc.header...)
			if a.status != tc.status {
				t.Fatalf("expected %d, got %d %s", tc.status, a.status, a.body)
			}
			if a.status == 401 && (a.header.Get("WWW-Authenticate") != "Bearer" || !strings.Contains(a.body, "unauthorized")) {
				t.Errorf("401: expected WWW-Authenticate Bearer and an error body, got %v %s", a.header, a.body)
			}
			if strings.Contains(a.body, key) {
				t.Errorf("answer leaks the API key: %s", a.body)
			}
		})
	}
}

func TestRequestsCountsPerRegionAndProduct(t *testing.T) {
	p := startPlatform(t, Options{Regions: []string{"eu1", "us1", "ap1"}})
	c := newClient(t, 2*time.Second)
	mustCall(t, c, "POST", p.URL("eu1")+"/v1/logs", `{"m":"x"}`)
	mustCall(t, c, "GET", p.URL("eu1")+"/v1/logs/abc", "")
	mustCall(t, c, "GET", p.URL("eu1")+"/v1/query?q=up", "")
	mustCall(t, c, "GET", p.URL("us1")+"/", "")
	mustCall(t, c, "GET", p.URL("us1")+"/healthz", "")
	mustCall(t, c, "GET", p.URL("us1")+"/nope", "")
	cases := []struct {
		region, product string
		want            int
	}{
		{"eu1", "logs", 2}, {"eu1", "metrics", 1}, {"eu1", "events", 0}, {"eu1", "web", 0},
		{"us1", "web", 1}, {"us1", "healthz", 1}, {"us1", "logs", 0},
		{"eu1", "", 3}, {"us1", "", 2}, {"ap1", "", 0}, {"", "logs", 2}, {"", "", 5},
		{"nope", "", 0},
	}
	for _, tc := range cases {
		if got := p.Requests(tc.region, tc.product); got != tc.want {
			t.Errorf("Requests(%q, %q): expected %d, got %d", tc.region, tc.product, tc.want, got)
		}
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// A generated CA that Start gives up on must not stay behind in TMPDIR.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	otherKey, leafCert, leafKey := badCAFiles(t)
	cases := []struct {
		name    string
		opts    Options
		errHas  string
		wantErr bool
	}{
		{"no regions", Options{}, "at least one region", true},
		{"empty region name", Options{Regions: []string{"eu1", ""}}, `got ""`, true},
		{"duplicate region", Options{Regions: []string{"eu1", "eu1"}}, `"eu1" twice`, true},
		{"address for unknown region", Options{Regions: []string{"eu1"}, Addrs: map[string]string{"us1": "127.0.0.1:0"}}, `"us1"`, true},
		{"region port busy", Options{Regions: []string{"eu1", "us1"}, Addrs: map[string]string{"us1": busy.Addr().String()}}, "region us1", true},
		{"control port busy", Options{Regions: []string{"eu1"}, ControlAddr: busy.Addr().String()}, "control API", true},
		{"TLS for unknown region", Options{Regions: []string{"eu1"}, TLSAddrs: map[string]string{"us1": ""}}, `Options.TLSAddrs names region "us1"`, true},
		{"line intake for unknown region", Options{Regions: []string{"eu1"}, TCPAddrs: map[string]string{"us1": ""}}, `Options.TCPAddrs names region "us1"`, true},
		{"gRPC for unknown region", Options{Regions: []string{"eu1"}, GRPCAddrs: map[string]string{"us1": ""}}, `Options.GRPCAddrs names region "us1"`, true},
		{"gRPC port busy", Options{Regions: []string{"eu1"}, GRPCAddrs: map[string]string{"eu1": busy.Addr().String()}}, "gRPC health of region eu1", true},
		{"TLS port busy", Options{Regions: []string{"eu1"}, TLSAddrs: map[string]string{"eu1": busy.Addr().String()}}, "TLS of region eu1", true},
		{"line intake port busy", Options{Regions: []string{"eu1"}, TCPAddrs: map[string]string{"eu1": busy.Addr().String()}}, "line intake of region eu1", true},
		{"DNS port busy", Options{Regions: []string{"eu1"}, DNSAddr: busy.Addr().String()}, "listen for DNS on " + busy.Addr().String(), true},
		{"DNS address without port", Options{Regions: []string{"eu1"}, DNSAddr: "127.0.0.1"}, "expected host:port", true},
		{"CA certificate without key", Options{Regions: []string{"eu1"}, CACertFile: committedCA}, "both Options.CACertFile and CAKeyFile or neither", true},
		{"CA file missing", Options{Regions: []string{"eu1"}, CACertFile: "nope.pem", CAKeyFile: "nope-key.pem"}, "read CA certificate", true},
		{"CA key not the certificate's", Options{Regions: []string{"eu1"}, CACertFile: committedCA, CAKeyFile: otherKey}, "expected a PEM certificate and its private key", true},
		{"CA certificate not a CA", Options{Regions: []string{"eu1"}, CACertFile: leafCert, CAKeyFile: leafKey}, "expected a CA certificate", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(tc.opts)
			if err == nil {
				p.Close()
				t.Fatalf("expected an error containing %q, got none", tc.errHas)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("expected an error containing %q, got %v", tc.errHas, err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("expected no file left in TMPDIR, got %v", left)
			}
		})
	}
}

// badCAFiles writes a key that is not the committed CA's, and a leaf certificate
// with its key, into a temporary directory.
func badCAFiles(t *testing.T) (otherKey, leafCert, leafKey string) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, err := generateCA(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKey = filepath.Join(dir, "other-key.pem")
	write(t, otherKey, keyPEM)
	a, err := parseAuthority(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := a.issueLeaf("eu1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	leafCert, leafKey = filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem")
	write(t, leafCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}))
	write(t, leafKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafDER}))
	return otherKey, leafCert, leafKey
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFixedAddressesAndURLs(t *testing.T) {
	// Reserve free ports, release them, and ask Start for exactly those.
	addrs := map[string]string{}
	for _, name := range []string{"eu1", "control"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[name] = ln.Addr().String()
		ln.Close()
	}
	p := startPlatform(t, Options{Regions: []string{"eu1", "us1"}, Addrs: map[string]string{"eu1": addrs["eu1"]}, ControlAddr: addrs["control"]})
	if got, want := p.URL("eu1"), "http://"+addrs["eu1"]; got != want {
		t.Errorf("URL(eu1): expected %s, got %s", want, got)
	}
	if got, want := p.ControlURL(), "http://"+addrs["control"]; got != want {
		t.Errorf("ControlURL: expected %s, got %s", want, got)
	}
	if u := p.URL("us1"); !strings.HasPrefix(u, "http://127.0.0.1:") || u == p.URL("eu1") {
		t.Errorf("URL(us1): expected its own http://127.0.0.1:PORT, got %s", u)
	}
	if u := p.URL("nope"); u != "" {
		t.Errorf("URL(nope): expected \"\", got %s", u)
	}
	if got := strings.Join(p.Regions(), ","); got != "eu1,us1" {
		t.Errorf("Regions: expected eu1,us1, got %s", got)
	}
}

func TestCloseIsIdempotentAndRefusesAfterwards(t *testing.T) {
	p, err := Start(Options{Regions: []string{"eu1"}})
	if err != nil {
		t.Fatal(err)
	}
	url := p.URL("eu1")
	if err := p.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c := newClient(t, time.Second)
	if a, err := call(c, "GET", url+"/healthz", ""); err == nil {
		t.Fatalf("expected no answer after Close, got %d %s", a.status, a.body)
	}
}
