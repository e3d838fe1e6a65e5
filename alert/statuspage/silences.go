package statuspage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/picket-dev/picket/alert"
	"github.com/picket-dev/picket/config"
	"github.com/picket-dev/picket/internal/httpguard"
)

// maxBodyBytes bounds a write request's body.
const maxBodyBytes = 64 << 10

// silenceRequest is the body of POST /api/v1/silences. End or Duration says when it
// ends; Start defaults to now.
type silenceRequest struct {
	Comment  string    `json:"comment"`
	Creator  string    `json:"creator"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration string    `json:"duration"`
	Match    matchJSON `json:"match"`
}

// matchJSON is config.Match with the lower-case keys of the config file.
type matchJSON struct {
	Scope    []string `json:"scope,omitempty"`
	Product  []string `json:"product,omitempty"`
	Region   []string `json:"region,omitempty"`
	Priority []int    `json:"priority,omitempty"`
}

func (m matchJSON) empty() bool {
	return len(m.Scope)+len(m.Product)+len(m.Region)+len(m.Priority) == 0
}

// silenceJSON is how the API shows a silence.
type silenceJSON struct {
	ID      string    `json:"id"`
	Comment string    `json:"comment"`
	Creator string    `json:"creator,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Match   matchJSON `json:"match"`
	Active  bool      `json:"active"`
}

func silenceView(s alert.Silence, now time.Time) silenceJSON {
	return silenceJSON{
		ID: s.ID, Comment: s.Comment, Creator: s.Creator, Start: s.Start, End: s.End,
		Match:  matchJSON{Scope: s.Match.Scope, Product: s.Match.Product, Region: s.Match.Region, Priority: s.Match.Priority},
		Active: s.Active(now),
	}
}

func (h *Handler) apiSilences(w http.ResponseWriter, _ *http.Request) {
	now := h.now()
	out := []silenceJSON{}
	for _, s := range h.src.Silences() {
		out = append(out, silenceView(s, now))
	}
	writeJSON(w, h.scrub, http.StatusOK, out)
}

// writer guards a write: refused outright without a configured token (403), and
// without the right bearer token (401). The daemon's admin listener checks the same
// before this, plus the origin and content type (httpguard); this keeps the handler
// safe on its own.
func (h *Handler) writer(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.token.IsZero() {
			writeError(w, h.scrub, http.StatusForbidden, "writes are disabled: no API token is configured (set api.token in the config)")
			return
		}
		if !httpguard.BearerMatches(r.Header.Get("Authorization"), h.token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="picket"`)
			writeError(w, h.scrub, http.StatusUnauthorized, "expected the header Authorization: Bearer <api token>; it is missing or wrong")
			return
		}
		next(w, r)
	}
}

func (h *Handler) apiCreateSilence(w http.ResponseWriter, r *http.Request) {
	var req silenceRequest
	if status, err := decodeStrict(w, r, "silence", &req); err != nil {
		writeError(w, h.scrub, status, err.Error())
		return
	}
	now := h.now()
	s, err := req.silence(now, h.src.Snapshot())
	if err != nil {
		writeError(w, h.scrub, http.StatusBadRequest, err.Error())
		return
	}
	made, err := h.src.AddSilence(s)
	if err != nil {
		h.fail(w, "add silence", err)
		return
	}
	h.log.Info("silence added", "id", made.ID, "comment", made.Comment, "start", made.Start, "end", made.End)
	w.Header().Set("Location", "/api/v1/silences/"+made.ID)
	writeJSON(w, h.scrub, http.StatusCreated, silenceView(made, now))
}

func (h *Handler) apiDeleteSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.src.DeleteSilence(id)
	switch {
	case errors.Is(err, alert.ErrNotFound):
		writeError(w, h.scrub, http.StatusNotFound, fmt.Sprintf("no run-time silence %q (silences from the config file change with the config)", id))
	case err != nil:
		h.fail(w, "delete silence", err)
	default:
		h.log.Info("silence deleted", "id", id)
		writeJSON(w, h.scrub, http.StatusOK, map[string]string{"deleted": id})
	}
}

// decodeStrict reads one JSON object of at most maxBodyBytes with no unknown fields
// and nothing after it; the status says which rule was broken. The Content-Type is
// checked before, by the daemon's httpguard (a POST must say application/json).
func decodeStrict(w http.ResponseWriter, r *http.Request, what string, v any) (int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body: expected at most %d bytes, got more", maxBodyBytes)
	}
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("body: expected a JSON %s: %w", what, err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return http.StatusBadRequest, errors.New("body: expected one JSON object, got more after it")
	}
	return 0, nil
}

// silence checks the request against what exists, so that a typo is an error now
// rather than a silence that never matches (or one that silences every page).
func (req silenceRequest) silence(now time.Time, st alert.Status) (alert.Silence, error) {
	if strings.TrimSpace(req.Comment) == "" {
		return alert.Silence{}, errors.New("comment: expected why the silence is needed, got nothing")
	}
	if req.Match.empty() {
		return alert.Silence{}, errors.New("match: expected at least one of scope, product, region, priority (an empty match would silence every page)")
	}
	if err := checkMatch(req.Match, st); err != nil {
		return alert.Silence{}, err
	}
	start := req.Start
	if start.IsZero() {
		start = now
	}
	end, err := req.end(start)
	if err != nil {
		return alert.Silence{}, err
	}
	if !end.After(now) {
		return alert.Silence{}, fmt.Errorf("end: expected a time in the future, got %s", end.Format(time.RFC3339))
	}
	if err := errors.Join(storable("start", start), storable("end", end)); err != nil {
		return alert.Silence{}, err
	}
	m := config.Match{Scope: req.Match.Scope, Product: req.Match.Product, Region: req.Match.Region, Priority: req.Match.Priority}
	return alert.Silence{Comment: req.Comment, Creator: req.Creator, Start: start.UTC(), End: end.UTC(), Match: m}, nil
}

// storable: the silence is kept in UTC as JSON, which holds years 0 to 9999 only; a
// start that an offset pushes past that, or a long duration after it, would otherwise
// be accepted and then fail to save (a 500 for the client's mistake).
func storable(name string, t time.Time) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%s: expected a time from year 0 to 9999 in UTC, got year %d", name, y)
	}
	return nil
}

func (req silenceRequest) end(start time.Time) (time.Time, error) {
	switch {
	case !req.End.IsZero() && req.Duration != "":
		return time.Time{}, errors.New("expected end or duration, got both")
	case req.Duration != "":
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("duration: expected a positive duration like 2h or 30m, got %q", req.Duration)
		}
		return start.Add(d), nil
	case req.End.IsZero():
		return time.Time{}, errors.New("expected end (RFC 3339) or duration (like 2h), got neither")
	case !req.End.After(start):
		return time.Time{}, fmt.Errorf("end: expected after start %s, got %s", start.Format(time.RFC3339), req.End.Format(time.RFC3339))
	}
	return req.End, nil
}

func checkMatch(m matchJSON, st alert.Status) error {
	scopes := []string{alert.ScopeTarget, alert.ScopeRegion, alert.ScopeProduct, alert.ScopeGlobal}
	if err := checkNames("scope", m.Scope, scopes); err != nil {
		return err
	}
	var products, regions []string
	for _, p := range st.Products {
		products = append(products, p.Name)
	}
	for _, r := range st.Regions {
		regions = append(regions, r.Name)
	}
	if err := checkNames("product", m.Product, products); err != nil {
		return err
	}
	if err := checkNames("region", m.Region, regions); err != nil {
		return err
	}
	for _, p := range m.Priority {
		if p < 1 {
			return fmt.Errorf("match.priority: expected 1 or more, got %d", p)
		}
	}
	return nil
}

func checkNames(field string, got, known []string) error {
	for _, g := range got {
		if !slices.Contains(known, g) {
			return fmt.Errorf("match.%s: expected one of %s, got %q", field, strings.Join(known, ", "), g)
		}
	}
	return nil
}
