package ratingapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
	"github.com/openclaw/ratelimit/ratingapi"
)

const testKey = "test-key-1"

// do sends one request to h. A body sent with a POST is JSON unless the
// caller sets Content-Type itself.
func do(
	t *testing.T, h http.Handler, method, path, key, body string, header ...string,
) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %q)", ct, rec.Body)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return v
}

type errBody struct {
	Error string `json:"error"`
}

func TestRateAndRead(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := ratingapi.New(ratingapi.Config{Now: func() time.Time { return now }})

	rec := do(t, h, "POST", "/v1/ratings", testKey,
		`{"item_id": "book-1", "score": 4, "comment": "good"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	got := decode[ratingapi.Rating](t, rec)
	if got.ItemID != "book-1" || got.Score != 4 || got.Comment != "good" ||
		!got.CreatedAt.Equal(now) || len(got.ID) != 32 {
		t.Errorf("stored rating %+v", got)
	}

	do(t, h, "POST", "/v1/ratings", testKey, `{"item_id": "book-1", "score": 1}`)
	rec = do(t, h, "GET", "/v1/items/book-1/rating", testKey, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	want := ratingapi.Summary{ItemID: "book-1", Count: 2, Average: 2.5}
	if sum := decode[ratingapi.Summary](t, rec); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}

	rec = do(t, h, "GET", "/v1/items/book-2/rating", testKey, "")
	if rec.Code != http.StatusNotFound || decode[errBody](t, rec).Error == "" {
		t.Errorf("unrated item: %d %s", rec.Code, rec.Body)
	}
}

func TestItemIDsNeedingEscapes(t *testing.T) {
	h := ratingapi.New(ratingapi.Config{})
	do(t, h, "POST", "/v1/ratings", testKey, `{"item_id": "a/b c%d", "score": 5}`)

	rec := do(t, h, "GET", "/v1/items/a%2Fb%20c%25d/rating", testKey, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	if sum := decode[ratingapi.Summary](t, rec); sum.ItemID != "a/b c%d" {
		t.Errorf("item %q", sum.ItemID)
	}
}

func TestHealthAndMetricsNeedNoKey(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "metric 1\n")
	})
	h := ratingapi.New(ratingapi.Config{
		RateLimit: ratelimit.New(bucket.NewMemory(), bucket.Limit{Capacity: 1}),
		Health: func() ratingapi.Health {
			return ratingapi.Health{Store: "redis", FallbackActive: true}
		},
		Metrics: metrics,
	})

	for range 3 {
		rec := do(t, h, "GET", "/healthz", "", "")
		if rec.Code != http.StatusOK {
			t.Fatalf("healthz: status %d", rec.Code)
		}
		if rec.Body.String() != `{"status":"ok","store":"redis","fallback_active":true}`+"\n" {
			t.Errorf("healthz body %s", rec.Body)
		}
		if rec.Header().Get("X-RateLimit-Limit") != "" {
			t.Error("healthz is rate limited")
		}
		rec = do(t, h, "GET", "/metrics", "", "")
		if rec.Code != 200 || rec.Body.String() != "metric 1\n" {
			t.Errorf("metrics: %d %q", rec.Code, rec.Body)
		}
	}

	// Without a metrics handler the route does not exist.
	h = ratingapi.New(ratingapi.Config{})
	if rec := do(t, h, "GET", "/metrics", "", ""); rec.Code != http.StatusNotFound {
		t.Errorf("metrics without a handler: status %d", rec.Code)
	}
	rec := do(t, h, "GET", "/healthz", "", "")
	if rec.Body.String() != `{"status":"ok","store":"memory","fallback_active":false}`+"\n" {
		t.Errorf("default healthz body %s", rec.Body)
	}
}

func TestKeys(t *testing.T) {
	keys, err := ratingapi.NewKeySet([]string{"alpha", "beta"})
	if err != nil {
		t.Fatal(err)
	}
	limited := ratingapi.New(ratingapi.Config{Keys: keys})
	open := ratingapi.New(ratingapi.Config{})
	path := "/v1/items/x/rating"

	cases := []struct {
		name string
		h    http.Handler
		key  string
		want int
		msg  string
	}{
		{"known key", limited, "alpha", 404, "item has no ratings"},
		{"unknown key", limited, "gamma", 401, "unknown API key"},
		{"missing key", limited, "", 401, "missing API key"},
		{"too long", limited, strings.Repeat("a", 257), 401, "invalid API key"},
		{"any key without a set", open, "gamma", 404, "item has no ratings"},
		{"missing key without a set", open, "", 401, "missing API key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, tc.h, "GET", path, tc.key, "")
			if rec.Code != tc.want || decode[errBody](t, rec).Error != tc.msg {
				t.Errorf("got %d %s, want %d %q", rec.Code, rec.Body, tc.want, tc.msg)
			}
		})
	}

	if _, err := ratingapi.NewKeySet([]string{"ok", "bad\nkey"}); err == nil {
		t.Error("NewKeySet accepted a key with a newline")
	} else if strings.Contains(err.Error(), "bad") {
		t.Errorf("error %q repeats the key", err)
	}
	if _, err := ratingapi.NewKeySet(nil); err == nil {
		t.Error("NewKeySet accepted no key")
	}
}

func TestRateLimitedPerKey(t *testing.T) {
	h := ratingapi.New(ratingapi.Config{
		RateLimit: ratelimit.New(bucket.NewMemory(), bucket.PerMinute(3, 3)),
	})
	body := `{"item_id": "i", "score": 3}`
	for i := 3; i > 0; i-- {
		rec := do(t, h, "POST", "/v1/ratings", "k1", body)
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d", rec.Code)
		}
		if got, want := rec.Header().Get("X-RateLimit-Remaining"), string(rune('0'+i-1)); got != want {
			t.Errorf("remaining %q, want %q", got, want)
		}
	}
	rec := do(t, h, "POST", "/v1/ratings", "k1", body)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "20" {
		t.Fatalf("got %d with Retry-After %q, want 429 and 20", rec.Code,
			rec.Header().Get("Retry-After"))
	}
	if rec := do(t, h, "POST", "/v1/ratings", "k2", body); rec.Code != http.StatusCreated {
		t.Errorf("another key: status %d", rec.Code)
	}

	// A refused request was not counted.
	sum := decode[ratingapi.Summary](t, do(t, h, "GET", "/v1/items/i/rating", "k3", ""))
	if sum.Count != 4 {
		t.Errorf("count %d, want 4", sum.Count)
	}
}

func TestConcurrentRatingsAreAllCounted(t *testing.T) {
	h := ratingapi.New(ratingapi.Config{})
	const workers, each = 16, 25

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				score := 1 + (w+i)%5
				body := `{"item_id": "hot", "score": ` + string(rune('0'+score)) + `}`
				if rec := do(t, h, "POST", "/v1/ratings", testKey, body); rec.Code != 201 {
					t.Errorf("status %d", rec.Code)
				}
			}
		})
	}
	wg.Wait()

	// Every (w+i) mod 5 class is equally common over 16*25 requests, so the
	// mean score is 3.
	sum := decode[ratingapi.Summary](t, do(t, h, "GET", "/v1/items/hot/rating", testKey, ""))
	if sum.Count != workers*each || sum.Average != 3 {
		t.Errorf("summary %+v, want %d ratings averaging 3", sum, workers*each)
	}
}

func TestRatingsForgetTheLeastRecentlyRated(t *testing.T) {
	r := ratingapi.NewRatings(2)
	r.Add("a", 1)
	r.Add("b", 2)
	r.Add("a", 3) // a is now the most recent
	r.Add("c", 4) // evicts b

	if _, ok := r.Get("b"); ok {
		t.Error("b is still there")
	}
	if s, ok := r.Get("a"); !ok || s.Count != 2 || s.Average != 2 {
		t.Errorf("a = %+v, %v", s, ok)
	}
	if r.Len() != 2 {
		t.Errorf("Len = %d, want 2", r.Len())
	}
}

func TestPanicsBecomeOpaque500s(t *testing.T) {
	h := ratingapi.New(ratingapi.Config{
		Health: func() ratingapi.Health { panic("secret internal state") },
	})
	rec := do(t, h, "GET", "/healthz", "", "")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	if msg := decode[errBody](t, rec).Error; msg != "internal error" {
		t.Errorf("error %q", msg)
	}
}
