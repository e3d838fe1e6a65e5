package probetest

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/testkit"
)

const (
	hangClientTimeout = 300 * time.Millisecond
	matrixSlowDelay   = 100 * time.Millisecond
)

// expectation checks what a journey hit by a fault returned.
type expectation func(err error, took time.Duration) error

func wantNoError(err error, _ time.Duration) error { return err }

func wantErrorContaining(s string) expectation {
	return func(err error, _ time.Duration) error {
		if err == nil || !strings.Contains(err.Error(), s) {
			return errors.New("expected an error containing " + s + ", got " + errString(err))
		}
		return nil
	}
}

// wantNoAnswer: the connection failed without any HTTP answer and before the timeout.
func wantNoAnswer(err error, _ time.Duration) error {
	var ue *url.Error
	if !errors.As(err, &ue) || ue.Timeout() {
		return errors.New("expected a connection failure without answer, got " + errString(err))
	}
	return nil
}

func wantTimeout(err error, _ time.Duration) error {
	var ue *url.Error
	if !errors.As(err, &ue) || !ue.Timeout() {
		return errors.New("expected the client to time out, got " + errString(err))
	}
	return nil
}

func wantSlowSuccess(err error, took time.Duration) error {
	if err != nil {
		return err
	}
	if took < matrixSlowDelay {
		return errors.New("expected at least " + matrixSlowDelay.String() + ", took " + took.String())
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

// expectFor says what a journey on product sees under kind; wide means the
// fault was set for the whole region.
func expectFor(kind FaultKind, product string, wide bool) expectation {
	if kind.browserOnly() {
		return wantNoError // only a browser sees them (webapp_test.go, probe/browser_test.go)
	}
	switch kind {
	case FaultDown:
		if wide {
			return wantNoAnswer
		}
		return wantErrorContaining(`status 503 body {"error":"unavailable"}`)
	case FaultError:
		return wantErrorContaining("status 500")
	case FaultSlow:
		return wantSlowSuccess
	case FaultHang:
		return wantTimeout
	case FaultWrongBody:
		return map[string]expectation{
			"logs":    wantErrorContaining(`"m":"something else"`),
			"events":  wantErrorContaining(`"m":"something else"`),
			"metrics": wantErrorContaining(`{"status":"error","data":null}`),
			"web":     wantErrorContaining("expected 200 with <title>Platform eu1</title>"),
			"healthz": wantErrorContaining(`{"status":"down"}`),
		}[product]
	case FaultStale:
		return map[string]expectation{
			"logs":    wantErrorContaining("still 404"),
			"events":  wantErrorContaining("still 404"),
			"metrics": wantErrorContaining("expected one up sample"),
			"web":     wantNoError,
			"healthz": wantNoError,
		}[product]
	}
	return nil
}

// TestFaultsHitOnlyWhereSet sets each kind on each product of eu1 and on eu1 as a
// whole, and checks the fault shows there and nowhere else.
func TestFaultsHitOnlyWhereSet(t *testing.T) {
	checked := append(Products(), "healthz")
	for _, kind := range faultKinds() {
		for _, scope := range append(Products(), "") {
			name := string(kind) + "/" + scope
			if scope == "" {
				name = string(kind) + "/region-wide"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				p := startPlatform(t, Options{})
				c := newClient(t, 5*time.Second)
				impatient := newClient(t, hangClientTimeout) // only where a hang should time out
				for _, product := range checked {
					if err := journey(c, p.URL("eu1"), "eu1", product); err != nil {
						t.Fatalf("before the fault, %s in eu1: %v", product, err)
					}
				}
				p.SetFault("eu1", scope, Fault{Kind: kind, Delay: delayFor(kind)})
				var wg sync.WaitGroup // journeys run at once: hang and slow cost their wait only once
				for _, region := range p.Regions() {
					for _, product := range checked {
						// healthz is no product: only region-wide faults reach it.
						hit := region == "eu1" && (scope == "" || product == scope)
						want, client := expectation(wantNoError), c
						if hit {
							want = expectFor(kind, product, scope == "")
						}
						if hit && kind == FaultHang {
							client = impatient
						}
						wg.Go(func() {
							start := time.Now()
							err := journey(client, p.URL(region), region, product)
							if bad := want(err, time.Since(start)); bad != nil {
								t.Errorf("%s in %s (hit: %v): %v", product, region, hit, bad)
							}
						})
					}
				}
				wg.Wait()
			})
		}
	}
}

func delayFor(kind FaultKind) time.Duration {
	if kind == FaultSlow {
		return matrixSlowDelay
	}
	return 0
}

// TestRegionDownClosesBeforeAnswering checks the two ways a dead load balancer shows:
// a new connection closed without reading, and an open one closed after a request.
func TestRegionDownClosesBeforeAnswering(t *testing.T) {
	p := startPlatform(t, Options{})
	addr := strings.TrimPrefix(p.URL("eu1"), "http://")

	// A keep-alive connection that has been served while healthy: after the fault,
	// its next request reaches a handler, which must drop it too.
	open, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openReader := bufio.NewReader(open)
	healthz := "GET /healthz HTTP/1.1\r\nHost: eu1\r\n\r\n"
	if _, err := io.WriteString(open, healthz); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(openReader, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthy healthz on a raw connection: expected 200, got %v %v", resp, err)
	}
	resp.Body.Close()
	before := p.Requests("eu1", "")
	p.SetFault("eu1", "", Fault{Kind: FaultDown})

	t.Run("new connection closed without reading a request", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("expected TCP to be accepted, got %v", err)
		}
		defer conn.Close()
		expectClosedWithoutBytes(t, conn, conn)
		if n := p.Requests("eu1", ""); n != before {
			t.Errorf("expected no request read, got %d more", n-before)
		}
	})
	t.Run("open connection closed after its request", func(t *testing.T) {
		if _, err := io.WriteString(open, healthz); err != nil {
			t.Fatal(err)
		}
		expectClosedWithoutBytes(t, openReader, open)
		if n := p.Requests("eu1", "healthz"); n != before+1 {
			t.Errorf("expected the request to be read (%d), got %d", before+1, n)
		}
	})
	t.Run("other region still answers", func(t *testing.T) {
		if err := journey(newClient(t, time.Second), p.URL("us1"), "us1", "healthz"); err != nil {
			t.Error(err)
		}
	})
}

func expectClosedWithoutBytes(t *testing.T, r io.Reader, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	data, err := io.ReadAll(r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("expected the server to close the connection, it stayed open")
	}
	if len(data) != 0 {
		t.Fatalf("expected no answer, got %q", data)
	}
}

func TestFaultPrecedence(t *testing.T) {
	p := startPlatform(t, Options{})
	c := newClient(t, time.Second)
	p.SetFault("", "", Fault{Kind: FaultError})            // global
	p.SetFault("", "metrics", Fault{Kind: FaultDown})      // one product everywhere
	p.SetFault("eu1", "", Fault{Kind: FaultDown})          // region-wide
	p.SetFault("eu1", "logs", Fault{Kind: FaultWrongBody}) // region + product
	cases := []struct {
		region, product string
		want            expectation
	}{
		{"eu1", "logs", wantErrorContaining("something else")}, // region+product beats all
		{"eu1", "metrics", wantNoAnswer},                       // region-wide beats product-everywhere
		{"eu1", "healthz", wantNoAnswer},                       // region-wide reaches healthz
		{"us1", "metrics", wantErrorContaining("status 503")},  // product-everywhere beats global
		{"us1", "logs", wantErrorContaining("status 500")},     // global
		{"us1", "healthz", wantErrorContaining("status 500")},  // global reaches healthz
	}
	for _, tc := range cases {
		if bad := tc.want(journey(c, p.URL(tc.region), tc.region, tc.product), 0); bad != nil {
			t.Errorf("%s in %s: %v", tc.product, tc.region, bad)
		}
	}

	p.SetFault("eu1", "logs", Fault{}) // FaultNone removes exactly that rule
	if bad := wantNoAnswer(journey(c, p.URL("eu1"), "eu1", "logs"), 0); bad != nil {
		t.Errorf("after removing eu1/logs, logs in eu1 should fall to region-wide down: %v", bad)
	}
	if got := len(p.Faults()); got != 3 {
		t.Errorf("expected 3 rules left, got %v", p.Faults())
	}

	p.ClearFaults()
	for _, region := range p.Regions() {
		for _, product := range append(Products(), "healthz") {
			if err := journey(c, p.URL(region), region, product); err != nil {
				t.Errorf("after ClearFaults, %s in %s: %v", product, region, err)
			}
		}
	}
}

func TestFaultDelayAppliesToEveryKind(t *testing.T) {
	p := startPlatform(t, Options{})
	c := newClient(t, 2*time.Second)
	p.SetFault("eu1", "metrics", Fault{Kind: FaultError, Delay: 200 * time.Millisecond})
	start := time.Now()
	a := mustCall(t, c, "GET", p.URL("eu1")+"/v1/query?q=up", "")
	if took := time.Since(start); a.status != 500 || took < 200*time.Millisecond {
		t.Errorf("expected 500 after at least 200ms, got %d after %s", a.status, took)
	}
}

func TestHangEndsWhenClientGivesUp(t *testing.T) {
	p := startPlatform(t, Options{})
	p.SetFault("eu1", "logs", Fault{Kind: FaultHang})
	c := newClient(t, 200*time.Millisecond)
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/v1/logs/abc", ""},
		{"POST", "/v1/logs", `{"m":"x"}`}, // a body must not keep the handler from noticing
	} {
		start := time.Now()
		if _, err := call(c, req.method, p.URL("eu1")+req.path, req.body); wantTimeout(err, 0) != nil {
			t.Fatalf("%s %s: %v", req.method, req.path, wantTimeout(err, 0))
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("expected the client to give up after about 200ms, took %s", took)
		}
		testkit.WaitFor(t, 2*time.Second, "the hung handler to end after the client left", func() bool {
			return p.active.Load() == 0
		})
	}
}

func TestHangEndsOnClose(t *testing.T) {
	p, err := Start(Options{Regions: []string{"eu1"}})
	if err != nil {
		t.Fatal(err)
	}
	p.SetFault("", "", Fault{Kind: FaultHang})
	c := newClient(t, 0) // no timeout: only Close can end this
	done := make(chan error, 1)
	go func() {
		_, err := call(c, "GET", p.URL("eu1")+"/healthz", "")
		done <- err
	}()
	testkit.WaitFor(t, 2*time.Second, "the request to hang in its handler", func() bool { return p.active.Load() == 1 })
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("expected Close to end the hung handler at once, took %s", took)
	}
	if n := p.active.Load(); n != 0 {
		t.Errorf("expected no handler running after Close, got %d", n)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("expected the hung request to fail on Close, it succeeded")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the hung client never returned after Close")
	}
}

func TestFaultJSON(t *testing.T) {
	data, err := json.Marshal(Fault{Kind: FaultSlow, Delay: 2 * time.Second})
	if err != nil || string(data) != `{"kind":"slow","delay":"2s"}` {
		t.Errorf("marshal: expected {\"kind\":\"slow\",\"delay\":\"2s\"}, got %s %v", data, err)
	}
	data, _ = json.Marshal(Fault{Kind: FaultDown})
	if string(data) != `{"kind":"down"}` {
		t.Errorf("marshal without delay: expected {\"kind\":\"down\"}, got %s", data)
	}
	rule := FaultRule{Region: "eu1", Product: "logs", Kind: FaultHang, Delay: time.Second}
	data, _ = json.Marshal(rule)
	var back FaultRule
	if err := json.Unmarshal(data, &back); err != nil || back != rule {
		t.Errorf("rule round trip: expected %+v, got %+v (%s) %v", rule, back, data, err)
	}
	cases := []struct {
		in     string
		want   Fault
		errHas string
	}{
		{`{"kind":"slow","delay":"1m30s"}`, Fault{Kind: FaultSlow, Delay: 90 * time.Second}, ""},
		{`{"kind":"error"}`, Fault{Kind: FaultError}, ""},
		{`{"kind":""}`, Fault{}, ""},
		{`{"kind":"broken"}`, Fault{}, `got "broken"`},
		{`{"kind":"slow","delay":"soon"}`, Fault{}, "Go duration"},
		{`{"kind":"slow","delay":"-1s"}`, Fault{}, "zero or more"},
		{`{"kind":"slow","delay":3}`, Fault{}, "expected {"},
	}
	for _, tc := range cases {
		var f Fault
		err := json.Unmarshal([]byte(tc.in), &f)
		switch {
		case tc.errHas == "" && (err != nil || f != tc.want):
			t.Errorf("%s: expected %+v, got %+v %v", tc.in, tc.want, f, err)
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("%s: expected an error containing %q, got %v", tc.in, tc.errHas, err)
		}
	}
}

func TestFaultsListIsSorted(t *testing.T) {
	p := startPlatform(t, Options{})
	p.SetFault("us1", "web", Fault{Kind: FaultError})
	p.SetFault("", "", Fault{Kind: FaultSlow})
	p.SetFault("eu1", "logs", Fault{Kind: FaultHang})
	p.SetFault("eu1", "", Fault{Kind: FaultDown})
	var got []string
	for _, r := range p.Faults() {
		got = append(got, r.Region+"/"+r.Product+"="+string(r.Kind))
	}
	want := []string{"/=slow", "eu1/=down", "eu1/logs=hang", "us1/web=error"}
	if !slices.Equal(got, want) {
		t.Errorf("expected %v, got %v", want, got)
	}
}
