package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

// FuzzAPIKeyHeader sends whatever bytes the fuzzer makes as the X-API-Key
// header, set directly in the header map so that no client-side check
// filters them. The middleware must answer 401 exactly when ValidKey
// refuses the key, never a 5xx, never echo the key, and count a valid key
// in its own bucket: two requests leave one token fewer than one did.
func FuzzAPIKeyHeader(f *testing.F) {
	for _, seed := range []string{
		"good-key",
		"",
		" ",
		"key with spaces",
		"k\x00ey",
		"k\x7fey",
		"\xff\xfe\xfd",
		"\xc3\x28",
		"ключ-🔑",
		"a\r\nX-Injected: 1",
		strings.Repeat("k", ratelimit.MaxKeyBytes),
		strings.Repeat("k", ratelimit.MaxKeyBytes+1),
		strings.Repeat("é", ratelimit.MaxKeyBytes/2+1),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, key string) {
		store := bucket.NewMemory()
		limit := bucket.Limit{Capacity: 5, Rate: 0}
		reached := 0
		h := ratelimit.New(store, limit)(http.HandlerFunc(
			func(w http.ResponseWriter, _ *http.Request) {
				reached++
				w.WriteHeader(http.StatusNoContent)
			}))

		send := func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header["X-Api-Key"] = []string{key}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		first := send()
		if first.Code >= 500 {
			t.Fatalf("key %q got %d", key, first.Code)
		}
		// Short keys are substrings of any text; long ones must not appear.
		if len(key) >= 8 && strings.Contains(first.Body.String(), key) {
			t.Fatalf("response body echoes the key %q: %s", key, first.Body)
		}

		valid := ratelimit.ValidKey(key) == nil
		if !valid {
			if first.Code != http.StatusUnauthorized || reached != 0 {
				t.Fatalf("invalid key %q got %d and reached the handler %d times",
					key, first.Code, reached)
			}
			return
		}
		if first.Code != http.StatusNoContent {
			t.Fatalf("valid key %q got %d, want 204", key, first.Code)
		}

		second := send()
		r1 := first.Header().Get(ratelimit.HeaderRemaining)
		r2 := second.Header().Get(ratelimit.HeaderRemaining)
		if r1 != strconv.Itoa(int(limit.Capacity-1)) || r2 != strconv.Itoa(int(limit.Capacity-2)) {
			t.Fatalf("valid key %q: remaining %q then %q, want 4 then 3", key, r1, r2)
		}
	})
}
