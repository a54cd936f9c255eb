package ratelimit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/fakeclock"
)

// newClock returns a clock that moves only when told.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Unix(1_700_000_000, 0))
}

// countingStore counts the calls that reach the store it wraps.
type countingStore struct {
	bucket.Store
	calls atomic.Int64
}

func (s *countingStore) Take(
	ctx context.Context, key string, l bucket.Limit, n int64,
) (bucket.Result, error) {
	s.calls.Add(1)
	return s.Store.Take(ctx, key, l, n)
}

// failingStore fails every decision with an error that must not reach
// clients.
type failingStore struct{ bucket.Store }

const secretText = "dial tcp 10.1.2.3:6379: secret internal detail"

func (failingStore) Take(context.Context, string, bucket.Limit, int64) (bucket.Result, error) {
	return bucket.Result{}, errSecret
}

var errSecret = &secretError{}

type secretError struct{}

func (*secretError) Error() string { return secretText }

// okHandler answers 200 "ok" and counts its calls.
type okHandler struct{ calls atomic.Int64 }

func (h *okHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.calls.Add(1)
	_, _ = w.Write([]byte("ok"))
}

// send sends one request with key as X-API-Key (none when key is empty).
func send(t *testing.T, h http.Handler, key string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// errorBody decodes a JSON error body.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	if _, ok := body["error"].(string); !ok {
		t.Fatalf("body %q has no error string", rec.Body)
	}
	return body
}

func wantHeader(t *testing.T, rec *httptest.ResponseRecorder, name, want string) {
	t.Helper()
	if got := rec.Header().Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func newRequest() *http.Request {
	return httptest.NewRequest(http.MethodGet, "/", nil)
}

func newRecorder() *httptest.ResponseRecorder {
	return httptest.NewRecorder()
}
