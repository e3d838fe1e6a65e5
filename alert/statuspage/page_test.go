package statuspage_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
)

var cellRe = regexp.MustCompile(`<td class="cell s-[a-z_]+" data-product="([^"]*)" data-region="([^"]*)" data-status="([^"]*)" title="([^"]*)"><span class="sym" aria-hidden="true">[^<]*</span> <span class="label">([^<]*)</span>(?:<small class="votes" title="([^"]*)">([^<]*)</small>)?</td>`)

// pageCell is one matrix cell; votes and votesTitle are its second line, if any.
type pageCell struct{ status, title, label, votesTitle, votes string }

// cells reads the matrix of a rendered page: product -> region -> cell.
func cells(t *testing.T, page string) map[string]map[string]pageCell {
	t.Helper()
	out := map[string]map[string]pageCell{}
	for _, m := range cellRe.FindAllStringSubmatch(page, -1) {
		if out[m[1]] == nil {
			out[m[1]] = map[string]pageCell{}
		}
		out[m[1]][m[2]] = pageCell{status: m[3], title: m[4], label: m[5], votesTitle: m[6], votes: m[7]}
	}
	if len(out) == 0 {
		t.Fatalf("no matrix cells in the page:\n%s", clip(page))
	}
	return out
}

func TestPageMatrixDuringRegionalFault(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body
	got := cells(t, page)
	want := map[string]map[string]string{
		"logs":    {"eu1": "down", "us1": "up", "ap1": "up"},
		"metrics": {"eu1": "down", "us1": "up", "ap1": "up"},
		"events":  {"eu1": "up", "us1": "up", "ap1": "not_offered"},
	}
	labels := map[string]string{"up": "Up", "down": "Down", "not_offered": "Not offered"}
	for p, row := range want {
		for reg, status := range row {
			c := got[p][reg]
			if c.status != status || c.label != labels[status] {
				t.Errorf("cell %s/%s: status %q label %q, want %q %q", p, reg, c.status, c.label, status, labels[status])
			}
		}
	}
	down := got["logs"]["eu1"].title
	for _, s := range []string{"logs in eu1: Down", "submit-and-read: down (firing since 2026-03-02 10:00:30 UTC)", "status 503 Service Unavailable"} {
		if !strings.Contains(down, s) {
			t.Errorf("tooltip of logs/eu1 %q lacks %q", down, s)
		}
	}
	if up := got["logs"]["us1"].title; up != "logs in us1: Up\n1 of 1 journeys up" {
		t.Errorf("tooltip of logs/us1 %q, want the up count", up)
	}
	// Rows by priority: logs and metrics (1) before events (2).
	if i, j := strings.Index(page, `<tr data-product="metrics">`), strings.Index(page, `<tr data-product="events">`); i < 0 || j < i {
		t.Errorf("rows out of priority order: metrics at %d, events at %d", i, j)
	}
	for _, s := range []string{
		`<div id="banner" class="banner scope-region" data-scope="region" role="status" aria-live="polite">Regional outage: eu1</div>`,
		`data-incident="picket/region/eu1" data-scope="region"`,
		`<span class="scope">Region eu1</span> <span class="cond">down</span>`,
		`href="api/v1/incidents/picket~region~eu1/timeline"`,
		`<span class="kind">opened</span> region eu1:`,
		`Recently resolved`, `data-incident="picket/target/metrics/write-and-query@ap1"`,
		`data-refresh-ms="10000"`, `<script src="static/app.js" defer></script>`,
	} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	// Nothing from elsewhere: it must work when the internet is half down.
	css := do(t, srv, "GET", "/static/style.css", nil, nil).body
	if regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).MatchString(page) || strings.Contains(css, "url(") || strings.Contains(css, "@import") {
		t.Errorf("page or style refers to another host")
	}
}

func TestPageBeforeAnyResult(t *testing.T) {
	r := newRig(t, smallPlatform, testStart)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now, Title: "Acme status"}))
	page := do(t, srv, "GET", "/", nil, nil).body
	for p, row := range cells(t, page) {
		for reg, c := range row {
			if c.status != "no_data" && c.status != "not_offered" {
				t.Errorf("cell %s/%s before any result: %q, want no_data", p, reg, c.status)
			}
		}
	}
	for _, s := range []string{"<title>Acme status</title>", `data-scope="none"`, "All systems operational", "No open incidents.", "No resolved incidents recorded.", `data-impaired="false" hidden`} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

func TestPageImpaired(t *testing.T) {
	r := faultRig(t)
	r.engine.SetImpaired(true)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body
	for _, s := range []string{`<p id="impaired" class="impaired" data-impaired="true">`, "This vantage is impaired"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

func TestPageRefreshParameter(t *testing.T) {
	r := newRig(t, smallPlatform, testStart)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	for query, want := range map[string]string{"?refresh=2": "2000", "?refresh=0": "10000", "?refresh=x": "10000", "?refresh=99999": "10000"} {
		if page := do(t, srv, "GET", "/"+query, nil, nil).body; !strings.Contains(page, `data-refresh-ms="`+want+`"`) {
			t.Errorf("%s: want data-refresh-ms=%s", query, want)
		}
	}
}

// scripted renames things the way a hostile or careless config or platform could.
type scripted struct {
	engineSource
	name string
}

func (s scripted) Snapshot() alert.Status {
	st := s.engineSource.Snapshot()
	for i := range st.Targets {
		st.Targets[i].Journey = s.name
		st.Targets[i].LastError = "body was " + s.name
	}
	for i := range st.Products {
		st.Products[i].Title = s.name
	}
	for i := range st.Incidents {
		st.Incidents[i].Targets = append(st.Incidents[i].Targets, s.name)
		st.Incidents[i].Timeline = append(st.Incidents[i].Timeline, alert.Event{At: st.Generated, Kind: "note", Text: s.name})
	}
	st.Banner = s.name
	return st
}

func TestPageEscapesEverything(t *testing.T) {
	r := faultRig(t)
	const evil = `<script>alert(1)</script>`
	srv := serve(t, statuspage.New(scripted{engineSource{r.engine, r.store, r.outbox}, evil}, statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body
	if strings.Contains(page, "<script>") || strings.Contains(page, "alert(1)</") {
		t.Errorf("page carries a live script tag:\n%s", clip(page))
	}
	if n := strings.Count(page, "&lt;script&gt;alert(1)&lt;/script&gt;"); n < 5 {
		t.Errorf("escaped name shows %d times as text, want it in the banner, titles, incidents and timeline", n)
	}
	api := do(t, srv, "GET", "/api/v1/status", nil, nil).body
	if strings.Contains(api, "<script>") || !strings.Contains(api, `\u003cscript\u003e`) {
		t.Errorf("status JSON should carry the name escaped")
	}
}

// leaky puts the token everywhere a source could: names, errors, timelines.
type leaky struct {
	engineSource
	token string
}

func (s leaky) Snapshot() alert.Status {
	st := s.engineSource.Snapshot()
	st.Vantage = s.token
	st.Banner += " " + s.token
	for i := range st.Targets {
		st.Targets[i].Target = "logs/" + s.token + "@eu1"
		st.Targets[i].LastError = "401 for key " + s.token
	}
	for i := range st.Incidents {
		st.Incidents[i].Key += s.token
		st.Incidents[i].Timeline = append(st.Incidents[i].Timeline, alert.Event{Kind: "note", Text: "sent with " + s.token})
	}
	// Peers name themselves: a member's name, address and list come from elsewhere.
	st.Fleet = &alert.FleetStatus{Member: s.token, Quorum: 1, Live: 1, Alone: true, AloneAfter: s.token, Members: []alert.FleetMember{
		{Name: s.token, Addr: s.token + ":7946", State: "alive", Self: true, Failing: []string{s.token}},
	}}
	st.Votes = map[string]map[string]string{"logs": {"eu1": "down from " + s.token}}
	for i := range st.Targets {
		st.Targets[i].Votes = "down from " + s.token
	}
	return st
}

func (s leaky) Closed(int) ([]alert.Incident, error) {
	return nil, fmt.Errorf("read closed: key %s: %w", s.token, errors.New("boom"))
}
func (s leaky) History(string, time.Time, time.Time, time.Duration) ([]store.Bucket, error) {
	return nil, errors.New("history of " + s.token + " unreadable")
}
func (s leaky) FindIncident(string) (alert.Incident, bool, error) {
	return alert.Incident{}, false, errors.New("find " + s.token)
}

func TestTokenNeverShown(t *testing.T) {
	// core is in every form of the token, however escaped: if it shows, the token did.
	const core = "5f1c9a0d7e3b42c8"
	for _, token := range []string{"tok-" + core, `tok+<&>"'= ` + core + `/?#%`} {
		t.Run(url.QueryEscape(token), func(t *testing.T) {
			r := faultRig(t)
			var logs bytes.Buffer
			h := statuspage.New(leaky{engineSource{r.engine, r.store, r.outbox}, token}, statuspage.Options{
				Token: config.NewSecret(token), Now: r.clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			srv := serve(t, h)
			requests := []struct{ method, path, body string }{
				{"GET", "/", ""},
				{"GET", "/api/v1/status", ""},
				{"GET", "/api/v1/incidents", ""},
				{"GET", "/api/v1/incidents/picket~region~eu1/timeline", ""},
				{"GET", "/api/v1/incidents/" + url.PathEscape(token) + "/timeline", ""},
				{"GET", "/api/v1/history/" + url.PathEscape("logs/"+token+"@eu1"), ""},
				{"GET", "/api/v1/silences", ""},
				{"GET", "/api/v1/outbox", ""},
				{"GET", "/api/v1/cluster", ""},
				{"POST", "/api/v1/silences", `{"comment":"` + core + `"}`}, // 401: no token sent
				{"DELETE", "/api/v1/silences/" + url.PathEscape(token), ""},
			}
			shown := 0
			for _, req := range requests {
				a := do(t, srv, req.method, req.path, strings.NewReader(req.body), nil)
				if strings.Contains(a.body, core) {
					t.Errorf("%s %s shows the token:\n%s", req.method, req.path, clip(a.body))
				}
				shown += strings.Count(a.body, "[redacted]")
			}
			if shown < 10 {
				t.Errorf("[redacted] shows %d times, want the token's places marked (banner, targets, errors, timeline)", shown)
			}
			if strings.Contains(logs.String(), core) {
				t.Errorf("logs show the token:\n%s", logs.String())
			}
		})
	}
}

func TestPageSurvivesSourceErrors(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(leaky{engineSource{r.engine, r.store, r.outbox}, "tok-abc"}, statuspage.Options{Now: r.clock.Now}))
	a := do(t, srv, "GET", "/", nil, nil)
	if a.status != 200 {
		t.Fatalf("page with failing history and closed incidents: %d, want 200", a.status)
	}
	for _, s := range []string{"Uptime history is unavailable: history of", "Resolved incidents are unavailable: read closed", `data-status="down"`} {
		if !strings.Contains(a.body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if a := do(t, srv, "GET", "/api/v1/incidents", nil, nil); a.status != 500 || !strings.Contains(a.body, `"error":"read closed incidents: read closed`) {
		t.Errorf("incidents with a failing store: %d %s, want 500 with the cause", a.status, a.body)
	}
}

func TestUptimeBars(t *testing.T) {
	r := newRig(t, smallPlatform, testStart)
	logsEU := r.targetID("logs", "submit-and-read", "eu1")
	// 90 days of one result an hour, one hour down three days ago; 24 h of one result
	// every 5 minutes, one slot down an hour ago.
	var results []store.Result
	for at := testStart.Add(-90 * 24 * time.Hour); at.Before(testStart); at = at.Add(time.Hour) {
		status := store.StatusUp
		if at.Equal(testStart.Add(-72 * time.Hour)) {
			status = store.StatusDown
		}
		results = append(results, store.Result{Target: logsEU, At: at, Status: status})
	}
	for at := testStart.Add(-24 * time.Hour).Add(2 * time.Minute); at.Before(testStart); at = at.Add(5 * time.Minute) {
		status := store.StatusUp
		if testStart.Sub(at) > time.Hour && testStart.Sub(at) < time.Hour+5*time.Minute {
			status = store.StatusDown
		}
		results = append(results, store.Result{Target: logsEU, At: at, Status: status})
	}
	if err := r.store.RecordResults(results); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body
	start := strings.Index(page, `<div class="uptime-row" data-target="`+logsEU+`">`)
	if start < 0 {
		t.Fatalf("no uptime row for %s", logsEU)
	}
	row := page[start:]
	if end := strings.Index(row[1:], `<div class="uptime-row"`); end > 0 {
		row = row[:end+1]
	}
	bars := regexp.MustCompile(`<div class="bar [a-z]+" role="img" aria-label="([^"]*)">(.*?)</div><span class="pct">([^<]*)</span>`).FindAllStringSubmatch(row, -1)
	if len(bars) != 2 {
		t.Fatalf("%d bars in the row, want 24 h and 90 d:\n%s", len(bars), clip(row))
	}
	day, quarter := bars[0], bars[1]
	if n := strings.Count(day[2], `<i class="g-`); n != 288 {
		t.Errorf("24 h bar has %d segments, want 288", n)
	}
	if n := strings.Count(quarter[2], `<i class="g-`); n != 90 {
		t.Errorf("90 d bar has %d segments, want 90", n)
	}
	// 24 h holds the 5-minute results and the hourly ones: 309 of 310 up.
	if day[3] != "24 h 99.67%" || day[1] != "last 24 hours: 99.67% up" {
		t.Errorf("24 h: %q / %q, want 99.67%% (309 of 310 up, rounded down)", day[3], day[1])
	}
	if strings.Count(day[2], "g-down") != 1 || strings.Count(day[2], "g-none") != 1 {
		t.Errorf("24 h bar: want one down slot and one empty (the current) slot")
	}
	if !strings.Contains(quarter[2], `<i class="g-degraded" title="2026-02-27: 95.83% up (23 up, 1 down)"></i>`) {
		t.Errorf("90 d bar lacks the day with one hour down:\n%s", clip(quarter[2]))
	}
	if !strings.Contains(row, `<i class="g-down" title="Mar 2 08:55: 1 down"></i>`) {
		t.Errorf("24 h bar lacks the down slot's tooltip")
	}
}

// BenchmarkStatusPage renders the page of the README screenshot: 4 regions, 4
// products, 18 targets with 90 days of history (36 history reads per page).
func BenchmarkStatusPage(b *testing.B) {
	now := time.Now().UTC()
	r := newRig(b, realisticPlatform, now)
	r.realisticHistory(now)
	h := statuspage.New(r.source(), statuspage.Options{Token: config.NewSecret(testToken), Now: r.clock.Now})
	req := httptest.NewRequest("GET", "/", nil)
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func TestPageCompressed(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	// A client that asks for gzip itself gets it as it is, not unpacked for it.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(encoding string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Header.Set("Accept-Encoding", encoding)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	plainResp, plain := get("identity")
	zipResp, zipped := get("br;q=1.0, gzip;q=0.8")
	if plainResp.Header.Get("Content-Encoding") != "" || zipResp.Header.Get("Content-Encoding") != "gzip" ||
		zipResp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("Content-Encoding %q and %q (Vary %q): want none, then gzip",
			plainResp.Header.Get("Content-Encoding"), zipResp.Header.Get("Content-Encoding"), zipResp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unpacked, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unpacked, plain) || 3*len(zipped) > len(plain) {
		t.Errorf("gzip answer: %d bytes unpacking to the same page: %v; plain %d bytes; want the same page, at least 3x smaller",
			len(zipped), bytes.Equal(unpacked, plain), len(plain))
	}
}
