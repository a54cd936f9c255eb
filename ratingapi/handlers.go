package ratingapi

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
)

// Rating is one rating as the API returns it after storing it.
type Rating struct {
	ID        string    `json:"id"`
	ItemID    string    `json:"item_id"`
	Score     int       `json:"score"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Health is what /healthz reports of the rate limit store.
type Health struct {
	// Store is "redis" or "memory".
	Store string

	// FallbackActive reports that Redis failed and memory decides.
	FallbackActive bool
}

type api struct {
	ratings *Ratings
	health  func() Health
	now     func() time.Time
}

func (a *api) postRating(w http.ResponseWriter, r *http.Request) {
	req, bad := decodeRating(w, r)
	if bad != nil {
		writeError(w, bad.status, bad.msg)
		return
	}

	a.ratings.Add(*req.ItemID, *req.Score)
	rating := Rating{
		ID:        newID(),
		ItemID:    *req.ItemID,
		Score:     *req.Score,
		CreatedAt: a.now().UTC(),
	}
	if req.Comment != nil {
		rating.Comment = *req.Comment
	}
	writeJSON(w, http.StatusCreated, rating)
}

func (a *api) getRating(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "item_id")
	if r.URL.RawPath != "" {
		// chi matched the escaped path, so the parameter is still escaped.
		var err error
		if id, err = url.PathUnescape(id); err != nil {
			writeError(w, http.StatusBadRequest, "item_id is not a valid path segment")
			return
		}
	}
	if bad := checkItemID(id); bad != nil {
		writeError(w, bad.status, bad.msg)
		return
	}

	sum, ok := a.ratings.Get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "item has no ratings")
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	h := Health{Store: "memory"}
	if a.health != nil {
		h = a.health()
	}
	writeJSON(w, http.StatusOK, struct {
		Status         string `json:"status"`
		Store          string `json:"store"`
		FallbackActive bool   `json:"fallback_active"`
	}{"ok", h.Store, h.FallbackActive})
}

// newID returns 16 random bytes in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
