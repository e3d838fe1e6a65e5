package statuspage_test

import (
	"encoding/json"
	"html"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/fleet"
	"github.com/picket-dev/picket/alert/statuspage"
)

const votesTitle = "vantages that see this failing, of the live ones"

// fleetSource is the engine's snapshot with the fields the engine fills in a cluster set
// to given values: the page's input, while everything else comes from the real engine.
type fleetSource struct {
	engineSource
	fleet       *alert.FleetStatus
	votes       map[string]map[string]string // product -> region -> text
	targetVotes map[string]string            // target id -> text
}

func (s fleetSource) Snapshot() alert.Status {
	st := s.engineSource.Snapshot()
	st.Fleet, st.Votes = s.fleet, s.votes
	for i := range st.Targets {
		st.Targets[i].Votes = s.targetVotes[st.Targets[i].Target]
	}
	return st
}

func (r *rig) fleetSource(f *alert.FleetStatus, votes map[string]map[string]string, targetVotes map[string]string) fleetSource {
	return fleetSource{engineSource{r.engine, r.store, r.outbox}, f, votes, targetVotes}
}

// threeVantages is a fleet of three as this vantage (fsn1) sees it at generated: hel1
// agrees about logs in eu1 and sees metrics there only degraded; ash1 is suspect.
func (r *rig) threeVantages(generated time.Time) *alert.FleetStatus {
	logsEU, metricsEU := r.targetID("logs", "submit-and-read", "eu1"), r.targetID("metrics", "write-and-query", "eu1")
	return &alert.FleetStatus{
		Member: "fsn1", Quorum: 2, QuorumSetting: 0, Live: 3, AloneAfter: "2m0s",
		Members: []alert.FleetMember{
			{Name: "fsn1", Addr: "10.0.0.1:7946", State: "alive", Self: true, Failing: []string{logsEU, metricsEU}},
			{Name: "hel1", Addr: "10.0.0.2:7946", State: "alive", LastHeard: generated.Add(-12 * time.Second),
				Failing: []string{logsEU, fleet.Key(metricsEU, fleet.Degraded)}},
			{Name: "ash1", Addr: "[2001:db8::3]:7946", State: "suspect", LastHeard: generated.Add(-3 * time.Minute)},
		},
	}
}

var memberRe = regexp.MustCompile(`<tr data-member="([^"]*)" data-state="([^"]*)"><th scope="row">(.*?)</th>` +
	`<td><span class="member-state ([^"]*)">([^<]*)</span></td><td>(.*?)</td>` +
	`<td class="num"(?: title="([^"]*)")?>([^<]*)</td><td class="addr">([^<]*)</td></tr>`)

// pageMember is one row of the Vantages table, its text unescaped.
type pageMember struct {
	name, state, header, class, stateText, heard, failingTitle, failing, addr string
}

func members(page string) []pageMember {
	var out []pageMember
	for _, m := range memberRe.FindAllStringSubmatch(page, -1) {
		for i := range m {
			m[i] = html.UnescapeString(m[i])
		}
		out = append(out, pageMember{m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9]})
	}
	return out
}

func TestPageShowsVotes(t *testing.T) {
	r := faultRig(t)
	logsEU, metricsEU, logsUS := r.targetID("logs", "submit-and-read", "eu1"), r.targetID("metrics", "write-and-query", "eu1"),
		r.targetID("logs", "submit-and-read", "us1")
	src := r.fleetSource(r.threeVantages(r.clock.Now()),
		map[string]map[string]string{"logs": {"eu1": "down from 2 of 3", "us1": "down from 1 of 3"}, "metrics": {"eu1": "degraded from 1 of 3"}},
		map[string]string{logsEU: "down from 2 of 3", metricsEU: "degraded from 1 of 3", logsUS: "down from 1 of 3"})
	srv := serve(t, statuspage.New(src, statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body

	want := map[[2]string]string{{"logs", "eu1"}: "down from 2 of 3", {"logs", "us1"}: "down from 1 of 3", {"metrics", "eu1"}: "degraded from 1 of 3"}
	for p, row := range cells(t, page) {
		for reg, c := range row {
			if c.votes != want[[2]string{p, reg}] {
				t.Errorf("cell %s/%s second line %q, want %q", p, reg, c.votes, want[[2]string{p, reg}])
			}
			if c.votes != "" && c.votesTitle != votesTitle {
				t.Errorf("cell %s/%s votes title %q, want %q", p, reg, c.votesTitle, votesTitle)
			}
		}
	}
	got := cells(t, page)
	if c := got["logs"]["eu1"]; c.status != "down" || c.label != "Down" {
		t.Errorf("logs/eu1 %q %q: the votes line must not replace the state", c.status, c.label)
	}
	// The tooltip says it per journey, also for one that is up here but down elsewhere.
	if tip := got["logs"]["eu1"].title; !strings.Contains(tip, "submit-and-read: down (firing since 2026-03-02 10:00:30 UTC) · vantages: down from 2 of 3 — step") {
		t.Errorf("tooltip of logs/eu1 %q lacks the journey's votes", tip)
	}
	if tip := got["logs"]["us1"].title; tip != "logs in us1: Up\nsubmit-and-read: up · vantages: down from 1 of 3\n1 of 1 journeys up" {
		t.Errorf("tooltip of logs/us1 %q: want the journey up here and down elsewhere", tip)
	}
	// The per-target list (the uptime rows) shows the target's own text.
	for target, votes := range map[string]string{logsEU: "down from 2 of 3", r.targetID("events", "submit-and-read", "eu1"): ""} {
		name := regexp.MustCompile(`<div class="uptime-name">` + regexp.QuoteMeta(target) + `(.*?)</div>`).FindStringSubmatch(page)
		wantLine := ""
		if votes != "" {
			wantLine = `<small class="votes" title="` + votesTitle + `">` + votes + `</small>`
		}
		if name == nil || name[1] != wantLine {
			t.Errorf("uptime row of %s: %q, want %q after the name", target, name, wantLine)
		}
	}
}

func TestPageWithoutFleet(t *testing.T) {
	r := faultRig(t)
	srv := serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body
	for _, s := range []string{`<p id="alone" class="fleet-alone" hidden></p>`, `<p id="isolated" class="fleet-alone" hidden></p>`,
		`<section id="fleet" aria-labelledby="fleet-h" hidden>`} {
		if !strings.Contains(page, s) {
			t.Errorf("page without a cluster lacks %q", s)
		}
	}
	for _, s := range []string{"Vantages", `class="votes"`, "api/v1/cluster", "This vantage is alone", "isolated:"} {
		if strings.Contains(page, s) {
			t.Errorf("page without a cluster shows %q", s)
		}
	}
}

func TestPageVantages(t *testing.T) {
	r := faultRig(t)
	now := r.clock.Now()
	src := r.fleetSource(r.threeVantages(now), nil, nil)
	srv := serve(t, statuspage.New(src, statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body

	if !strings.Contains(page, `<section id="fleet" aria-labelledby="fleet-h">`) || !strings.Contains(page, `<h2 id="fleet-h">Vantages</h2>`) {
		t.Errorf("page lacks a visible Vantages section")
	}
	if !strings.Contains(page, `<p id="quorum" class="quorum">Quorum 2 of 3 live vantages (majority)</p>`) {
		t.Errorf("page lacks the quorum line with (majority)")
	}
	got := members(page)
	want := []pageMember{
		{"fsn1", "alive", `fsn1 <span class="tag self">this vantage</span>`, "m-alive", "alive", "—",
			"logs/submit-and-read@eu1: down\nmetrics/write-and-query@eu1: down", "2", "10.0.0.1:7946"},
		{"hel1", "alive", "hel1", "m-alive", "alive", `<time datetime="2026-03-02T10:00:18Z">2026-03-02 10:00:18 UTC</time> (12s ago)`,
			"logs/submit-and-read@eu1: down\nmetrics/write-and-query@eu1: degraded", "2 (1 degraded)", "10.0.0.2:7946"},
		{"ash1", "suspect", "ash1", "m-suspect", "suspect", `<time datetime="2026-03-02T09:57:30Z">2026-03-02 09:57:30 UTC</time> (3m ago)`,
			"", "0", "[2001:db8::3]:7946"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Vantages rows:\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(page, `<a href="api/v1/cluster">cluster JSON</a>`) {
		t.Errorf("footer lacks the cluster JSON link")
	}

	// A set quorum is said as it is; each state has its own class, an unknown one none of theirs.
	f := r.threeVantages(now)
	f.QuorumSetting = 2
	f.Members[1].State, f.Members[2].State = "dead", "left"
	f.Members = append(f.Members, alert.FleetMember{Name: "new1", State: "joining"})
	srv = serve(t, statuspage.New(r.fleetSource(f, nil, nil), statuspage.Options{Now: r.clock.Now}))
	page = do(t, srv, "GET", "/", nil, nil).body
	if !strings.Contains(page, `<p id="quorum" class="quorum">Quorum 2 of 3 live vantages</p>`) {
		t.Errorf("with cluster.quorum set, want the quorum line without (majority)")
	}
	var classes []string
	for _, m := range members(page) {
		classes = append(classes, m.class+":"+m.heard)
	}
	if want := []string{"m-alive:—", "m-dead:" + want[1].heard, "m-left:" + want[2].heard, "m-unknown:never"}; !slices.Equal(classes, want) {
		t.Errorf("state classes and last heard %q, want %q", classes, want)
	}
}

var fleetBannerRe = regexp.MustCompile(`<p id="(alone|isolated)" class="fleet-alone"( hidden)?>([^<]*)</p>`)

func TestPageFleetBanners(t *testing.T) {
	r := faultRig(t)
	aloneText := "This vantage is alone: no peer answers since 2026-03-02 09:58:30 UTC; it pages on its own evidence after 2m0s"
	isolatedText := "This vantage is isolated: its pages say so"
	cases := []struct {
		name              string
		alone, isolated   bool
		wantAlone, wantIs string
	}{
		{"with peers", false, false, "", ""},
		{"alone", true, false, aloneText, ""},
		{"alone and isolated", true, true, aloneText, isolatedText},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := r.threeVantages(r.clock.Now())
			f.Alone, f.Isolated = tc.alone, tc.isolated
			if tc.alone {
				f.AloneSince = r.clock.Now().Add(-2 * time.Minute)
				f.Live = 1
			}
			srv := serve(t, statuspage.New(r.fleetSource(f, nil, nil), statuspage.Options{Now: r.clock.Now}))
			page := do(t, srv, "GET", "/", nil, nil).body
			got := map[string][2]string{}
			for _, m := range fleetBannerRe.FindAllStringSubmatch(page, -1) {
				got[m[1]] = [2]string{m[2], m[3]}
			}
			for id, text := range map[string]string{"alone": tc.wantAlone, "isolated": tc.wantIs} {
				hidden := ""
				if text == "" {
					hidden = " hidden"
				}
				if got[id] != [2]string{hidden, text} {
					t.Errorf("%s line: %q, want %q", id, got[id], [2]string{hidden, text})
				}
			}
		})
	}
}

func TestPageEscapesFleet(t *testing.T) {
	r := faultRig(t)
	const evil = `<script>alert(1)</script>`
	const evilAddr = `"><img src=x onerror=alert(2)>`
	f := r.threeVantages(r.clock.Now())
	f.Alone, f.AloneAfter = true, evil
	f.Members[1].Name, f.Members[1].Addr, f.Members[1].State = evil, evilAddr, `alive" onmouseover="alert(3)`
	f.Members[1].Failing = []string{evil}
	logsEU := r.targetID("logs", "submit-and-read", "eu1")
	src := r.fleetSource(f, map[string]map[string]string{"logs": {"eu1": evil}}, map[string]string{logsEU: evil})
	srv := serve(t, statuspage.New(src, statuspage.Options{Now: r.clock.Now}))
	page := do(t, srv, "GET", "/", nil, nil).body
	for _, s := range []string{"<script>", "<img", `onmouseover="`} {
		if strings.Contains(page, s) {
			t.Errorf("page carries %q live:\n%s", s, clip(page[strings.Index(page, s)-min(200, strings.Index(page, s)):]))
		}
	}
	// In the alone line, the cell, its tooltip, the uptime row, the member's name, its
	// row's data attribute, its failing list.
	if n := strings.Count(page, "&lt;script&gt;alert(1)&lt;/script&gt;"); n < 7 {
		t.Errorf("escaped name shows %d times, want at least 7", n)
	}
	got := members(page)
	if len(got) != 3 || got[1].name != evil || got[1].addr != evilAddr || got[1].class != "m-unknown" || got[1].failingTitle != evil+": down" {
		t.Errorf("hostile member row %q: want its name, address and list as text and no state class of its choosing", got)
	}
}

func TestClusterAPI(t *testing.T) {
	r := faultRig(t)
	f := r.threeVantages(r.clock.Now())
	f.Alone, f.AloneSince = true, r.clock.Now().Add(-time.Minute)
	srv := serve(t, statuspage.New(r.fleetSource(f, nil, nil), statuspage.Options{Now: r.clock.Now}))
	a := do(t, srv, "GET", "/api/v1/cluster", nil, nil)
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("cluster: %d %s %s, want 200 JSON", a.status, a.header.Get("Content-Type"), a.body)
	}
	var raw struct {
		Fleet   map[string]json.RawMessage
		Members []map[string]json.RawMessage
	}
	decode(t, a.body, &raw.Fleet)
	decode(t, string(raw.Fleet["members"]), &raw.Members)
	wantKeys := []string{"alone", "alone_after", "alone_since", "isolated", "live", "member", "members", "quorum", "quorum_setting"}
	if got := sortedKeys(raw.Fleet); !slices.Equal(got, wantKeys) {
		t.Errorf("cluster fields %q, want alert.FleetStatus's %q", got, wantKeys)
	}
	// The first member (self) was never heard: last_heard is left out, as its tag says.
	wantMember := []string{"addr", "failing", "last_heard", "name", "self", "state"}
	if len(raw.Members) != 3 || !slices.Equal(sortedKeys(raw.Members[1]), wantMember) ||
		!slices.Equal(sortedKeys(raw.Members[0]), slices.DeleteFunc(slices.Clone(wantMember), func(k string) bool { return k == "last_heard" })) {
		t.Errorf("members %s: want 3 with alert.FleetMember's fields %q", raw.Fleet["members"], wantMember)
	}
	if string(raw.Members[2]["failing"]) != "[]" {
		t.Errorf("failing of a member that reports none: %s, want []", raw.Members[2]["failing"])
	}
	var got alert.FleetStatus
	decode(t, a.body, &got)
	want := *f
	want.Members = slices.Clone(f.Members)
	want.Members[2].Failing = []string{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cluster answer\n %+v\nwant the snapshot's fleet\n %+v", got, want)
	}

	srv = serve(t, statuspage.New(r.source(), statuspage.Options{Now: r.clock.Now}))
	a = do(t, srv, "GET", "/api/v1/cluster", nil, nil)
	if a.status != 404 || strings.TrimSpace(a.body) != `{"error":"this vantage is not in a cluster (no cluster: in its config)"}` {
		t.Errorf("cluster without a fleet: %d %s, want 404 saying there is no cluster", a.status, a.body)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
