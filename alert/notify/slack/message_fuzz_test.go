package slack

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/picket-dev/picket/alert/notify"
)

// FuzzBuildMessage: any details the outbox may hand back from JSON render without a
// panic and within Slack's limits.
func FuzzBuildMessage(f *testing.F) {
	f.Add("[REGION eu1] down", `{"matrix":{"web":{"eu1":"down"}},"targets":[{"target":"a","error":"<!here>"}]}`)
	f.Add("", `{"matrix":{"web":"down"},"targets":"x"}`)
	f.Add("```", `{"matrix":{"`+"`"+`":{"&":null}},"targets":[1,{"since":3}]}`)
	f.Fuzz(func(t *testing.T, summary, details string) {
		msg := notify.Notification{Action: notify.ActionTrigger, Summary: summary, DedupKey: "k"}
		if json.Unmarshal([]byte(details), &msg.Details) != nil {
			return
		}
		m := BuildMessage(msg, "")
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("message does not encode: %v", err)
		}
		for _, b := range m.Blocks {
			if b.Text != nil && utf8.RuneCountInString(b.Text.Text) > maxSectionRunes {
				t.Fatalf("%s block of %d characters", b.Type, utf8.RuneCountInString(b.Text.Text))
			}
		}
	})
}
