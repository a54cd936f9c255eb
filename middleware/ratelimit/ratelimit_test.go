package ratelimit_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

func TestHeadersFollowTheBucket(t *testing.T) {
	clock := newClock()
	store := bucket.NewMemory(bucket.WithClock(clock))
	limit := bucket.Limit{Capacity: 5, Rate: 1} // one token a second
	next := &okHandler{}
	h := ratelimit.New(store, limit, ratelimit.WithClock(clock))(next)
	base := clock.Now().Unix()

	for i := 1; i <= 5; i++ {
		rec := send(t, h, "alice")
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, rec.Code)
		}
		remaining := 5 - i
		t0 := 0
		if remaining == 0 {
			t0 = 1
		}
		wantHeader(t, rec, "X-RateLimit-Limit", "5")
		wantHeader(t, rec, "X-RateLimit-Remaining", strconv.Itoa(remaining))
		wantHeader(t, rec, "X-RateLimit-Reset", strconv.FormatInt(base+int64(i), 10))
		wantHeader(t, rec, "RateLimit-Policy", `"default";q=5;w=5`)
		wantHeader(t, rec, "RateLimit", `"default";r=`+strconv.Itoa(remaining)+
			";t="+strconv.Itoa(t0))
		wantHeader(t, rec, "Retry-After", "")
	}

	// Empty: refused, with the same headers and a JSON body.
	rec := send(t, h, "alice")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", rec.Code)
	}
	wantHeader(t, rec, "X-RateLimit-Remaining", "0")
	wantHeader(t, rec, "X-RateLimit-Reset", strconv.FormatInt(base+5, 10))
	wantHeader(t, rec, "RateLimit", `"default";r=0;t=1`)
	wantHeader(t, rec, "Retry-After", "1")
	body := errorBody(t, rec)
	if body["error"] != "rate limit exceeded" || body["retry_after_seconds"] != 1.0 {
		t.Errorf("body = %v", body)
	}
	if got := next.calls.Load(); got != 5 {
		t.Errorf("next handler ran %d times, want 5", got)
	}

	// Other keys have their own buckets.
	if rec := send(t, h, "bob"); rec.Code != http.StatusOK {
		t.Errorf("bob: status %d, want 200", rec.Code)
	}

	// Half a token later: still refused, and rounded up to one second.
	clock.Advance(500 * time.Millisecond)
	rec = send(t, h, "alice")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("after 0.5s: status %d, want 429", rec.Code)
	}
	wantHeader(t, rec, "Retry-After", "1")
	wantHeader(t, rec, "RateLimit", `"default";r=0;t=1`)

	// A full token later: allowed again.
	clock.Advance(500 * time.Millisecond)
	if rec := send(t, h, "alice"); rec.Code != http.StatusOK {
		t.Fatalf("after 1s: status %d, want 200", rec.Code)
	}
}

func TestHeadersRoundUp(t *testing.T) {
	clock := newClock()
	clock.Advance(250 * time.Millisecond)
	store := bucket.NewMemory(bucket.WithClock(clock))
	limit := bucket.PerMinute(10, 3) // one token every 20 seconds
	h := ratelimit.New(store, limit, ratelimit.WithClock(clock))(&okHandler{})
	base := time.Unix(1_700_000_000, 0).Unix()

	var rec = send(t, h, "k")
	for range 9 {
		rec = send(t, h, "k")
	}
	// 10 taken at base+0.25s: full again 200 s later.
	wantHeader(t, rec, "X-RateLimit-Reset", strconv.FormatInt(base+201, 10))
	wantHeader(t, rec, "RateLimit-Policy", `"default";q=10;w=200`)
	wantHeader(t, rec, "RateLimit", `"default";r=0;t=20`)

	clock.Advance(7 * time.Second)
	rec = send(t, h, "k")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", rec.Code)
	}
	wantHeader(t, rec, "Retry-After", "13")
	wantHeader(t, rec, "RateLimit", `"default";r=0;t=13`)
}

func TestBucketThatNeverRefills(t *testing.T) {
	store := bucket.NewMemory()
	h := ratelimit.New(store, bucket.Limit{Capacity: 1})(&okHandler{})

	rec := send(t, h, "k")
	wantHeader(t, rec, "RateLimit-Policy", `"default";q=1`)
	wantHeader(t, rec, "RateLimit", `"default";r=0`)
	wantHeader(t, rec, "X-RateLimit-Reset", "")

	rec = send(t, h, "k")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", rec.Code)
	}
	wantHeader(t, rec, "Retry-After", "")
	if body := errorBody(t, rec); body["retry_after_seconds"] != nil {
		t.Errorf("retry_after_seconds = %v, want none", body["retry_after_seconds"])
	}
}

func TestConcurrentRequestsSpendEachTokenOnce(t *testing.T) {
	store := bucket.NewMemory()
	next := &okHandler{}
	h := ratelimit.New(store, bucket.Limit{Capacity: 50})(next)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				send(t, h, "shared")
			}
		})
	}
	wg.Wait()
	if got := next.calls.Load(); got != 50 {
		t.Errorf("%d requests passed, want exactly the capacity 50", got)
	}
}

func TestKeysThatNeverReachTheStore(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"missing", nil, "missing API key"},
		{"empty", []string{""}, "missing API key"},
		{"too long", []string{strings.Repeat("k", ratelimit.MaxKeyBytes+1)}, "invalid API key"},
		{"control character", []string{"ab\x01cd"}, "invalid API key"},
		{"tab", []string{"ab\tcd"}, "invalid API key"},
		{"invalid UTF-8", []string{"ab\xffcd"}, "invalid API key"},
		{"repeated header", []string{"a", "b"}, "invalid API key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &countingStore{Store: bucket.NewMemory()}
			var seen []ratelimit.Observation
			h := ratelimit.New(store, bucket.Limit{Capacity: 5},
				ratelimit.WithObserver(func(o ratelimit.Observation) { seen = append(seen, o) }),
			)(&okHandler{})

			req, rec := newRequest(), newRecorder()
			req.Header["X-Api-Key"] = tc.values
			h.ServeHTTP(rec, req)

			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if body := errorBody(t, rec); body["error"] != tc.want {
				t.Errorf("error = %v, want %q", body["error"], tc.want)
			}
			if n := store.calls.Load(); n != 0 {
				t.Errorf("store called %d times, want 0", n)
			}
			if len(seen) != 1 || seen[0].Outcome != ratelimit.OutcomeUnauthorized {
				t.Errorf("observations = %+v, want one unauthorized", seen)
			}
		})
	}
}

func TestLongestKeyIsAccepted(t *testing.T) {
	h := ratelimit.New(bucket.NewMemory(), bucket.Limit{Capacity: 5})(&okHandler{})
	key := strings.Repeat("é", ratelimit.MaxKeyBytes/2) // two bytes each
	if rec := send(t, h, key); rec.Code != http.StatusOK {
		t.Errorf("status %d for a key of %d bytes, want 200", rec.Code, len(key))
	}
}

func TestValidKey(t *testing.T) {
	cases := map[string]bool{
		"abc":                                  true,
		"sk_live_0123456789":                   true,
		"ключ":                                 true,
		"":                                     false,
		strings.Repeat("x", 256):               true,
		strings.Repeat("x", 257):               false,
		"a\nb":                                 false,
		"a\u0085b":                             false, // C1 control
		"a\x7fb":                               false,
		string([]byte{0xc3, 0x28}):             false,
		"with space and punctuation: ~!@#$%^&": true,
	}
	for key, want := range cases {
		if got := ratelimit.ValidKey(key) == nil; got != want {
			t.Errorf("ValidKey(%q) ok = %v, want %v", key, got, want)
		}
	}
}
