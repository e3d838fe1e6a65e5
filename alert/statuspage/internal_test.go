package statuspage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/picket-dev/picket/internal/scrub"

	"github.com/picket-dev/picket/alert"
)

func TestHumanDuration(t *testing.T) {
	cases := map[time.Duration]string{
		-time.Second:                    "0s",
		0:                               "0s",
		59 * time.Second:                "59s",
		time.Minute:                     "1m",
		59*time.Minute + 59*time.Second: "59m",
		time.Hour + 12*time.Minute:      "1h 12m",
		49*time.Hour + 30*time.Minute:   "2d 1h",
	}
	for d, want := range cases {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestCounts(t *testing.T) {
	cases := []struct {
		c              counts
		status, pct    string
		percentInWords string
	}{
		{counts{}, segNone, "no data", "no data"},
		{counts{10, 0, 0}, segUp, "100.00%", "100.00% up"},
		{counts{9, 1, 0}, segDegraded, "100.00%", "100.00% up"}, // degraded passes
		{counts{9999, 0, 1}, segDegraded, "99.99%", "99.99% up"},
		{counts{1, 0, 1}, segDown, "50.00%", "50.00% up"},
		{counts{0, 0, 3}, segDown, "0.00%", "0.00% up"},
		{counts{2, 0, 1}, segDegraded, "66.66%", "66.66% up"}, // rounded down
	}
	for _, tc := range cases {
		if got := tc.c.status(); got != tc.status {
			t.Errorf("%v status %q, want %q", tc.c, got, tc.status)
		}
		if got := tc.c.percent(); got != tc.pct {
			t.Errorf("%v percent %q, want %q", tc.c, got, tc.pct)
		}
		if got := tc.c.percentWords(); got != tc.percentInWords {
			t.Errorf("%v in words %q, want %q", tc.c, got, tc.percentInWords)
		}
	}
}

func TestWindowFor(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 7, 30, 0, time.FixedZone("CET", 3600))
	day, err := windowFor("24h", now)
	if err != nil || day.step != 5*time.Minute || day.to.Sub(day.from) != 24*time.Hour ||
		!day.to.Equal(time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC)) {
		t.Errorf("24h window %+v (%v): want 24 h of 5-minute slots ending after the slot of now", day, err)
	}
	quarter, err := windowFor("90d", now)
	if err != nil || quarter.step != time.Hour || !quarter.from.Equal(time.Date(2025, 12, 3, 0, 0, 0, 0, time.UTC)) ||
		!quarter.to.Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("90d window %+v (%v): want whole UTC days from 89 days ago to the end of this hour", quarter, err)
	}
	if _, err := windowFor("1y", now); err == nil {
		t.Errorf("range 1y: want an error")
	}
}

func TestScrubbedStatus(t *testing.T) {
	x := scrub.NewWithForms("tok-123456")
	st := alert.Status{Banner: "b tok-123456", Matrix: map[string]map[string]string{"p": {"r": "up"}},
		Targets: []alert.TargetView{{Target: "p/j@r", LastError: "key tok-123456 refused", State: alert.StateFiring}}}
	got, err := scrubbed(x, st)
	if err != nil {
		t.Fatal(err)
	}
	if got.Banner != "b [redacted]" || got.Targets[0].LastError != "key [redacted] refused" || got.Targets[0].State != alert.StateFiring || got.Matrix["p"]["r"] != "up" {
		t.Errorf("scrubbed status %+v: want the token replaced and the rest kept", got)
	}
}

var fuzzStatus = alert.Status{
	Regions:  []alert.RegionView{{Name: "eu1"}, {Name: "us1"}},
	Products: []alert.ProductView{{Name: "logs", Priority: 1}, {Name: "web", Priority: 2}},
}

// FuzzSilenceRequest: whatever the body, the parser answers without panicking, and a
// silence it accepts is one the engine can hold: a reason, a matcher, a future end.
func FuzzSilenceRequest(f *testing.F) {
	for _, seed := range []string{
		`{"comment":"c","duration":"2h","match":{"region":["eu1"]}}`,
		`{"comment":"c","start":"2026-03-02T10:00:00Z","end":"2026-03-02T12:00:00Z","match":{"product":["logs"],"priority":[1]}}`,
		`{"comment":"c","duration":"-5m","match":{"scope":["global"]}}`,
		`{"comment":"","match":{}}`,
		`{"comment":"c","duration":"1h","match":{"region":["eu1"]}} {}`,
		`[]`, `null`, `{"comment":1}`,
		`{"comment":"c","start":"9999-12-31T23:00:00-05:00","duration":"1h","match":{"region":["eu1"]}}`,
		`{"comment":"c","start":"9999-12-31T20:00:00Z","duration":"2562047h","match":{"region":["eu1"]}}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/silences", strings.NewReader(string(body)))
		var sr silenceRequest
		if status, err := decodeStrict(httptest.NewRecorder(), req, "silence", &sr); err != nil {
			if status < 400 || status > 499 {
				t.Fatalf("refused with status %d: want a 4xx", status)
			}
			return
		}
		s, err := sr.silence(now, fuzzStatus)
		if err != nil {
			return
		}
		if strings.TrimSpace(s.Comment) == "" || !s.End.After(now) || !s.End.After(s.Start) ||
			len(s.Match.Scope)+len(s.Match.Product)+len(s.Match.Region)+len(s.Match.Priority) == 0 {
			t.Fatalf("accepted %q as %+v: want a comment, a matcher and an end after now and after the start", body, s)
		}
		// The engine stores it as JSON, and the API answers it so: it must survive both.
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("accepted %q as a silence JSON cannot hold: %v", body, err)
		}
		var back alert.Silence
		if err := json.Unmarshal(raw, &back); err != nil || !back.Start.Equal(s.Start) || !back.End.Equal(s.End) {
			t.Fatalf("accepted %q; stored and read back it is %+v (%v), want %+v", body, back, err, s)
		}
	})
}

// TestHeldFlappingIncidentSaysSo: an incident held open as flapping covers no target;
// its card names what it covered and until when it is held, not an empty list.
func TestHeldFlappingIncidentSaysSo(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	inc := alert.Incident{Key: "picket/product/logs", Scope: alert.ScopeProduct, Subject: "logs", Condition: "down",
		Opened: now.Add(-3 * time.Minute), Targets: []string{}, PeakTargets: []string{"logs/read@eu1"},
		FlapUntil: now.Add(2 * time.Minute)}
	v := incidentOf(inc, now)
	if !v.HeldUntil.Equal(inc.FlapUntil) || strings.Join(v.Targets, ",") != "logs/read@eu1" {
		t.Errorf("held incident: HeldUntil %s, targets %v; want %s and its peak targets", v.HeldUntil, v.Targets, inc.FlapUntil)
	}
	inc.Targets = []string{"logs/read@eu1"} // failing again: not held
	if v := incidentOf(inc, now); !v.HeldUntil.IsZero() {
		t.Errorf("an incident covering a failing target shows as held until %s", v.HeldUntil)
	}
}
