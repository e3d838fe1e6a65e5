package statuspage_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/config"
)

// FuzzStatusQuery: whatever a reader puts in the path, the query or Accept-Encoding of a
// read (GET or HEAD), the page and the API answer without panicking, never with a 5xx
// (the source here does not fail), and every API answer is JSON, an error included.
func FuzzStatusQuery(f *testing.F) {
	r := newRig(f, smallPlatform, testStart.Add(-time.Hour))
	r.round(nil)
	r.clock.Advance(time.Minute)
	r.round(failing("ap1", "metrics"))
	r.clock.Advance(5 * time.Minute)
	r.round(nil) // a closed incident
	r.clock.Set(testStart)
	r.regionalFault()
	h := statuspage.New(r.source(), statuspage.Options{Token: config.NewSecret(testToken), Now: r.clock.Now})
	logsEU := r.targetID("logs", "submit-and-read", "eu1")
	for _, uri := range []string{
		"/", "/?refresh=5", "/?refresh=0", "/?refresh=99999999999999999999", "/static/app.js", "/static/style.css", "/static/..%2fstatic.go",
		"/api/v1/status", "/api/v1/incidents", "/api/v1/incidents?limit=10", "/api/v1/incidents?limit=-1&limit=2",
		"/api/v1/incidents/picket~region~eu1/timeline", "/api/v1/incidents/picket%2Fregion%2Feu1/timeline",
		"/api/v1/incidents/picket~target~" + strings.ReplaceAll(r.targetID("metrics", "write-and-query", "ap1"), "/", "~") + "/timeline",
		"/api/v1/history/" + url.PathEscape(logsEU), "/api/v1/history/" + strings.ReplaceAll(logsEU, "/", "~") + "?range=90d",
		"/api/v1/history/" + url.PathEscape(logsEU) + "?range=7d", "/api/v1/history/nope", "/api/v1/silences", "/api/v1/outbox",
		"/api/v1/cluster", "/api/v2/", "/api/v1/silences/abc", "/%zz", "//api/v1/status",
	} {
		f.Add(uri, "")
		f.Add(uri, "gzip, deflate, br")
	}
	f.Add("/api/v1/status", "gzip;q=0")
	f.Fuzz(func(t *testing.T, uri, acceptEncoding string) {
		u, err := url.ParseRequestURI(uri)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return // no server would route it
		}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req := httptest.NewRequest(method, "/", nil)
			req.URL, req.RequestURI = u, uri
			req.Header.Set("Accept-Encoding", acceptEncoding)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			checkRead(t, method, uri, rec)
		}
	})
}

func checkRead(t *testing.T, method, uri string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s %q: status %d: %s", method, uri, rec.Code, clip(rec.Body.String()))
	}
	isJSON := strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json")
	if u, _ := url.ParseRequestURI(uri); strings.HasPrefix(u.Path, "/api/") && !isJSON && (rec.Code < 300 || rec.Code > 399) {
		t.Fatalf("%s %q: status %d of type %q: want every API answer in JSON", method, uri, rec.Code, rec.Header().Get("Content-Type"))
	}
	if method == http.MethodHead || !isJSON {
		return
	}
	body := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s %q: gzip answer: %v", method, uri, err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s %q: gzip answer: %v", method, uri, err)
		}
	}
	if !json.Valid(body) {
		t.Fatalf("%s %q: status %d, not JSON: %s", method, uri, rec.Code, clip(string(body)))
	}
}
