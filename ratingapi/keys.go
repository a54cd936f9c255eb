package ratingapi

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"

	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

// KeySet is a set of accepted API keys. It holds their SHA-256 sums, not
// the keys, so that a lookup's timing says nothing useful about a key. A
// nil *KeySet accepts every key. It is safe for concurrent use once built.
type KeySet struct {
	sums map[[sha256.Size]byte]struct{}
}

// NewKeySet returns the set of keys. Each key must pass
// ratelimit.ValidKey; the error names the position of a key that does
// not, never the key itself.
func NewKeySet(keys []string) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("ratingapi: no API key given")
	}
	s := &KeySet{sums: make(map[[sha256.Size]byte]struct{}, len(keys))}
	for i, key := range keys {
		if err := ratelimit.ValidKey(key); err != nil {
			return nil, fmt.Errorf("ratingapi: key %d of %d: %w", i+1, len(keys), err)
		}
		s.sums[sha256.Sum256([]byte(key))] = struct{}{}
	}
	return s, nil
}

// Len returns the number of distinct keys in the set.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.sums)
}

// Contains reports whether key is in the set; a nil set contains every
// key.
func (s *KeySet) Contains(key string) bool {
	if s == nil {
		return true
	}
	_, ok := s.sums[sha256.Sum256([]byte(key))]
	return ok
}

// requireKey refuses, with 401, requests whose X-API-Key is missing,
// malformed or not in keys, before they reach the rate limiter: unknown
// keys then cost no bucket.
func requireKey(keys *KeySet) func(http.Handler) http.Handler {
	keyOf := ratelimit.HeaderKey(ratelimit.DefaultKeyHeader)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, err := keyOf(r)
			switch {
			case errors.Is(err, ratelimit.ErrMissingKey):
				writeError(w, http.StatusUnauthorized, "missing API key")
			case err != nil:
				writeError(w, http.StatusUnauthorized, "invalid API key")
			case !keys.Contains(key):
				writeError(w, http.StatusUnauthorized, "unknown API key")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
