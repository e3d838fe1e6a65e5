package statuspage_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/statuspage"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/scrub"
)

// publicPlatform is realisticPlatform with a public page: logs and metrics have
// public words, the others go by their titles.
var publicPlatform = func() platform {
	p := realisticPlatform
	p.extra = `public:
  listen: 127.0.0.1:0
  title: Acme Cloud status
  url: https://status.acme.test
  products:
    logs: {title: Logs, description: "Send, store and search your logs.", degraded_means: "Logs arrive late; searches may be slow.", journeys_shown: [submit-and-read]}
    metrics: {description: "Store and query metrics."}
`
	return p
}()

// publicRig is a rig with the public handler on a loopback server.
func publicRig(t *testing.T, start time.Time) (*rig, *statuspage.PublicHandler, *httptest.Server) {
	t.Helper()
	r := newRig(t, publicPlatform, start)
	h := statuspage.NewPublic(r.source(), statuspage.PublicOptions{
		Public: r.cfg.Public, Names: alert.NamesOf(r.cfg), Now: r.clock.Now,
		Redactor: scrub.NewWithForms(r.cfg.SecretValues()...),
	})
	return r, h, serve(t, h)
}

// operatorDetail is what must never reach the public page: target ids, journeys not
// shown, raw errors, the notifier, hosts, the vantage, dedup keys.
var operatorDetail = []string{"@eu1", "logs/submit-and-read", "write-and-query", "login-page", "503", "Service Unavailable",
	"hook", "127.0.0.1", "fsn1-vps", "picket/", "step "}

func noOperatorDetail(t *testing.T, what, body string) {
	t.Helper()
	for _, s := range operatorDetail {
		if strings.Contains(body, s) {
			t.Errorf("%s carries operator detail %q", what, s)
		}
	}
}

func get(t *testing.T, srv *httptest.Server, path string) answer {
	t.Helper()
	return do(t, srv, "GET", path, nil, nil)
}

// TestPublicGlobalOutage: a regional outage that grows into a global one is one card
// ("began as" the region), the components say major outage where every journey fails,
// the page, the JSON, the feed and the badge agree, and none of them carries operator
// detail; once resolved and with a human update, the card is in the history and says
// resolved.
func TestPublicGlobalOutage(t *testing.T) {
	r, _, base := publicRig(t, testStart)
	r.round(nil)
	r.clock.Advance(time.Minute)
	r.round(failing("eu1"))
	r.clock.Advance(time.Minute)
	r.round(anyOf(failing("eu1"), failing("us1"), failing("us3")))
	r.clock.Advance(time.Minute)

	page := get(t, base, "/")
	if page.status != 200 || !strings.Contains(page.header.Get("Content-Security-Policy"), "default-src 'none'") || strings.Contains(page.body, "<script") {
		t.Fatalf("page: %d, CSP %q, script: %v", page.status, page.header.Get("Content-Security-Policy"), strings.Contains(page.body, "<script"))
	}
	const want = "Major outage: Logs, Metrics, Events API, Web App in Europe 1, US East 1 and US West 3"
	if !strings.Contains(page.body, want) {
		t.Errorf("page lacks %q:\n%s", want, excerpt(page.body, "overall"))
	}
	if n := strings.Count(page.body, `<article class="incident`); n != 1 {
		t.Errorf("%d incident cards, want one for the global outage (the region's inside it)", n)
	}
	if !strings.Contains(page.body, "Began as: Major outage: Logs, Metrics, Events API, Web App in Europe 1, from") {
		t.Errorf("the card does not say it began as the eu1 outage:\n%s", excerpt(page.body, "incident"))
	}
	for _, s := range []string{`data-component="logs.eu1" data-state="major_outage"`, `data-component="logs.ap1" data-state="operational"`,
		"Logs arrive late; searches may be slow.", "Checked continuously:</strong> submit-and-read", "24 h "} {
		if !strings.Contains(page.body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	noOperatorDetail(t, "the page", strings.ReplaceAll(page.body, "Checked continuously:</strong> submit-and-read", ""))

	var sum struct {
		Page       map[string]any   `json:"page"`
		Status     map[string]any   `json:"status"`
		Components []map[string]any `json:"components"`
		Incidents  []map[string]any `json:"incidents"`
		Scheduled  []any            `json:"scheduled_maintenances"`
	}
	js := get(t, base, "/api/v2/summary.json")
	if err := json.Unmarshal([]byte(js.body), &sum); err != nil || js.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("summary.json: %v %s", err, js.body)
	}
	noOperatorDetail(t, "summary.json", js.body)
	if sum.Status["indicator"] != "critical" || sum.Status["description"] != want || sum.Scheduled == nil {
		t.Errorf("status %v, scheduled %v", sum.Status, sum.Scheduled)
	}
	if len(sum.Incidents) != 1 || sum.Incidents[0]["status"] != "investigating" || sum.Incidents[0]["impact"] != "critical" {
		t.Fatalf("incidents %v", sum.Incidents)
	}
	byID := map[string]map[string]any{}
	for _, c := range sum.Components {
		byID[c["id"].(string)] = c
	}
	if g := byID["logs"]; g == nil || g["group"] != true || g["status"] != "partial_outage" || len(g["components"].([]any)) != 4 {
		t.Errorf("logs group: %v", g)
	}
	if c := byID["logs.us1"]; c == nil || c["status"] != "major_outage" || c["group_id"] != "logs" || c["name"] != "Logs (US East 1)" {
		t.Errorf("logs.us1: %v", c)
	}

	if _, _, err := r.engine.PostUpdate("picket/global", alert.Update{Status: alert.UpdateIdentified, Text: "A storage cluster failed; failing over."}); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(10 * time.Minute)
	r.round(nil)
	r.clock.Advance(time.Minute)
	page = get(t, base, "/")
	if !strings.Contains(page.body, "All systems operational") || strings.Contains(page.body, "Current incidents") {
		t.Errorf("after the recovery the page is not all operational:\n%s", excerpt(page.body, "overall"))
	}
	hist := excerpt(page.body, `<article class="incident`)
	for _, s := range []string{`data-status="resolved"`, "A storage cluster failed; failing over.", "Our automated checks see everything working again, after 12m."} {
		if !strings.Contains(hist, s) {
			t.Errorf("resolved card lacks %q:\n%s", s, hist)
		}
	}
	feed := get(t, base, "/history.atom")
	var f struct {
		Entries []struct {
			Title   string `xml:"title"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(feed.body), &f); err != nil || len(f.Entries) < 1 {
		t.Fatalf("feed: %v %s", err, feed.body)
	}
	if e := f.Entries[0]; !strings.HasPrefix(e.Title, "Resolved: Major outage: Logs") || !strings.Contains(e.Content, "A storage cluster failed; failing over.") {
		t.Errorf("newest feed entry: %+v", e)
	}
	noOperatorDetail(t, "the feed", feed.body)
	if b := get(t, base, "/badge.svg"); !strings.Contains(b.body, "Operational") || b.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("badge: %s %s", b.header.Get("Content-Type"), b.body)
	}
}

// TestPublicServesOnlyItsPaths: the admin API and the internal page are not on the
// public handler, and it takes no write.
func TestPublicServesOnlyItsPaths(t *testing.T) {
	_, _, base := publicRig(t, testStart)
	for _, p := range []string{"/api/v1/status", "/api/v1/incidents", "/metrics", "/static/app.js", "/api/v1/silences"} {
		if a := get(t, base, p); a.status != 404 {
			t.Errorf("GET %s: %d, want 404", p, a.status)
		}
	}
}

// excerpt is the text from the first occurrence of marker, for failure messages.
func excerpt(body, marker string) string {
	i := strings.Index(body, marker)
	if i < 0 {
		return "(no " + marker + ")"
	}
	end := min(len(body), i+1500)
	return regexp.MustCompile(`\s+`).ReplaceAllString(body[i:end], " ")
}

// TestInternalPageShowsUpdates: the operators' page shows the humans' updates on the
// incident's card, and its JSON carries them for the script's refresh.
func TestInternalPageShowsUpdates(t *testing.T) {
	r := newRig(t, publicPlatform, testStart)
	r.regionalFault()
	if _, _, err := r.engine.PostUpdate("picket/region/eu1", alert.Update{Status: alert.UpdateMonitoring, Text: "Fix deployed <b>now</b>.", Author: "ana"}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	page := get(t, srv, "/")
	if !strings.Contains(page.body, `<span class="kind">monitoring</span>`) || !strings.Contains(page.body, " · ana: Fix deployed &lt;b&gt;now&lt;/b&gt;.") {
		t.Errorf("internal card lacks the update (escaped):\n%s", excerpt(page.body, `<ol class="updates">`))
	}
	if st := get(t, srv, "/api/v1/status"); !strings.Contains(st.body, `"updates":[{"id":1,`) {
		t.Errorf("status JSON lacks the updates: %s", excerpt(st.body, `"updates"`))
	}
}

// TestPublicOneCardPerCell: two journeys of one product failing in one region are two
// target incidents to the engine and one incident to customers.
func TestPublicOneCardPerCell(t *testing.T) {
	r, _, srv := publicRig(t, testStart)
	r.round(nil)
	r.clock.Advance(time.Minute)
	r.round(failing("ap1", "web"))
	if n := len(r.engine.Snapshot().Incidents); n != 2 {
		t.Fatalf("%d open incidents, want the two target incidents of web in ap1", n)
	}
	r.clock.Advance(time.Minute)
	page := get(t, srv, "/")
	if strings.Count(page.body, `<article class="incident`) != 1 || !strings.Contains(page.body, "Investigating</span> Major outage: Web App in Asia Pacific 1</h3>") {
		t.Errorf("want one card for web in ap1:\n%s", excerpt(page.body, `<article`))
	}
	r.round(nil)
	r.clock.Advance(time.Minute)
	page = get(t, srv, "/")
	if strings.Count(page.body, `<article class="incident`) != 1 || !strings.Contains(page.body, "Resolved</span> Major outage: Web App in Asia Pacific 1</h3>") {
		t.Errorf("want one resolved card for web in ap1:\n%s", excerpt(page.body, `<article`))
	}
}

// FuzzUpdateRequest: whatever body a client posts as an update, the API answers 201,
// 400 or 404 (never a 5xx, never a panic), and an accepted update is listed back with
// its status and its text as posted (trimmed).
func FuzzUpdateRequest(f *testing.F) {
	for _, seed := range []string{
		`{"status":"identified","text":"Failing over.","author":"ana"}`, `{"status":"resolved","text":"  back  "}`,
		`{"status":"fixed","text":"x"}`, `{"status":"monitoring","text":""}`, `{"status":"monitoring","text":"x","extra":1}`,
		`{"status":"investigating","text":"x"} {}`, `[]`, `null`, `{"text":1}`, "{\"status\":\"identified\",\"text\":\"\\u0000<script>\"}",
	} {
		f.Add([]byte(seed), "picket~region~eu1")
	}
	f.Add([]byte(`{"status":"identified","text":"x"}`), "picket~region~nowhere")
	r := newRig(f, smallPlatform, testStart)
	r.regionalFault()
	srv := httptest.NewServer(statuspage.New(r.source(), statuspage.Options{Token: config.NewSecret(testToken), Now: r.clock.Now}))
	defer srv.Close()
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		if key == "" {
			return // not a path segment
		}
		key = url.PathEscape(key)
		hdr := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"}
		a := do(t, srv, "POST", "/api/v1/incidents/"+key+"/updates", bytes.NewReader(body), hdr)
		switch a.status {
		case 400, 404, 413:
			return
		case 201:
		default:
			t.Fatalf("POST %q: %d %s", body, a.status, a.body)
		}
		var made struct {
			Update alert.Update `json:"update"`
		}
		if err := json.Unmarshal([]byte(a.body), &made); err != nil {
			t.Fatalf("answer %s: %v", a.body, err)
		}
		var sent struct{ Status, Text string }
		_ = json.Unmarshal(body, &sent)
		if made.Update.Status != sent.Status || made.Update.Text != strings.TrimSpace(sent.Text) {
			t.Fatalf("posted %q, made %+v", body, made.Update)
		}
		list := do(t, srv, "GET", "/api/v1/incidents/"+key+"/updates", nil, nil)
		if list.status != 200 || !strings.Contains(list.body, fmt.Sprintf(`"id":%d,`, made.Update.ID)) {
			t.Fatalf("updates of %s: %d %s", key, list.status, list.body)
		}
	})
}

// BenchmarkPublicPage renders the public page of the README screenshot (4 regions, 4
// products, 18 targets, 90 days of history): "cold" rebuilds it every time (a new
// snapshot and 36 history reads), "cached" is what the requests within CacheFor cost.
func BenchmarkPublicPage(b *testing.B) {
	now := time.Now().UTC()
	r := newRig(b, publicPlatform, now)
	r.realisticHistory(now)
	h := statuspage.NewPublic(r.source(), statuspage.PublicOptions{Public: r.cfg.Public, Names: alert.NamesOf(r.cfg), Now: r.clock.Now})
	for _, mode := range []string{"cold", "cached"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				if mode == "cold" {
					r.clock.Advance(time.Minute)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				if rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// TestPublicCachesForAFewSeconds: within CacheFor (5s) every request gets the page
// already built, even when the engine changed; after it, the new state.
func TestPublicCachesForAFewSeconds(t *testing.T) {
	r, _, srv := publicRig(t, testStart)
	r.round(nil)
	if p := get(t, srv, "/"); !strings.Contains(p.body, "All systems operational") {
		t.Fatalf("healthy page:\n%s", excerpt(p.body, "overall"))
	}
	r.clock.Advance(4 * time.Second)
	r.round(failing("eu1"))
	if p, js := get(t, srv, "/"), get(t, srv, "/api/v2/status.json"); !strings.Contains(p.body, "All systems operational") || !strings.Contains(js.body, `"indicator":"none"`) {
		t.Errorf("4s later the cached page and JSON changed: %s", js.body)
	}
	r.clock.Advance(2 * time.Second)
	if p, js := get(t, srv, "/"), get(t, srv, "/api/v2/status.json"); !strings.Contains(p.body, "Major outage") || !strings.Contains(js.body, `"indicator":"critical"`) {
		t.Errorf("6s later the page and JSON still show the old state: %s", js.body)
	}
}

// TestPublicLogo: logo_url is shown, and the page may load images from its origin and
// from nowhere else.
func TestPublicLogo(t *testing.T) {
	r := newRig(t, publicPlatform, testStart)
	pub := *r.cfg.Public
	pub.LogoURL = "https://cdn.acme.test/brand/logo.svg"
	srv := serve(t, statuspage.NewPublic(r.source(), statuspage.PublicOptions{Public: &pub, Names: alert.NamesOf(r.cfg), Now: r.clock.Now}))
	page := get(t, srv, "/")
	if !strings.Contains(page.body, `<img class="logo" src="https://cdn.acme.test/brand/logo.svg"`) ||
		!strings.Contains(page.header.Get("Content-Security-Policy"), "img-src 'self' https://cdn.acme.test;") {
		t.Errorf("logo: CSP %q, page %s", page.header.Get("Content-Security-Policy"), excerpt(page.body, "<header"))
	}
}
