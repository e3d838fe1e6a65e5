package pdtest

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestEnqueueValidation(t *testing.T) {
	type changes = map[string]any
	payload := func(p changes) changes {
		base := changes{"summary": "s", "source": "src", "severity": "error"}
		for k, v := range p {
			if v == nil {
				delete(base, k)
				continue
			}
			base[k] = v
		}
		return base
	}
	cases := []struct {
		name       string
		body       func(t *testing.T) string
		wantStatus string   // "" means accepted (202)
		wantErrors []string // exact, in order
	}{
		{name: "valid trigger", body: func(t *testing.T) string { return event(t, nil) }},
		{name: "valid acknowledge without payload",
			body: func(t *testing.T) string { return event(t, changes{"event_action": "acknowledge", "payload": nil}) }},
		{name: "valid resolve with empty payload (go-pagerduty sends one)",
			body: func(t *testing.T) string {
				return event(t, changes{"event_action": "resolve", "payload": changes{"summary": "", "source": "", "severity": ""}})
			}},
		{name: "summary of exactly 1024 multi-byte characters",
			body: func(t *testing.T) string {
				return event(t, changes{"payload": payload(changes{"summary": strings.Repeat("é", 1024)})})
			}},
		{name: "dedup key of exactly 255 characters",
			body: func(t *testing.T) string { return event(t, changes{"dedup_key": strings.Repeat("k", 255)}) }},
		{name: "null members are absent",
			body: func(t *testing.T) string { return event(t, changes{"client": json.RawMessage("null")}) }},

		{name: "not JSON", body: func(*testing.T) string { return `{"routing_key":` },
			wantStatus: "Unrecognized object", wantErrors: []string{"JSON parse error"}},
		{name: "JSON array", body: func(*testing.T) string { return `[]` },
			wantStatus: "Unrecognized object", wantErrors: []string{"JSON parse error"}},
		{name: "JSON null", body: func(*testing.T) string { return `null` },
			wantStatus: "Unrecognized object", wantErrors: []string{"JSON parse error"}},
		{name: "empty body", body: func(*testing.T) string { return `` },
			wantStatus: "Unrecognized object", wantErrors: []string{"JSON parse error"}},
		{name: "routing key missing",
			body:       func(t *testing.T) string { return event(t, changes{"routing_key": nil}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'routing_key' is missing or blank"}},
		{name: "routing key blank",
			body:       func(t *testing.T) string { return event(t, changes{"routing_key": strings.Repeat(" ", 32)}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'routing_key' is missing or blank"}},
		{name: "routing key 31 characters",
			body:       func(t *testing.T) string { return event(t, changes{"routing_key": testKey[:31]}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"Length of 'routing_key' is incorrect (should be 32 characters)"}},
		{name: "routing key 33 characters",
			body:       func(t *testing.T) string { return event(t, changes{"routing_key": testKey + "x"}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"Length of 'routing_key' is incorrect (should be 32 characters)"}},
		{name: "routing key not a string",
			body:       func(t *testing.T) string { return event(t, changes{"routing_key": 12345}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'routing_key' must be a string"}},
		{name: "event action missing",
			body:       func(t *testing.T) string { return event(t, changes{"event_action": nil}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'event_action' is missing or blank"}},
		{name: "event action unknown",
			body:       func(t *testing.T) string { return event(t, changes{"event_action": "create"}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"}},
		{name: "event action in capitals",
			body:       func(t *testing.T) string { return event(t, changes{"event_action": "TRIGGER"}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"}},
		{name: "trigger without payload",
			body:       func(t *testing.T) string { return event(t, changes{"payload": nil}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'payload' is missing (required for trigger)"}},
		{name: "trigger with payload not an object",
			body:       func(t *testing.T) string { return event(t, changes{"payload": "down"}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'payload' must be an object"}},
		{name: "trigger with empty payload names each field",
			body:       func(t *testing.T) string { return event(t, changes{"payload": changes{}}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{
				"'payload.summary' is missing or blank",
				"'payload.source' is missing or blank",
				"'payload.severity' is missing or blank",
			}},
		{name: "summary of 1025 characters",
			body: func(t *testing.T) string {
				return event(t, changes{"payload": payload(changes{"summary": strings.Repeat("s", 1025)})})
			},
			wantStatus: statusInvalidEvent, wantErrors: []string{"'payload.summary' is too long (maximum is 1024 characters, got 1025)"}},
		{name: "severity unknown",
			body:       func(t *testing.T) string { return event(t, changes{"payload": payload(changes{"severity": "fatal"})}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'payload.severity' is invalid (must be one of: critical, error, warning, info)"}},
		{name: "severity not a string",
			body:       func(t *testing.T) string { return event(t, changes{"payload": payload(changes{"severity": 1})}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'payload.severity' must be a string"}},
		{name: "acknowledge without dedup key",
			body:       func(t *testing.T) string { return event(t, changes{"event_action": "acknowledge", "dedup_key": nil}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'dedup_key' is missing or blank (required for acknowledge)"}},
		{name: "resolve without dedup key",
			body:       func(t *testing.T) string { return event(t, changes{"event_action": "resolve", "dedup_key": ""}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'dedup_key' is missing or blank (required for resolve)"}},
		{name: "dedup key of 256 characters",
			body:       func(t *testing.T) string { return event(t, changes{"dedup_key": strings.Repeat("k", 256)}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'dedup_key' is too long (maximum is 255 characters, got 256)"}},
		{name: "links not an array",
			body:       func(t *testing.T) string { return event(t, changes{"links": changes{"href": "https://x.test"}}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'links' must be an array"}},
		{name: "images not an array",
			body:       func(t *testing.T) string { return event(t, changes{"images": "https://x.test/a.png"}) },
			wantStatus: statusInvalidEvent, wantErrors: []string{"'images' must be an array"}},
		{name: "every problem at once, in order",
			body: func(t *testing.T) string {
				return event(t, changes{"routing_key": "short", "event_action": "trigger", "client": 7,
					"payload": changes{"summary": "s", "severity": "bad"}})
			},
			wantStatus: statusInvalidEvent, wantErrors: []string{
				"'client' must be a string",
				"Length of 'routing_key' is incorrect (should be 32 characters)",
				"'payload.source' is missing or blank",
				"'payload.severity' is invalid (must be one of: critical, error, warning, info)",
			}},
	}
	r := start(t, Options{})
	c := client(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(r.Events())
			rep := post(t, c, r.URL(), tc.body(t))
			if got := r.Requests(); got != i+1 {
				t.Errorf("Requests() = %d, want %d (every request counts)", got, i+1)
			}
			if tc.wantStatus == "" {
				if rep.status != http.StatusAccepted || rep.body.Status != "success" {
					t.Fatalf("answer %d %s, want 202 success", rep.status, rep.raw)
				}
				if len(r.Events()) != before+1 {
					t.Errorf("Events() grew from %d to %d, want one more", before, len(r.Events()))
				}
				return
			}
			if rep.status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", rep.status)
			}
			if rep.body.Status != tc.wantStatus || !slices.Equal(rep.body.Errors, tc.wantErrors) {
				t.Errorf("answer %s\nwant status %q, errors %q", rep.raw, tc.wantStatus, tc.wantErrors)
			}
			if len(r.Events()) != before {
				t.Errorf("a rejected event was recorded")
			}
		})
	}
}

func TestEnqueueAcceptedAnswerAndRecord(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	body := `{"routing_key":"` + testKey + `","event_action":"trigger","dedup_key":"metrics/query@us1",` +
		`"client":"picket","client_url":"http://127.0.0.1:9000/status",` +
		`"links":[{"href":"https://status.test/","text":"status"}],"images":[{"src":"https://img.test/a.png"}],` +
		`"payload":{"summary":"metrics query down in us1","source":"vantage-a","severity":"warning",` +
		`"timestamp":"2025-01-02T03:04:05Z","component":"query","group":"us1","class":"journey",` +
		`"custom_details":{"scope":"region","regions":["us1"]}}}`

	rep := post(t, c, r.URL(), body)
	want := `{"status":"success","message":"Event processed","dedup_key":"metrics/query@us1"}` + "\n"
	if rep.status != http.StatusAccepted || rep.raw != want {
		t.Fatalf("answer %d %q, want 202 %q", rep.status, rep.raw, want)
	}
	if ct := rep.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	events := r.Events()
	if len(events) != 1 {
		t.Fatalf("Events() has %d, want 1", len(events))
	}
	ev := events[0]
	wantPayload := Payload{Summary: "metrics query down in us1", Source: "vantage-a", Severity: "warning",
		Timestamp: "2025-01-02T03:04:05Z", Component: "query", Group: "us1", Class: "journey"}
	gotPayload := ev.Payload
	gotPayload.CustomDetails = nil
	switch {
	case ev.RoutingKey != testKey || ev.Action != "trigger" || ev.DedupKey != "metrics/query@us1":
		t.Errorf("key, action, dedup = %q %q %q", ev.RoutingKey, ev.Action, ev.DedupKey)
	case !reflect.DeepEqual(gotPayload, wantPayload):
		t.Errorf("payload %+v, want %+v", gotPayload, wantPayload)
	case string(ev.Payload.CustomDetails) != `{"scope":"region","regions":["us1"]}`:
		t.Errorf("custom_details %s", ev.Payload.CustomDetails)
	case ev.Client != "picket" || ev.ClientURL != "http://127.0.0.1:9000/status":
		t.Errorf("client %q %q", ev.Client, ev.ClientURL)
	case len(ev.Links) != 1 || len(ev.Images) != 1 || string(ev.Images[0]) != `{"src":"https://img.test/a.png"}`:
		t.Errorf("links %s, images %s", ev.Links, ev.Images)
	case string(ev.Raw) != body:
		t.Errorf("Raw is not the body as sent:\n%s\n%s", ev.Raw, body)
	case ev.Received.IsZero():
		t.Errorf("Received not set")
	}
}

func TestEnqueueGeneratesDedupKeyForTrigger(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	var keys []string
	for range 2 {
		rep := post(t, c, r.URL(), event(t, map[string]any{"dedup_key": nil}))
		if rep.status != http.StatusAccepted || !hex32.MatchString(rep.body.DedupKey) {
			t.Fatalf("answer %d %s, want 202 with a generated 32-hex dedup key", rep.status, rep.raw)
		}
		keys = append(keys, rep.body.DedupKey)
	}
	if keys[0] == keys[1] {
		t.Errorf("two triggers without dedup key got the same key %q", keys[0])
	}
	for i, ev := range r.Events() {
		if ev.DedupKey != keys[i] {
			t.Errorf("event %d recorded dedup key %q, answered %q", i, ev.DedupKey, keys[i])
		}
	}
	if len(r.Open()) != 2 {
		t.Errorf("Open() = %d alerts, want 2", len(r.Open()))
	}
}

func TestEnqueueBodySize(t *testing.T) {
	// bodyOfSize pads custom_details so the body is exactly n bytes.
	bodyOfSize := func(t *testing.T, n int) string {
		base := event(t, map[string]any{"payload": map[string]any{
			"summary": "s", "source": "src", "severity": "info", "custom_details": map[string]any{"pad": ""},
		}})
		pad := n - len(base)
		if pad < 0 {
			t.Fatalf("base body is %d bytes already", len(base))
		}
		return strings.Replace(base, `"pad":""`, `"pad":"`+strings.Repeat("p", pad)+`"`, 1)
	}
	cases := []struct {
		name    string
		size    int
		chunked bool // no Content-Length, so the limit is found while reading
		want    int
	}{
		{name: "exactly 512 KiB", size: MaxBodyBytes, want: http.StatusAccepted},
		{name: "one byte over", size: MaxBodyBytes + 1, want: http.StatusRequestEntityTooLarge},
		{name: "one byte over, chunked", size: MaxBodyBytes + 1, chunked: true, want: http.StatusRequestEntityTooLarge},
		{name: "a megabyte, chunked", size: 1 << 20, chunked: true, want: http.StatusRequestEntityTooLarge},
	}
	r := start(t, Options{})
	c := client(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := bodyOfSize(t, tc.size)
			if len(body) != tc.size {
				t.Fatalf("built %d bytes, want %d", len(body), tc.size)
			}
			var reader io.Reader = strings.NewReader(body)
			if tc.chunked {
				reader = io.MultiReader(reader) // hides the length from net/http
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL(), reader)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer resp.Body.Close()
			var got apiResponse
			_ = json.NewDecoder(resp.Body).Decode(&got)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%+v), want %d", resp.StatusCode, got, tc.want)
			}
			if tc.want == http.StatusRequestEntityTooLarge && (got.Status != statusInvalidEvent || len(got.Errors) != 1) {
				t.Errorf("413 body %+v, want an invalid event naming the size", got)
			}
		})
	}
	if n := len(r.Events()); n != 1 {
		t.Errorf("Events() has %d, want only the 512 KiB one", n)
	}
}

func TestEnqueueMethodsAndPaths(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	cases := []struct {
		name, method, path string
		want               int
		wantInMessage      string
	}{
		{name: "POST /v2/enqueue", method: http.MethodPost, path: "/v2/enqueue", want: http.StatusAccepted},
		{name: "POST /enqueue", method: http.MethodPost, path: "/enqueue", want: http.StatusAccepted},
		{name: "GET /v2/enqueue", method: http.MethodGet, path: "/v2/enqueue", want: http.StatusMethodNotAllowed, wantInMessage: "expected POST"},
		{name: "PUT /enqueue", method: http.MethodPut, path: "/enqueue", want: http.StatusMethodNotAllowed, wantInMessage: "expected POST"},
		{name: "unknown path", method: http.MethodPost, path: "/v1/enqueue", want: http.StatusNotFound, wantInMessage: "POST /v2/enqueue"},
		{name: "doubled path from go-pagerduty given URL()", method: http.MethodPost, path: "/v2/enqueue/v2/enqueue",
			want: http.StatusNotFound, wantInMessage: "give it the base URL"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := do(t, c, tc.method, r.BaseURL()+tc.path, event(t, nil))
			if rep.status != tc.want || !strings.Contains(rep.body.Message, tc.wantInMessage) {
				t.Errorf("answer %d %s, want %d with %q", rep.status, rep.raw, tc.want, tc.wantInMessage)
			}
			if tc.want == http.StatusMethodNotAllowed && rep.header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", rep.header.Get("Allow"))
			}
			if r.Requests() != i+1 {
				t.Errorf("Requests() = %d, want %d", r.Requests(), i+1)
			}
		})
	}
	if n := len(r.Events()); n != 2 {
		t.Errorf("Events() has %d, want the 2 good POSTs", n)
	}
}

func TestOpenBookkeeping(t *testing.T) {
	r := start(t, Options{})
	c := client(t)
	otherKey := strings.Repeat("o", 32)
	act := func(key, action, dedup, summary string) {
		t.Helper()
		body := event(t, map[string]any{"routing_key": key, "event_action": action, "dedup_key": dedup,
			"payload": map[string]any{"summary": summary, "source": "src", "severity": "critical"}})
		if rep := post(t, c, r.URL(), body); rep.status != http.StatusAccepted || rep.body.DedupKey != dedup {
			t.Fatalf("%s %s: answer %d %s, want 202 with dedup key", action, dedup, rep.status, rep.raw)
		}
	}
	openKeys := func() []string {
		var keys []string
		for k := range r.Open() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	steps := []struct {
		key, action, dedup, summary string
		wantOpen                    []string
	}{
		{testKey, "trigger", "A", "first", []string{"A"}},
		{testKey, "trigger", "A", "second", []string{"A"}}, // repeat trigger: still one alert
		{testKey, "trigger", "B", "b", []string{"A", "B"}},
		{testKey, "acknowledge", "A", "", []string{"A", "B"}}, // acknowledged is still open
		{testKey, "resolve", "A", "", []string{"B"}},
		{testKey, "resolve", "unknown", "", []string{"B"}}, // accepted, nothing to close
		{otherKey, "resolve", "B", "", []string{"B"}},      // other routing key: dropped, as PagerDuty does
		{otherKey, "trigger", "C", "c", []string{"B", "C"}},
	}
	for i, s := range steps {
		act(s.key, s.action, s.dedup, s.summary)
		if got := openKeys(); !slices.Equal(got, s.wantOpen) {
			t.Fatalf("after step %d (%s %s): open %v, want %v", i, s.action, s.dedup, got, s.wantOpen)
		}
	}
	if got := r.Count("A", "trigger"); got != 2 {
		t.Errorf("Count(A, trigger) = %d, want 2", got)
	}
	if got := r.Count("A", ""); got != 4 {
		t.Errorf("Count(A, any) = %d, want 4", got)
	}
	if got := r.Count("unknown", "resolve"); got != 1 {
		t.Errorf("Count(unknown, resolve) = %d, want 1", got)
	}
	if got := r.Open()["B"].Payload.Summary; got != "b" {
		t.Errorf("open B summary %q", got)
	}
	if got := r.OpenFor(otherKey); len(got) != 1 || got["C"].DedupKey != "C" {
		t.Errorf("OpenFor(other) = %v, want only C", got)
	}
	act(testKey, "trigger", "A", "third")
	if got := r.Open()["A"].Payload.Summary; got != "third" {
		t.Errorf("re-opened A carries summary %q, want the latest trigger's", got)
	}
}
