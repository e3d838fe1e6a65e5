package alert_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/notifiers"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
	"github.com/picket-dev/picket/probe"
)

// certRig is one Picket process watching 3 regions x 2 products that all sit behind one
// HTTPS server, so they share one certificate (as a wildcard certificate is shared).
type certRig struct {
	t       *testing.T
	cfg     *config.Config
	pd      *pdtest.Receiver
	chat    *hookServer
	outbox  *notify.Outbox
	engine  *alert.Engine
	runner  *probe.Runner
	failing atomic.Value // a path prefix the server answers 500 for ("" = none)
	cert    atomic.Pointer[tls.Certificate]
	ca      *testCA
}

var certRegions = []string{"eu1", "us1", "ap1"}

// testCA signs leaf certificates for 127.0.0.1; its PEM is in file.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	now := time.Now()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "picket test CA"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// leaf is a certificate for 127.0.0.1 valid until notAfter, its chain with the CA.
func (ca *testCA) leaf(t *testing.T, notAfter time.Time) *tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "api.example.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
}

// setCert makes the server present a new certificate, valid until notAfter.
func (r *certRig) setCert(notAfter time.Time) { r.cert.Store(r.ca.leaf(r.t, notAfter)) }

func newCertRig(t *testing.T, notAfter time.Time, alerting string) *certRig {
	t.Helper()
	dir := t.TempDir()
	r := &certRig{t: t, chat: newHook(t), ca: newTestCA(t, dir)}
	r.setCert(notAfter)
	r.failing.Store("")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if p := r.failing.Load().(string); p != "" && strings.HasPrefix(req.URL.Path, p) {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	// (GetCertificate would not do: without SNI, httptest's own certificate wins.)
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{*r.cert.Load()}}, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pd, err := pdtest.New(pdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	r.pd = pd

	var b strings.Builder
	fmt.Fprintf(&b, "vantage: cert-vantage\ndefaults: {interval: 10s, timeout: 3s, failure_threshold: 2, success_threshold: 2}\n")
	fmt.Fprintf(&b, "alerting: {group_wait: 0s%s}\nregions:\n", alerting)
	for _, reg := range certRegions {
		fmt.Fprintf(&b, "  %s: {vars: {api: %q}}\n", reg, srv.URL+"/"+reg)
	}
	b.WriteString("products:\n")
	for _, p := range []string{"logs", "metrics"} {
		fmt.Fprintf(&b, `  - name: %s
    priority: 1
    journeys:
      - name: home
        steps:
          - name: get
            http: {url: "{{.region.api}}/%s", tls: {ca_file: %q}}
            expect: {status: [200], cert_min_days: 14}
`, p, p, r.ca.file)
	}
	fmt.Fprintf(&b, `notifiers:
  pager: {pagerduty: {routing_key: "certtestroutingkey00000000000001", events_url: %q}}
  chat: {webhook: {url: %q}}
routes:
  - notify: [pager, chat]
`, pd.BaseURL(), r.chat.URL)
	cfg, err := config.Parse("cert.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	r.cfg = cfg
	st, err := store.Open(filepath.Join(dir, "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.DiscardHandler)
	r.outbox, err = notify.NewOutbox(notify.OutboxOptions{
		Store: st, Notifiers: notifiers.Build(cfg, nil, lg), Logger: lg,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, AttemptTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.engine, err = alert.NewEngine(alert.EngineOptions{Config: cfg, Store: st, Outbox: r.outbox, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	r.runner = probe.NewRunner()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = r.outbox.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-stopped; r.runner.Close(); _ = st.Close() })
	return r
}

// rounds probes every target n times, then waits until the outbox delivered everything.
func (r *certRig) rounds(n int) []probe.Result {
	r.t.Helper()
	var last []probe.Result
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		last = r.runner.RunAll(ctx, r.cfg.Targets, 6)
		cancel()
		r.engine.ObserveAll(last)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.outbox.Pending() > 0 {
		if time.Now().After(deadline) {
			r.t.Fatalf("outbox still holds %d entries: %+v", r.outbox.Pending(), r.outbox.Entries())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return last
}

// chatEvents lists what the chat webhook got: "action dedup_key | summary", sorted.
func (r *certRig) chatEvents() []string {
	var out []string
	for _, body := range r.chat.got() {
		var p struct {
			Notification notify.Notification `json:"notification"`
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			r.t.Fatalf("chat body: %v: %s", err, body)
		}
		out = append(out, p.Notification.Action+" "+p.Notification.DedupKey+" | "+p.Notification.Summary)
	}
	sort.Strings(out)
	return out
}

func (r *certRig) openKeys() []string {
	var keys []string
	for _, inc := range r.engine.Snapshot().Incidents {
		keys = append(keys, inc.Key)
	}
	sort.Strings(keys)
	return keys
}

func certKeys(targets []*config.Target) []string {
	var keys []string
	for _, t := range targets {
		keys = append(keys, "picket/cert/"+t.ID)
	}
	sort.Strings(keys)
	return keys
}

// One certificate near expiry, shared by 3 regions x 2 products: 6 target-scope
// warnings to chat, no region or global outage, no page.
func TestSharedCertNearExpiryIsSixWarningsNotAGlobalOutage(t *testing.T) {
	notAfter := time.Now().Add(5*24*time.Hour + time.Hour).Truncate(time.Second) // as x509 keeps it
	date := notAfter.UTC().Format(time.DateOnly)
	for _, tc := range []struct {
		name, alerting string
		pages, chats   int // triggers each receiver gets
	}{
		{name: "default policy (notify)", pages: 0, chats: 6},
		{name: "degraded: page", alerting: ", degraded: page", pages: 6, chats: 6},
		{name: "degraded: ignore", alerting: ", degraded: ignore", pages: 0, chats: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCertRig(t, notAfter, tc.alerting)
			results := r.rounds(2)
			for _, res := range results {
				if res.Status != probe.StatusUp {
					t.Errorf("%s: %s (%s), want up", res.Target, res.Status, res.Error)
				}
			}
			st := r.engine.Snapshot()
			for _, inc := range st.Incidents {
				if inc.Scope != alert.ScopeTarget || inc.Condition != "cert_expiry" {
					t.Errorf("incident %s: scope %s, condition %s; want target-scope cert_expiry only", inc.Key, inc.Scope, inc.Condition)
				}
			}
			wantOpen := certKeys(r.cfg.Targets)
			if tc.chats == 0 {
				wantOpen = nil
			}
			if got := r.openKeys(); strings.Join(got, ",") != strings.Join(wantOpen, ",") {
				t.Errorf("open incidents\n  %v\nwant\n  %v", got, wantOpen)
			}
			if st.Scope.Kind != "none" || st.Banner != "All systems operational" {
				t.Errorf("scope %+v, banner %q: want none", st.Scope, st.Banner)
			}
			for p, row := range st.Matrix {
				for reg, cell := range row {
					if cell != "up" {
						t.Errorf("matrix %s/%s = %s, want up", p, reg, cell)
					}
				}
			}
			if n := len(r.pd.Events()); n != tc.pages {
				t.Errorf("PagerDuty got %d events, want %d: %+v", n, tc.pages, r.pd.Events())
			}
			for _, ev := range r.pd.Events() {
				id := strings.TrimPrefix(ev.DedupKey, "picket/cert/")
				if ev.Payload.Severity != "warning" || ev.Payload.Summary != id+" certificate expires in 5 days ("+date+")" {
					t.Errorf("page %s: severity %s, summary %q", ev.DedupKey, ev.Payload.Severity, ev.Payload.Summary)
				}
				wantCertDetails(t, ev.Payload.CustomDetails, notAfter)
			}
			chats := r.chatEvents()
			if len(chats) != tc.chats {
				t.Fatalf("chat got %d notifications, want %d:\n%s", len(chats), tc.chats, strings.Join(chats, "\n"))
			}
			for i, c := range chats {
				id := strings.TrimPrefix(wantOpen[i], "picket/cert/")
				want := fmt.Sprintf("trigger picket/cert/%s | %s certificate expires in 5 days (%s)", id, id, date)
				if c != want {
					t.Errorf("chat\n  %s\nwant\n  %s", c, want)
				}
			}
			wantTargetViews(t, st, notAfter)
		})
	}
}

// A target both down and warned has both incidents; a renewed certificate resolves the
// warnings and nothing else; an expired certificate is an outage (here: global).
func TestCertWarningBesideDownThenRenewedThenExpired(t *testing.T) {
	r := newCertRig(t, time.Now().Add(5*24*time.Hour+time.Hour), "")
	r.failing.Store("/eu1/logs")
	r.rounds(2)
	want := append(certKeys(r.cfg.Targets), "picket/target/logs/home@eu1")
	sort.Strings(want)
	if got := r.openKeys(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("open incidents\n  %v\nwant\n  %v", got, want)
	}
	if got := r.triggered(); strings.Join(got, ",") != "picket/target/logs/home@eu1" {
		t.Errorf("paged %v, want only the down target", got)
	}
	if st := r.engine.Snapshot(); st.Matrix["logs"]["eu1"] != "down" || st.Matrix["logs"]["us1"] != "up" {
		t.Errorf("matrix %v", st.Matrix)
	}

	r.setCert(time.Now().Add(90 * 24 * time.Hour))
	r.rounds(1)
	if got := r.openKeys(); strings.Join(got, ",") != "picket/target/logs/home@eu1" {
		t.Errorf("after renewal open %v, want only the down target", got)
	}
	resolves := 0
	for _, c := range r.chatEvents() {
		if strings.HasPrefix(c, "resolve picket/cert/") {
			resolves++
		}
	}
	if resolves != 6 {
		t.Errorf("chat got %d cert resolves, want 6:\n%s", resolves, strings.Join(r.chatEvents(), "\n"))
	}

	r.failing.Store("")
	r.setCert(time.Now().Add(-time.Hour))
	results := r.rounds(2)
	for _, res := range results {
		if res.Status != probe.StatusDown || !strings.Contains(res.Error, "certificate has expired") {
			t.Errorf("%s: %s (%s), want down: expired", res.Target, res.Status, res.Error)
		}
	}
	if got := r.openKeys(); strings.Join(got, ",") != "picket/global,picket/target/logs/home@eu1" {
		t.Errorf("expired: open %v, want the global outage (absorbing the target)", got)
	}
	if got := r.triggered(); strings.Join(got, ",") != "picket/global,picket/target/logs/home@eu1" {
		t.Errorf("expired: paged %v, want global", got)
	}
}

// triggered lists the dedup keys PagerDuty got triggers for.
func (r *certRig) triggered() []string {
	seen := map[string]bool{}
	for _, e := range r.pd.Events() {
		if e.Action == "trigger" {
			seen[e.DedupKey] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wantTargetViews: every target is up and ok, and shows the warning beside that.
func wantTargetViews(t *testing.T, st alert.Status, notAfter time.Time) {
	t.Helper()
	want := "certificate expires in 5 days (" + notAfter.UTC().Format(time.DateOnly) + ")"
	for _, tv := range st.Targets {
		if tv.State != alert.StateOK || tv.Condition != "" || tv.LastStatus != "up" {
			t.Errorf("%s: state %s, condition %q, last %s; want ok and up", tv.Target, tv.State, tv.Condition, tv.LastStatus)
		}
		if tv.Warning != want || tv.CertExpires == nil || !tv.CertExpires.Equal(notAfter) {
			t.Errorf("%s: warning %q, cert_expires %v; want %q, %v", tv.Target, tv.Warning, tv.CertExpires, want, notAfter)
		}
	}
	js, _ := json.Marshal(st.Targets[0])
	if !strings.Contains(string(js), `"cert_expires":"`+notAfter.UTC().Format(time.RFC3339)+`"`) || !strings.Contains(string(js), `"warning":"`+want+`"`) {
		t.Errorf("target view JSON lacks cert_expires or warning: %s", js)
	}
}

// wantCertDetails: the page's custom_details carry the certificate's evidence.
func wantCertDetails(t *testing.T, raw json.RawMessage, notAfter time.Time) {
	t.Helper()
	var d struct {
		Certificate struct {
			Step     string `json:"step"`
			Expires  string `json:"expires"`
			DaysLeft int    `json:"days_left"`
			MinDays  int    `json:"min_days"`
			Subject  string `json:"subject"`
			Issuer   string `json:"issuer"`
		} `json:"certificate"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("custom_details: %v: %s", err, raw)
	}
	c := d.Certificate
	if c.Step != "get" || c.Expires != notAfter.UTC().Format(time.RFC3339) || c.DaysLeft != 5 || c.MinDays != 14 ||
		c.Subject != "api.example.test" || c.Issuer != "picket test CA" {
		t.Errorf("custom_details.certificate %+v", c)
	}
}
