package statuspage_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/store"
)

var testStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const testToken = "tok-3c9f1e7a5b2d4f60"

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// faultRig is a rig in a regional fault (eu1: logs and metrics down) with one
// resolved incident behind it (metrics in ap1, an hour earlier).
func faultRig(t *testing.T) *rig {
	r := newRig(t, smallPlatform, testStart.Add(-time.Hour))
	r.round(nil)
	r.clock.Advance(time.Minute)
	r.round(failing("ap1", "metrics"))
	r.clock.Advance(5 * time.Minute)
	r.round(nil) // ap1 metrics recovers: a closed target incident
	r.clock.Set(testStart)
	r.regionalFault()
	return r
}

func TestRoutes(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Token: config.NewSecret(testToken), Now: r.clock.Now}))
	logsEU := r.targetID("logs", "submit-and-read", "eu1")
	closedKey := "picket/target/" + r.targetID("metrics", "write-and-query", "ap1")

	cases := []struct {
		name        string
		method      string
		path        string
		header      map[string]string
		wantStatus  int
		wantType    string // prefix of Content-Type
		wantContain []string
		check       func(t *testing.T, a answer)
	}{
		{name: "page", method: "GET", path: "/", wantStatus: 200, wantType: "text/html",
			wantContain: []string{`id="banner"`, `data-scope="region"`, "Regional outage: eu1", `data-status="down"`}},
		{name: "page HEAD", method: "HEAD", path: "/", wantStatus: 200, wantType: "text/html"},
		{name: "page POST", method: "POST", path: "/", wantStatus: 405, wantType: "application/json",
			check: wantHeader("Allow", "GET, HEAD")},
		{name: "unknown page", method: "GET", path: "/nope", wantStatus: 404},
		{name: "script", method: "GET", path: "/static/app.js", wantStatus: 200, wantType: "text/javascript",
			wantContain: []string{"api/v1/status", "textContent"}},
		{name: "style", method: "GET", path: "/static/style.css", wantStatus: 200, wantType: "text/css"},
		{name: "unknown static", method: "GET", path: "/static/nope.js", wantStatus: 404},
		{name: "status", method: "GET", path: "/api/v1/status", wantStatus: 200, wantType: "application/json",
			check: func(t *testing.T, a answer) {
				var st alert.Status
				decode(t, a.body, &st)
				if st.Banner != "Regional outage: eu1" || st.Scope.Kind != alert.ScopeRegion {
					t.Errorf("banner %q, scope %q: want the eu1 regional outage", st.Banner, st.Scope.Kind)
				}
				if got := st.Matrix["logs"]["eu1"]; got != "down" {
					t.Errorf("matrix logs/eu1 = %q, want down", got)
				}
			}},
		{name: "status POST", method: "POST", path: "/api/v1/status", wantStatus: 405, wantType: "application/json",
			wantContain: []string{`"error"`}},
		{name: "incidents", method: "GET", path: "/api/v1/incidents", wantStatus: 200, wantType: "application/json",
			check: func(t *testing.T, a answer) {
				var got struct{ Open, Closed []alert.Incident }
				decode(t, a.body, &got)
				if len(got.Open) == 0 || got.Open[0].Key != "picket/region/eu1" {
					t.Errorf("open incidents %+v: want picket/region/eu1 first", keys(got.Open))
				}
				if len(got.Closed) != 1 || got.Closed[0].Key != closedKey {
					t.Errorf("closed incidents %v: want [%s]", keys(got.Closed), closedKey)
				}
			}},
		{name: "incidents bad limit", method: "GET", path: "/api/v1/incidents?limit=0", wantStatus: 400, wantType: "application/json",
			wantContain: []string{"limit: expected an integer from 1 to 1000"}},
		{name: "timeline with tildes", method: "GET", path: "/api/v1/incidents/picket~region~eu1/timeline", wantStatus: 200,
			wantType: "application/json", check: wantTimeline("picket/region/eu1", "opened")},
		{name: "timeline URL-escaped", method: "GET", path: "/api/v1/incidents/picket%2Fregion%2Feu1/timeline", wantStatus: 200,
			wantType: "application/json", check: wantTimeline("picket/region/eu1", "opened")},
		{name: "timeline of a closed incident", method: "GET", path: "/api/v1/incidents/" + url.PathEscape(strings.ReplaceAll(closedKey, "/", "~")) + "/timeline",
			wantStatus: 200, wantType: "application/json", check: wantTimeline(closedKey, "resolved")},
		{name: "timeline unknown", method: "GET", path: "/api/v1/incidents/picket~region~zz9/timeline", wantStatus: 404,
			wantType: "application/json", wantContain: []string{`picket/region/zz9`}},
		{name: "history 24h", method: "GET", path: "/api/v1/history/" + url.PathEscape(logsEU), wantStatus: 200,
			wantType: "application/json", check: wantBuckets(288, 5*time.Minute, 1)},
		{name: "history 90d", method: "GET", path: "/api/v1/history/" + url.PathEscape(logsEU) + "?range=90d", wantStatus: 200,
			wantType: "application/json", check: wantBuckets(89*24+11, time.Hour, 1)},
		{name: "history with tildes", method: "GET", path: "/api/v1/history/" + strings.ReplaceAll(logsEU, "/", "~"), wantStatus: 200,
			wantType: "application/json", check: wantBuckets(288, 5*time.Minute, 1)},
		{name: "history bad range", method: "GET", path: "/api/v1/history/" + url.PathEscape(logsEU) + "?range=7d", wantStatus: 400,
			wantType: "application/json", wantContain: []string{`range: expected 24h or 90d, got \"7d\"`}},
		{name: "history unknown target", method: "GET", path: "/api/v1/history/" + url.PathEscape("logs/nope@eu1"), wantStatus: 404,
			wantType: "application/json"},
		{name: "silences", method: "GET", path: "/api/v1/silences", wantStatus: 200, wantType: "application/json",
			wantContain: []string{"[]"}},
		{name: "silence without token", method: "POST", path: "/api/v1/silences", wantStatus: 401, wantType: "application/json",
			check: wantHeader("WWW-Authenticate", `Bearer realm="picket"`)},
		{name: "silence wrong token", method: "POST", path: "/api/v1/silences", header: bearer("tok-wrong"), wantStatus: 401},
		{name: "silence token as a prefix", method: "POST", path: "/api/v1/silences", header: bearer(testToken + "x"), wantStatus: 401},
		{name: "silence basic auth", method: "POST", path: "/api/v1/silences",
			header: map[string]string{"Authorization": "Basic " + testToken}, wantStatus: 401},
		{name: "delete without token", method: "DELETE", path: "/api/v1/silences/abc", wantStatus: 401},
		{name: "delete unknown", method: "DELETE", path: "/api/v1/silences/abc", header: bearer(testToken), wantStatus: 404,
			wantType: "application/json", wantContain: []string{`no run-time silence \"abc\"`}},
		{name: "silence GET by id", method: "GET", path: "/api/v1/silences/abc", wantStatus: 405, check: wantHeader("Allow", "DELETE")},
		{name: "silences PUT", method: "PUT", path: "/api/v1/silences", wantStatus: 405, check: wantHeader("Allow", "GET, HEAD, POST")},
		{name: "outbox", method: "GET", path: "/api/v1/outbox", wantStatus: 200, wantType: "application/json",
			check: func(t *testing.T, a answer) {
				var got []notify.EntryInfo
				decode(t, a.body, &got)
				found := false
				for _, e := range got {
					found = found || (e.DedupKey == "picket/region/eu1" && e.Action == notify.ActionTrigger)
				}
				if !found {
					t.Errorf("outbox %s: want a pending trigger of picket/region/eu1", a.body)
				}
			}},
		{name: "cluster without a fleet", method: "GET", path: "/api/v1/cluster", wantStatus: 404, wantType: "application/json",
			wantContain: []string{`"error":"this vantage is not in a cluster (no cluster: in its config)"`}},
		{name: "cluster POST", method: "POST", path: "/api/v1/cluster", wantStatus: 405, wantType: "application/json",
			check: wantHeader("Allow", "GET, HEAD")},
		{name: "unknown API", method: "GET", path: "/api/v1/nope", wantStatus: 404, wantType: "application/json",
			wantContain: []string{`"error":"no API route /api/v1/nope"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, srv, tc.method, tc.path, nil, tc.header)
			if a.status != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.path, a.status, tc.wantStatus, a.body)
			}
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type %q, want %q", ct, tc.wantType)
			}
			if tc.wantType == "application/json" && tc.method != "HEAD" && !json.Valid([]byte(a.body)) {
				t.Errorf("body is not JSON: %s", a.body)
			}
			if tc.wantStatus >= 400 && tc.wantType == "application/json" {
				var e struct{ Error string }
				if decode(t, a.body, &e); e.Error == "" {
					t.Errorf("error answer %s: want {\"error\": ...}", a.body)
				}
			}
			for _, s := range tc.wantContain {
				if !strings.Contains(a.body, s) {
					t.Errorf("body lacks %q:\n%s", s, clip(a.body))
				}
			}
			if tc.check != nil {
				tc.check(t, a)
			}
			if got := a.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
		})
	}
}

func TestWritesRefusedWithoutToken(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	for _, req := range []struct{ method, path string }{{"POST", "/api/v1/silences"}, {"DELETE", "/api/v1/silences/abc"}} {
		// Even a request that brings some token: there is none to match.
		a := do(t, srv, req.method, req.path, strings.NewReader(`{}`), bearer(""))
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "writes are disabled: no API token is configured") {
			t.Errorf("%s %s without a configured token: %d %s, want 403 saying writes are disabled", req.method, req.path, a.status, a.body)
		}
	}
	if got := len(r.engine.Silences()); got != 0 {
		t.Errorf("%d silences after refused writes, want 0", got)
	}
}

func TestSilenceRoundTrip(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Token: config.NewSecret(testToken), Now: r.clock.Now}))
	auth := bearer(testToken)
	auth["Content-Type"] = "application/json"

	created := do(t, srv, "POST", "/api/v1/silences", strings.NewReader(
		`{"comment":"us1 maintenance","creator":"ops","duration":"2h","match":{"region":["us1"],"scope":["target","region"]}}`), auth)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s, want 201", created.status, created.body)
	}
	var s struct {
		ID, Comment string
		Start, End  time.Time
		Active      bool
		Match       struct{ Region, Scope []string }
	}
	decode(t, created.body, &s)
	if s.ID == "" || !s.Active || !s.Start.Equal(testStart.Add(30*time.Second)) || s.End.Sub(s.Start) != 2*time.Hour {
		t.Errorf("created %+v: want an id, active, from now for 2h", s)
	}
	if loc := created.header.Get("Location"); loc != "/api/v1/silences/"+s.ID {
		t.Errorf("Location %q, want /api/v1/silences/%s", loc, s.ID)
	}

	list := do(t, srv, "GET", "/api/v1/silences", nil, nil)
	if !strings.Contains(list.body, `"id":"`+s.ID+`"`) || !strings.Contains(list.body, `"match":{"scope":["target","region"],"region":["us1"]}`) {
		t.Errorf("list %s: want the new silence with its match in lower case", list.body)
	}

	// The silence is real: a new failure in us1 opens a silenced incident.
	r.clock.Advance(30 * time.Second)
	r.round(anyOf(failing("eu1", "logs", "metrics"), failing("us1", "events")))
	eventsUS := "picket/target/" + r.targetID("events", "submit-and-read", "us1")
	inc, ok := r.engine.Incident(eventsUS)
	if !ok || !inc.Silenced {
		t.Errorf("incident %s: open %v, silenced %v; want open and silenced", eventsUS, ok, inc.Silenced)
	}

	gone := do(t, srv, "DELETE", "/api/v1/silences/"+s.ID, nil, bearer(testToken))
	if gone.status != http.StatusOK || !strings.Contains(gone.body, `"deleted":"`+s.ID+`"`) {
		t.Errorf("delete: %d %s, want 200 naming the id", gone.status, gone.body)
	}
	if list := do(t, srv, "GET", "/api/v1/silences", nil, nil); strings.TrimSpace(list.body) != "[]" {
		t.Errorf("list after delete: %s, want []", list.body)
	}
	if again := do(t, srv, "DELETE", "/api/v1/silences/"+s.ID, nil, bearer(testToken)); again.status != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", again.status)
	}
}

func TestSilenceWithEnd(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Token: config.NewSecret(testToken), Now: r.clock.Now}))
	start := testStart.Add(time.Hour).Format(time.RFC3339)
	end := testStart.Add(3 * time.Hour).Format(time.RFC3339)
	// As `curl -d` sends it: labelled as a form, which is fine.
	header := bearer(testToken)
	header["Content-Type"] = "application/x-www-form-urlencoded"
	a := do(t, srv, "POST", "/api/v1/silences", strings.NewReader(
		`{"comment":"planned","start":"`+start+`","end":"`+end+`","match":{"product":["logs"],"priority":[1]}}`), header)
	if a.status != http.StatusCreated || !strings.Contains(a.body, `"active":false`) {
		t.Fatalf("create a planned silence: %d %s, want 201 and not active yet", a.status, a.body)
	}
	got := r.engine.Silences()
	if len(got) != 1 || got[0].Start.Format(time.RFC3339) != start || got[0].End.Format(time.RFC3339) != end ||
		got[0].Match.Product[0] != "logs" || got[0].Match.Priority[0] != 1 {
		t.Errorf("engine silences %+v: want the planned one", got)
	}
}

func TestSilenceBadRequests(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Token: config.NewSecret(testToken), Now: r.clock.Now}))
	valid := `"comment":"c","duration":"1h","match":{"region":["eu1"]}`
	past := testStart.Add(-time.Hour).Format(time.RFC3339)
	cases := []struct {
		name, body string
		wantStatus int
		wantError  string
	}{
		{"not JSON", `{"comment":`, 400, "body: expected a JSON silence"},
		{"unknown field", `{` + valid + `,"matchers":[]}`, 400, `unknown field \"matchers\"`},
		{"unknown match field", `{"comment":"c","duration":"1h","match":{"regions":["eu1"]}}`, 400, `unknown field \"regions\"`},
		{"two objects", `{` + valid + `}{}`, 400, "expected one JSON object, got more"},
		{"oversized", `{"comment":"` + strings.Repeat("x", 65<<10) + `","duration":"1h","match":{"region":["eu1"]}}`, 413, "expected at most 65536 bytes"},
		{"no comment", `{"duration":"1h","match":{"region":["eu1"]}}`, 400, "comment: expected why"},
		{"empty match", `{"comment":"c","duration":"1h","match":{}}`, 400, "an empty match would silence every page"},
		{"unknown region", `{"comment":"c","duration":"1h","match":{"region":["eu9"]}}`, 400, `match.region: expected one of eu1, us1, ap1, got \"eu9\"`},
		{"unknown product", `{"comment":"c","duration":"1h","match":{"product":["lgos"]}}`, 400, `match.product: expected one of`},
		{"unknown scope", `{"comment":"c","duration":"1h","match":{"scope":["planet"]}}`, 400, `match.scope: expected one of target, region, product, global, got \"planet\"`},
		{"bad priority", `{"comment":"c","duration":"1h","match":{"priority":[0]}}`, 400, "match.priority: expected 1 or more"},
		{"end and duration", `{"comment":"c","duration":"1h","end":"2030-01-01T00:00:00Z","match":{"region":["eu1"]}}`, 400, "expected end or duration, got both"},
		{"neither end nor duration", `{"comment":"c","match":{"region":["eu1"]}}`, 400, "got neither"},
		{"bad duration", `{"comment":"c","duration":"2 hours","match":{"region":["eu1"]}}`, 400, `duration: expected a positive duration like 2h`},
		{"negative duration", `{"comment":"c","duration":"-1h","match":{"region":["eu1"]}}`, 400, `duration: expected a positive duration`},
		{"bad time", `{"comment":"c","end":"tomorrow","match":{"region":["eu1"]}}`, 400, "body: expected a JSON silence"},
		{"end before start", `{"comment":"c","start":"2030-01-02T00:00:00Z","end":"2030-01-01T00:00:00Z","match":{"region":["eu1"]}}`, 400, "end: expected after start"},
		{"over already", `{"comment":"c","start":"2020-01-01T00:00:00Z","end":"` + past + `","match":{"region":["eu1"]}}`, 400, "end: expected a time in the future"},
		// Past year 9999 in UTC: the store could not save it (was a 500; FuzzSilenceRequest).
		{"start beyond 9999", `{"comment":"c","start":"9999-12-31T23:00:00-05:00","duration":"1h","match":{"region":["eu1"]}}`, 400, "start: expected a time from year 0 to 9999"},
		{"end beyond 9999", `{"comment":"c","start":"9999-12-31T20:00:00Z","duration":"8h","match":{"region":["eu1"]}}`, 400, "end: expected a time from year 0 to 9999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, srv, "POST", "/api/v1/silences", strings.NewReader(tc.body), bearer(testToken))
			if a.status != tc.wantStatus || !strings.Contains(a.body, tc.wantError) {
				t.Errorf("status %d, body %s; want %d with %q", a.status, clip(a.body), tc.wantStatus, tc.wantError)
			}
		})
	}
	if got := r.engine.Silences(); len(got) != 0 {
		t.Errorf("silences after bad requests: %+v, want none", got)
	}
}

func TestHistoryCounts(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	logsEU := r.targetID("logs", "submit-and-read", "eu1")
	var buckets []store.Bucket
	decode(t, do(t, srv, "GET", "/api/v1/history/"+url.PathEscape(logsEU), nil, nil).body, &buckets)
	last := buckets[len(buckets)-1]
	if !last.Start.Equal(testStart) || last.Up != 1 || last.Down != 1 {
		t.Errorf("last bucket %+v: want the slot of %s with 1 up and 1 down", last, testStart)
	}
	if first := buckets[0]; !first.Start.Equal(testStart.Add(-24*time.Hour + 5*time.Minute)) {
		t.Errorf("first bucket starts %s, want 24 h of slots ending with the current one", first.Start)
	}
}

func wantTimeline(key, kind string) func(t *testing.T, a answer) {
	return func(t *testing.T, a answer) {
		var got struct {
			Incident alert.Incident
			Timeline []alert.Event
		}
		decode(t, a.body, &got)
		if got.Incident.Key != key {
			t.Errorf("incident %q, want %q", got.Incident.Key, key)
		}
		found := false
		for _, ev := range got.Timeline {
			found = found || ev.Kind == kind
		}
		if !found {
			t.Errorf("timeline %+v: want an event %q", got.Timeline, kind)
		}
	}
}

func wantBuckets(n int, step time.Duration, nonEmpty int) func(t *testing.T, a answer) {
	return func(t *testing.T, a answer) {
		var got []store.Bucket
		decode(t, a.body, &got)
		if len(got) != n {
			t.Fatalf("%d buckets, want %d", len(got), n)
		}
		withData := 0
		for i, b := range got {
			if i > 0 && b.Start.Sub(got[i-1].Start) != step {
				t.Fatalf("bucket %d starts %s after the previous, want %s", i, b.Start.Sub(got[i-1].Start), step)
			}
			if b.Total() > 0 {
				withData++
			}
		}
		if withData < nonEmpty {
			t.Errorf("%d buckets with results, want at least %d", withData, nonEmpty)
		}
	}
}

func wantHeader(name, value string) func(t *testing.T, a answer) {
	return func(t *testing.T, a answer) {
		if got := a.header.Get(name); got != value {
			t.Errorf("%s %q, want %q", name, got, value)
		}
	}
}

func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %s: %v", clip(body), err)
	}
}

func keys(incs []alert.Incident) []string {
	var out []string
	for _, inc := range incs {
		out = append(out, inc.Key)
	}
	return out
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
