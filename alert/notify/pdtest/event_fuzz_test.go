package pdtest

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseEvent checks that no body panics the parser and that whatever it
// accepts obeys every documented rule, and whatever it rejects says why.
func FuzzParseEvent(f *testing.F) {
	for _, seed := range []string{
		`{"routing_key":"` + testKey + `","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info"}}`,
		`{"routing_key":"` + testKey + `","event_action":"resolve","dedup_key":"k"}`,
		`{"routing_key":"` + testKey + `","event_action":"acknowledge","dedup_key":null}`,
		`{"routing_key":1,"event_action":[],"payload":"x","links":{},"images":3}`,
		`{"payload":{"summary":{"a":1},"severity":null}}`,
		`[]`, `null`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, problems, err := parseEvent(body)
		if err != nil || len(problems) > 0 {
			if err == nil && len(problems) == 0 {
				t.Fatal("rejected without a reason")
			}
			for _, p := range problems {
				if p == "" {
					t.Fatalf("empty problem among %q", problems)
				}
			}
			return
		}
		if utf8.RuneCountInString(ev.RoutingKey) != RoutingKeyLen || strings.TrimSpace(ev.RoutingKey) == "" {
			t.Fatalf("accepted routing key of %d characters", utf8.RuneCountInString(ev.RoutingKey))
		}
		if !oneOf(ev.Action, validActions) {
			t.Fatalf("accepted action %q", ev.Action)
		}
		if utf8.RuneCountInString(ev.DedupKey) > MaxDedupKeyChars {
			t.Fatalf("accepted a dedup key of %d characters", utf8.RuneCountInString(ev.DedupKey))
		}
		if ev.Action != ActionTrigger && blank(ev.DedupKey) {
			t.Fatalf("accepted %s without dedup key", ev.Action)
		}
		if ev.Action == ActionTrigger {
			p := ev.Payload
			if blank(p.Summary) || blank(p.Source) || !oneOf(p.Severity, validSeverities) ||
				utf8.RuneCountInString(p.Summary) > MaxSummaryChars {
				t.Fatalf("accepted trigger with payload %+v", p)
			}
		}
		if string(ev.Raw) != string(body) {
			t.Fatal("Raw differs from the body")
		}
		red := ev.redacted()
		var members map[string]any
		if err := json.Unmarshal(red.Raw, &members); err != nil {
			t.Fatalf("redacted raw is not a JSON object: %v", err)
		}
		if red.RoutingKey != redactedRoutingKey || members["routing_key"] != redactedRoutingKey {
			t.Fatalf("redaction left the key: %s", red.Raw)
		}
	})
}
