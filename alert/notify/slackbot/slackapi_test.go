package slackbot

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/picket-dev/picket/alert/notify/apitest"
	"github.com/picket-dev/picket/alert/notify/slack"
)

const (
	testToken = "xoxb-1111-2222-TESTTOKENabcdef"
	channelID = "C0123456789"
)

// fakeSlackAPI is Slack's Web API as chat.postMessage and chat.update answer: HTTP
// 200 with {"ok": false, "error": CODE} for what it refuses (not_authed,
// invalid_auth, channel_not_found, no_text, invalid_blocks, thread_not_found,
// message_not_found, unknown_method), {"ok": true, "channel": ID, "ts": ...} when
// it posts, and a missing_charset warning for JSON without charset=utf-8. It keeps
// the channel's messages so tests read it as a person would.
type fakeSlackAPI struct {
	*apitest.Server
	mu       sync.Mutex
	seq      int
	messages map[string]*posted // by ts
	order    []string
}

type posted struct {
	TS, ThreadTS, Text string
	Blocks             []slack.Block
	Edited             bool
	Warnings           []string
}

func startSlackAPI(t *testing.T) *fakeSlackAPI {
	f := &fakeSlackAPI{messages: map[string]*posted{}}
	f.Server = apitest.Start(t, f.check)
	return f
}

func slackFail(code string) apitest.Answer {
	return apitest.JSON(http.StatusOK, map[string]any{"ok": false, "error": code})
}

func (f *fakeSlackAPI) check(r apitest.Request) apitest.Answer {
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		return slackFail("not_authed")
	case auth != "Bearer "+testToken:
		return slackFail("invalid_auth")
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return slackFail("invalid_post_type")
	}
	var warnings []string
	if !strings.Contains(r.Header.Get("Content-Type"), "charset=utf-8") {
		warnings = append(warnings, "missing_charset")
	}
	switch r.Path {
	case "/api/chat.postMessage":
		return f.postMessage(r, warnings)
	case "/api/chat.update":
		return f.update(r)
	}
	return apitest.JSON(http.StatusNotFound, map[string]any{"ok": false, "error": "unknown_method"})
}

type wireMessage struct {
	Channel     string        `json:"channel"`
	TS          string        `json:"ts"`
	ThreadTS    string        `json:"thread_ts"`
	Text        string        `json:"text"`
	Blocks      []slack.Block `json:"blocks"`
	UnfurlLinks *bool         `json:"unfurl_links"`
}

// read checks what both methods share: a known channel, text or blocks, typed blocks.
func read(r apitest.Request) (wireMessage, string) {
	var m wireMessage
	if err := r.Decode(&m); err != nil {
		return m, "invalid_json"
	}
	if m.Channel != channelID && m.Channel != "#ops" {
		return m, "channel_not_found"
	}
	if strings.TrimSpace(m.Text) == "" && len(m.Blocks) == 0 {
		return m, "no_text"
	}
	for _, b := range m.Blocks {
		if b.Type == "" {
			return m, "invalid_blocks"
		}
	}
	return m, ""
}

func (f *fakeSlackAPI) postMessage(r apitest.Request, warnings []string) apitest.Answer {
	m, problem := read(r)
	if problem != "" {
		return slackFail(problem)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.ThreadTS != "" {
		if parent := f.messages[m.ThreadTS]; parent == nil || parent.ThreadTS != "" {
			return slackFail("thread_not_found")
		}
	}
	f.seq++
	ts := fmt.Sprintf("1767225600.%06d", f.seq)
	f.messages[ts] = &posted{TS: ts, ThreadTS: m.ThreadTS, Text: m.Text, Blocks: m.Blocks, Warnings: warnings}
	f.order = append(f.order, ts)
	answer := map[string]any{"ok": true, "channel": channelID, "ts": ts, "message": map[string]any{"text": m.Text}}
	if len(warnings) > 0 {
		answer["warning"] = strings.Join(warnings, ",")
	}
	return apitest.JSON(http.StatusOK, answer)
}

func (f *fakeSlackAPI) update(r apitest.Request) apitest.Answer {
	m, problem := read(r)
	switch {
	case problem != "":
		return slackFail(problem)
	case m.Channel != channelID:
		return slackFail("channel_not_found") // chat.update takes an ID only
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := f.messages[m.TS]
	if msg == nil {
		return slackFail("message_not_found")
	}
	msg.Text, msg.Blocks, msg.Edited = m.Text, m.Blocks, true
	return apitest.JSON(http.StatusOK, map[string]any{"ok": true, "channel": channelID, "ts": m.TS, "text": m.Text})
}

// channelView is the channel as a person sees it: top-level messages with their
// replies, oldest first.
func (f *fakeSlackAPI) channelView() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ts := range f.order {
		m := f.messages[ts]
		if m.ThreadTS != "" {
			continue
		}
		line := m.Text
		if m.Edited {
			line += " (edited)"
		}
		for _, rts := range f.order {
			if f.messages[rts].ThreadTS == ts {
				line += " | reply: " + f.messages[rts].Text
			}
		}
		out = append(out, line)
	}
	return out
}

func (f *fakeSlackAPI) remove(ts string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.messages, ts)
	for i, o := range f.order {
		if o == ts {
			f.order = append(f.order[:i], f.order[i+1:]...)
			break
		}
	}
}

func (f *fakeSlackAPI) warnings() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.messages {
		out = append(out, m.Warnings...)
	}
	return out
}
