package probetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testIngestDelay = 30 * time.Millisecond
	// readBackMargin is how long past the ingest delay a journey keeps polling.
	readBackMargin = 500 * time.Millisecond
)

// startPlatform starts eu1 and us1 unless opts names regions, and closes it at the end.
func startPlatform(t *testing.T, opts Options) *Platform {
	t.Helper()
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"eu1", "us1"}
	}
	if opts.IngestDelay == 0 {
		opts.IngestDelay = testIngestDelay
	}
	p, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// newClient is a client of its own whose idle connections end with the test.
func newClient(t testing.TB, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// call sends one request; header pairs are name, value, name, value...
func call(c *http.Client, method, url, body string, header ...string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("read body of %s %s: %w", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(data)}, nil
}

// mustCall fails the test on a transport error.
func mustCall(t *testing.T, c *http.Client, method, url, body string, header ...string) answer {
	t.Helper()
	a, err := call(c, method, url, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("expected a JSON object, got %q: %v", body, err)
	}
	return m
}

// journey runs what a customer (and Picket) does with one product in one region,
// and says what went wrong, if anything. "healthz" checks the region's health.
func journey(c *http.Client, base, region, product string) error {
	switch product {
	case "logs":
		return writeAndRead(c, base, region, "/v1/logs")
	case "events":
		return writeAndRead(c, base, region, "/v1/events")
	case "metrics":
		return queryUp(c, base)
	case "web":
		return loadPages(c, base, region)
	case "healthz":
		a, err := call(c, "GET", base+"/healthz", "")
		if err != nil {
			return err
		}
		if a.status != 200 || a.body != "ok" {
			return fmt.Errorf("healthz: expected 200 \"ok\", got status %d body %s", a.status, a.body)
		}
		return nil
	}
	return fmt.Errorf("unknown product %q", product)
}

// writeAndRead writes a message and polls for it within IngestDelay plus a margin.
func writeAndRead(c *http.Client, base, region, path string) error {
	msg := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	a, err := call(c, "POST", base+path, `{"m":"`+msg+`"}`)
	if err != nil {
		return err
	}
	var written struct{ ID string }
	if a.status != 202 || json.Unmarshal([]byte(a.body), &written) != nil || written.ID == "" {
		return fmt.Errorf("write: expected 202 with an id, got status %d body %s", a.status, a.body)
	}
	deadline := time.Now().Add(testIngestDelay + readBackMargin)
	for attempt := 0; attempt < 100; attempt++ {
		a, err = call(c, "GET", base+path+"/"+written.ID, "")
		if err != nil {
			return err
		}
		if a.status != 404 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.status == 404 {
		return fmt.Errorf("read-back: still 404 after %s", testIngestDelay+readBackMargin)
	}
	var read struct{ ID, M, Region string }
	if a.status != 200 || json.Unmarshal([]byte(a.body), &read) != nil {
		return fmt.Errorf("read-back: expected 200 JSON, got status %d body %s", a.status, a.body)
	}
	if read.ID != written.ID || read.M != msg || read.Region != region {
		return fmt.Errorf("read-back: expected id %s m %s region %s, got body %s", written.ID, msg, region, a.body)
	}
	return nil
}

func queryUp(c *http.Client, base string) error {
	a, err := call(c, "POST", base+"/v1/metrics", `{"series":[{"metric":"up","value":1}]}`)
	if err != nil {
		return err
	}
	if a.status != 202 {
		return fmt.Errorf("metrics write: expected 202, got status %d body %s", a.status, a.body)
	}
	a, err = call(c, "GET", base+"/v1/query?q=up", "")
	if err != nil {
		return err
	}
	var res struct {
		Status string
		Data   *struct{ Result []metricSample }
	}
	if a.status != 200 || json.Unmarshal([]byte(a.body), &res) != nil {
		return fmt.Errorf("query: expected 200 JSON, got status %d body %s", a.status, a.body)
	}
	if res.Status != "ok" || res.Data == nil {
		return fmt.Errorf("query: expected status \"ok\" with data, got body %s", a.body)
	}
	if len(res.Data.Result) != 1 || res.Data.Result[0] != (metricSample{Metric: "up", Value: 1}) {
		return fmt.Errorf("query: expected one up sample of 1, got body %s", a.body)
	}
	return nil
}

func loadPages(c *http.Client, base, region string) error {
	a, err := call(c, "GET", base+"/", "")
	if err != nil {
		return err
	}
	title := "<title>Platform " + region + "</title>"
	if a.status != 200 || !strings.Contains(a.body, title) {
		return fmt.Errorf("home page: expected 200 with %s, got status %d body %s", title, a.status, a.body)
	}
	a, err = call(c, "GET", base+"/login", "")
	if err != nil {
		return err
	}
	if a.status != 200 || !strings.Contains(a.body, "<form") {
		return fmt.Errorf("login page: expected 200 with a form, got status %d body %s", a.status, a.body)
	}
	return nil
}
