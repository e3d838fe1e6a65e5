package statuspage

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/picket-dev/picket/alert"
)

// updateRequest is the body of POST /api/v1/incidents/{key}/updates.
type updateRequest struct {
	Status string `json:"status"` // investigating | identified | monitoring | resolved
	Text   string `json:"text"`
	Author string `json:"author"`
}

type updateAnswer struct {
	Key    string       `json:"key"`
	Open   bool         `json:"open"`
	Update alert.Update `json:"update"`
}

// apiPostUpdate adds a human update to an incident (`picket update post` calls it).
func (h *Handler) apiPostUpdate(w http.ResponseWriter, r *http.Request) {
	var req updateRequest
	if status, err := decodeStrict(w, r, "update {status, text, author}", &req); err != nil {
		writeError(w, h.scrub, status, err.Error())
		return
	}
	key := keyFromPath(r.PathValue("key"))
	inc, made, err := h.src.PostUpdate(key, alert.Update{Status: req.Status, Text: req.Text, Author: req.Author})
	switch {
	case errors.Is(err, alert.ErrInvalidUpdate):
		writeError(w, h.scrub, http.StatusBadRequest, err.Error())
	case errors.Is(err, alert.ErrNotFound):
		writeError(w, h.scrub, http.StatusNotFound, fmt.Sprintf("no open or closed incident with key %q", key))
	case err != nil:
		h.fail(w, "post update", err)
	default:
		h.log.Info("incident update posted", "key", key, "status", made.Status, "id", made.ID)
		writeJSON(w, h.scrub, http.StatusCreated, updateAnswer{Key: inc.Key, Open: inc.Open(), Update: made})
	}
}

// apiUpdates lists an incident's updates, oldest first.
func (h *Handler) apiUpdates(w http.ResponseWriter, r *http.Request) {
	if inc, ok := h.incidentOfPath(w, r); ok {
		writeJSON(w, h.scrub, http.StatusOK, nonNil(inc.Updates))
	}
}
