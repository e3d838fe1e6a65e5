package delivery

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/alert/notify"
	"github.com/picket-dev/picket/alert/notify/pdtest"
	"github.com/picket-dev/picket/alert/notify/webhook"
)

// poll calls cond every `every` until it holds, failing the test after limit with
// what was awaited and the last detail cond gave.
func poll(t *testing.T, limit, every time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", limit, what, detail)
		}
		time.Sleep(every)
	}
}

// tail is the end of a log, enough to see what went wrong without flooding the output.
func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// daemonAPI reads the daemon's JSON API. Keep-alive is off: the daemon may be killed
// between two calls, and no idle connection may outlive the test.
type daemonAPI struct {
	base   string
	client *http.Client
}

func newDaemonAPI(base string) daemonAPI {
	return daemonAPI{base: base, client: &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}}
}

func (a daemonAPI) get(path string, v any) error {
	resp, err := a.client.Get(a.base + path)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("GET %s: read the answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: expected 200, got %d: %.300s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: expected JSON: %w", path, err)
	}
	return nil
}

// statusView is the part of /api/v1/status the tests read.
type statusView struct {
	Matrix    map[string]map[string]string `json:"matrix"` // product -> region -> up|degraded|down|no_data
	Targets   []alert.TargetView           `json:"targets"`
	Incidents []alert.Incident             `json:"incidents"`
}

func (a daemonAPI) status() (statusView, error) {
	var s statusView
	return s, a.get("/api/v1/status", &s)
}

// incidents returns the open and the closed incidents (up to the API's maximum, far
// more than a test makes).
func (a daemonAPI) incidents() ([]alert.Incident, error) {
	var ans struct {
		Open   []alert.Incident `json:"open"`
		Closed []alert.Incident `json:"closed"`
	}
	if err := a.get("/api/v1/incidents?limit=1000", &ans); err != nil {
		return nil, err
	}
	return append(ans.Open, ans.Closed...), nil
}

func (a daemonAPI) outbox() ([]notify.EntryInfo, error) {
	var entries []notify.EntryInfo
	return entries, a.get("/api/v1/outbox", &entries)
}

// decision is one notification the engine handed to the outbox, as its incident's
// timeline records it: "triggered" (the first page), "trigger" (an update such as
// "now part of [GLOBAL]") or "resolve". At is also the notification's Created time.
type decision struct {
	Key    string
	Action string
	Note   string
	At     time.Time
}

// id names the decision uniquely: the engine stamps one instant per send.
func (d decision) id() string { return fmt.Sprintf("%s|%s|%d", d.Key, d.Action, d.At.UnixNano()) }

func (d decision) String() string {
	return fmt.Sprintf("%s %s at %s (%s)", d.Action, d.Key, d.At.Format("15:04:05.000"), d.Note)
}

// decisionsOf lists every notification decided in incidents, oldest first.
func decisionsOf(incidents []alert.Incident) []decision {
	var out []decision
	for _, inc := range incidents {
		for _, ev := range inc.Timeline {
			action := ""
			switch ev.Kind {
			case "triggered", notify.ActionTrigger:
				action = notify.ActionTrigger
			case notify.ActionResolve:
				action = notify.ActionResolve
			default:
				continue
			}
			out = append(out, decision{Key: inc.Key, Action: action, Note: ev.Text, At: ev.At})
		}
	}
	slices.SortStableFunc(out, func(a, b decision) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Key, b.Key), cmp.Compare(b.Action, a.Action))
	})
	return out
}

// timelineProblems lists timeline lines that say a notification was never queued.
func timelineProblems(incidents []alert.Incident) []string {
	var out []string
	for _, inc := range incidents {
		for _, ev := range inc.Timeline {
			if ev.Kind == "failed" || ev.Kind == "unrouted" {
				out = append(out, inc.Key+": "+ev.Kind+": "+ev.Text)
			}
		}
	}
	return out
}

// actionsByKey groups the actions of events per dedup key, in order of arrival.
func actionsByKey(events []pdtest.Event) map[string][]string {
	out := map[string][]string{}
	for _, ev := range events {
		out[ev.DedupKey] = append(out[ev.DedupKey], ev.Action)
	}
	return out
}

// hookReceiver is the fallback webhook: it accepts every post and keeps what came.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hookDelivery
}

type hookDelivery struct {
	N  notify.Notification
	At time.Time
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve)) // 127.0.0.1:0
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	var p webhook.Payload
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil || p.Notification.DedupKey == "" {
		http.Error(w, "expected a webhook payload with a notification", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, hookDelivery{N: p.Notification, At: time.Now()})
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) deliveries() []hookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// has reports whether the hook received the notification of d.
func (h *hookReceiver) has(d decision) bool {
	return slices.ContainsFunc(h.deliveries(), func(got hookDelivery) bool { return matches(got.N, d) })
}

// matches says whether n is the notification decided as d: the engine stamps both
// with the same instant.
func matches(n notify.Notification, d decision) bool {
	return n.DedupKey == d.Key && n.Action == d.Action && n.Created.Equal(d.At)
}
