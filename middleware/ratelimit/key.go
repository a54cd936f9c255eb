package ratelimit

import (
	"errors"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// MaxKeyBytes is the longest key, in bytes, that HeaderKey and ValidKey
// accept.
const MaxKeyBytes = 256

// DefaultKeyHeader is the header that holds the key when no key function
// is given.
const DefaultKeyHeader = "X-API-Key"

// ErrMissingKey is returned by a key function when the request carries no
// key. The middleware answers it with 401 and "missing API key".
var ErrMissingKey = errors.New("ratelimit: missing key")

// ErrInvalidKey is returned by a key function when the request carries a
// key that cannot be used. The middleware answers it, and any other key
// function error, with 401 and "invalid API key".
var ErrInvalidKey = errors.New("ratelimit: invalid key")

// KeyFunc returns the key whose bucket a request is counted against. An
// error refuses the request with 401 before any store is called; the text
// of the error is never sent to the client.
type KeyFunc func(r *http.Request) (string, error)

// HeaderKey returns a key function that reads the key from the header
// name. A request without the header gets ErrMissingKey; one that repeats
// it, or whose key fails ValidKey, gets ErrInvalidKey.
func HeaderKey(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, error) {
		values := r.Header[name]
		switch {
		case len(values) == 0 || values[0] == "":
			return "", ErrMissingKey
		case len(values) > 1:
			return "", ErrInvalidKey
		}
		if err := ValidKey(values[0]); err != nil {
			return "", err
		}
		return values[0], nil
	}
}

// ValidKey reports, with ErrInvalidKey, whether key is unfit to name a
// bucket: empty, longer than MaxKeyBytes, not valid UTF-8, or holding a
// control character. Custom key functions that read keys from clients can
// use it.
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyBytes || !utf8.ValidString(key) {
		return ErrInvalidKey
	}
	for _, c := range key {
		if unicode.IsControl(c) {
			return ErrInvalidKey
		}
	}
	return nil
}
