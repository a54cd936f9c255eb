package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

func TestKeyFunc(t *testing.T) {
	byUser := func(r *http.Request) (string, error) {
		switch user := r.URL.Query().Get("user"); user {
		case "":
			return "", ratelimit.ErrMissingKey
		case "banned":
			return "", errors.New("user is banned: " + secretText)
		default:
			return "user:" + user, nil
		}
	}
	store := bucket.NewMemory()
	h := ratelimit.New(store, bucket.Limit{Capacity: 1},
		ratelimit.WithKeyFunc(byUser))(&okHandler{})

	get := func(query string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?"+query, nil))
		return rec
	}

	if rec := get("user=ann"); rec.Code != http.StatusOK {
		t.Fatalf("first: status %d, want 200", rec.Code)
	}
	if rec := get("user=ann"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("second: status %d, want 429", rec.Code)
	}
	if rec := get("user=ben"); rec.Code != http.StatusOK {
		t.Fatalf("other user: status %d, want 200", rec.Code)
	}

	rec := get("")
	if body := errorBody(t, rec); rec.Code != 401 || body["error"] != "missing API key" {
		t.Errorf("no user: %d %v", rec.Code, body)
	}
	rec = get("user=banned")
	if body := errorBody(t, rec); rec.Code != 401 || body["error"] != "invalid API key" {
		t.Errorf("banned: %d %v", rec.Code, body)
	}
	if strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("the key function's error reached the client: %s", rec.Body)
	}

	// The key function's key, not the header, names the bucket.
	res, err := store.Take(context.Background(), "user:ben", bucket.Limit{Capacity: 1}, 1)
	if err != nil || res.Allowed {
		t.Errorf("bucket user:ben: %+v, %v; want it spent by the middleware", res, err)
	}
}

func TestLimitFunc(t *testing.T) {
	plans := map[string]bucket.Limit{
		"free": {Capacity: 2, Rate: 1},
		"pro":  {Capacity: 10, Rate: 5},
	}
	limitOf := func(_ *http.Request, key string) bucket.Limit {
		plan, _, _ := strings.Cut(key, "-")
		return plans[plan]
	}
	h := ratelimit.New(bucket.NewMemory(), plans["free"],
		ratelimit.WithLimitFunc(limitOf))(&okHandler{})

	for key, want := range map[string]int{"free-1": 2, "pro-1": 10} {
		passed := 0
		var last *httptest.ResponseRecorder
		for range 12 {
			last = send(t, h, key)
			if last.Code == http.StatusOK {
				passed++
			}
		}
		if passed != want {
			t.Errorf("%s: %d passed, want %d", key, passed, want)
		}
		wantHeader(t, last, "X-RateLimit-Limit", strconv.Itoa(want))
		wantHeader(t, last, "RateLimit-Policy", fmt.Sprintf(`"default";q=%d;w=2`, want))
	}
}

func TestCostFunc(t *testing.T) {
	cost := func(r *http.Request) (int64, error) {
		return strconv.ParseInt(r.URL.Query().Get("cost"), 10, 64)
	}
	clock := newClock()
	store := &countingStore{Store: bucket.NewMemory(bucket.WithClock(clock))}
	var seen []ratelimit.Observation
	h := ratelimit.New(store, bucket.Limit{Capacity: 10, Rate: 1},
		ratelimit.WithCostFunc(cost), ratelimit.WithClock(clock),
		ratelimit.WithObserver(func(o ratelimit.Observation) { seen = append(seen, o) }),
	)(&okHandler{})

	get := func(query string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/?"+query, nil)
		req.Header.Set("X-API-Key", "k")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := get("cost=7")
	if rec.Code != http.StatusOK {
		t.Fatalf("cost 7: status %d", rec.Code)
	}
	wantHeader(t, rec, "X-RateLimit-Remaining", "3")
	// The next request of 7 tokens needs 4 more, 4 seconds away.
	wantHeader(t, rec, "RateLimit", `"default";r=3;t=4`)

	rec = get("cost=4")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("cost 4 with 3 left: status %d, want 429", rec.Code)
	}
	wantHeader(t, rec, "Retry-After", "1")
	if seen[len(seen)-1].Cost != 4 {
		t.Errorf("observed cost %d, want 4", seen[len(seen)-1].Cost)
	}

	calls := store.calls.Load()
	for _, query := range []string{"cost=x", "cost=0", "cost=-3", ""} {
		rec := get(query)
		if body := errorBody(t, rec); rec.Code != 400 || body["error"] != "invalid request cost" {
			t.Errorf("%q: %d %v", query, rec.Code, body)
		}
	}
	if store.calls.Load() != calls {
		t.Error("an invalid cost reached the store")
	}

	rec = get("cost=11")
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("cost above capacity: status %d, want 400", rec.Code)
	}
	errorBody(t, rec)
	last := seen[len(seen)-1]
	if last.Outcome != ratelimit.OutcomeInvalidCost || !errors.Is(last.Err, bucket.ErrCostTooHigh) {
		t.Errorf("observation %+v, want invalid_cost with ErrCostTooHigh", last)
	}
}

func TestDeniedHandler(t *testing.T) {
	var got bucket.Result
	denied := func(w http.ResponseWriter, _ *http.Request, res bucket.Result) {
		got = res
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("slow down"))
	}
	clock := newClock()
	h := ratelimit.New(bucket.NewMemory(bucket.WithClock(clock)),
		bucket.Limit{Capacity: 1, Rate: 0.5},
		ratelimit.WithDeniedHandler(denied), ratelimit.WithClock(clock))(&okHandler{})

	send(t, h, "k")
	rec := send(t, h, "k")
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "slow down" {
		t.Fatalf("got %d %q from the denied handler", rec.Code, rec.Body)
	}
	if got.Allowed || got.RetryAfter != 2*time.Second {
		t.Errorf("denied handler saw %+v", got)
	}
	wantHeader(t, rec, "Retry-After", "2")
	wantHeader(t, rec, "X-RateLimit-Remaining", "0")
}

func TestErrorPolicy(t *testing.T) {
	cases := []struct {
		name   string
		opts   []ratelimit.Option
		status int
	}{
		{"default fails open", nil, http.StatusOK},
		{"fail open", []ratelimit.Option{ratelimit.WithErrorPolicy(ratelimit.FailOpen)}, 200},
		{"fail closed", []ratelimit.Option{ratelimit.WithErrorPolicy(ratelimit.FailClosed)}, 503},
		{"shadow overrides fail closed", []ratelimit.Option{
			ratelimit.WithErrorPolicy(ratelimit.FailClosed), ratelimit.WithShadow(true)}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seen []ratelimit.Observation
			opts := append(tc.opts, ratelimit.WithObserver(func(o ratelimit.Observation) {
				seen = append(seen, o)
			}))
			next := &okHandler{}
			h := ratelimit.New(failingStore{}, bucket.Limit{Capacity: 5}, opts...)(next)

			rec := send(t, h, "k")
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("the store error reached the client: %s", rec.Body)
			}
			wantHeader(t, rec, "X-RateLimit-Remaining", "")
			if tc.status == 503 {
				if body := errorBody(t, rec); body["error"] != "rate limiter unavailable" {
					t.Errorf("body %v", body)
				}
				if next.calls.Load() != 0 {
					t.Error("fail closed ran the next handler")
				}
			}
			if len(seen) != 1 || seen[0].Outcome != ratelimit.OutcomeError ||
				!errors.Is(seen[0].Err, errSecret) {
				t.Errorf("observations %+v, want one error with the store error", seen)
			}
		})
	}
}

func TestShadow(t *testing.T) {
	var seen []ratelimit.Observation
	next := &okHandler{}
	h := ratelimit.New(bucket.NewMemory(), bucket.Limit{Capacity: 2, Rate: 1},
		ratelimit.WithShadow(true),
		ratelimit.WithObserver(func(o ratelimit.Observation) { seen = append(seen, o) }),
	)(next)

	for range 4 {
		if rec := send(t, h, "k"); rec.Code != http.StatusOK {
			t.Fatalf("shadow mode refused: %d", rec.Code)
		}
	}
	rec := send(t, h, "k")
	wantHeader(t, rec, "X-RateLimit-Remaining", "0")
	wantHeader(t, rec, "RateLimit", `"default";r=0;t=1`)
	wantHeader(t, rec, "Retry-After", "")

	want := []ratelimit.Outcome{"allowed", "allowed",
		"shadow_denied", "shadow_denied", "shadow_denied"}
	for i, o := range seen {
		if o.Outcome != want[i] || o.Backend != bucket.BackendMemory {
			t.Errorf("observation %d = %+v, want %s from memory", i, o, want[i])
		}
	}
	if next.calls.Load() != 5 {
		t.Errorf("next ran %d times, want 5", next.calls.Load())
	}

	// Shadow mode still refuses a request with no key.
	if rec := send(t, h, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("no key in shadow mode: status %d, want 401", rec.Code)
	}
}

func TestWait(t *testing.T) {
	// Real time: a token every 20 ms, so a wait is short.
	limit := bucket.Limit{Capacity: 1, Rate: 50}

	t.Run("waits for the tokens", func(t *testing.T) {
		var seen []ratelimit.Observation
		h := ratelimit.New(bucket.NewMemory(), limit, ratelimit.WithMaxWait(5*time.Second),
			ratelimit.WithObserver(func(o ratelimit.Observation) { seen = append(seen, o) }),
		)(&okHandler{})
		for i := range 3 {
			if rec := send(t, h, "k"); rec.Code != http.StatusOK {
				t.Fatalf("request %d: status %d, want 200 after a wait", i, rec.Code)
			}
		}
		if seen[0].Waited || !seen[1].Waited || !seen[2].Waited {
			t.Errorf("observations %+v: want only the later requests to wait", seen)
		}
	})

	t.Run("refuses at once when the wait is too long", func(t *testing.T) {
		slow := bucket.Limit{Capacity: 1, Rate: 0.01} // 100 s a token
		h := ratelimit.New(bucket.NewMemory(), slow,
			ratelimit.WithMaxWait(time.Second))(&okHandler{})
		send(t, h, "k")
		rec := send(t, h, "k")
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429", rec.Code)
		}
		wantHeader(t, rec, "Retry-After", "100")
	})

	t.Run("refuses when others take the tokens first", func(t *testing.T) {
		// The store refuses twice, then answers after the deadline passed.
		store := &refusingStore{retry: 10 * time.Millisecond}
		h := ratelimit.New(store, limit, ratelimit.WithMaxWait(30*time.Millisecond))(&okHandler{})
		rec := send(t, h, "k")
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429", rec.Code)
		}
		errorBody(t, rec)
	})

	t.Run("a client that leaves gets nothing", func(t *testing.T) {
		var seen []ratelimit.Observation
		store := &refusingStore{retry: time.Hour / 2}
		h := ratelimit.New(store, limit, ratelimit.WithMaxWait(time.Hour),
			ratelimit.WithObserver(func(o ratelimit.Observation) { seen = append(seen, o) }),
		)(&okHandler{})

		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
		req.Header.Set("X-API-Key", "k")
		rec := httptest.NewRecorder()
		store.onTake = cancel // the client leaves while the request waits
		h.ServeHTTP(rec, req)

		if rec.Body.Len() != 0 {
			t.Errorf("wrote %q to a client that left", rec.Body)
		}
		if len(seen) != 1 || seen[0].Outcome != ratelimit.OutcomeCanceled {
			t.Errorf("observations %+v, want one canceled", seen)
		}
	})
}

// refusingStore refuses every request with a fixed retry-after.
type refusingStore struct {
	bucket.Store
	retry  time.Duration
	onTake func()
}

func (s *refusingStore) Take(
	ctx context.Context, _ string, l bucket.Limit, _ int64,
) (bucket.Result, error) {
	if err := ctx.Err(); err != nil {
		return bucket.Result{}, err
	}
	if s.onTake != nil {
		s.onTake()
	}
	return bucket.Result{Limit: l, RetryAfter: s.retry, ResetAfter: s.retry,
		Backend: bucket.BackendMemory}, nil
}

func TestObserverNeverSeesTheKey(t *testing.T) {
	const key = "sk_live_very_secret_key"
	var seen []ratelimit.Observation
	observe := ratelimit.WithObserver(func(o ratelimit.Observation) { seen = append(seen, o) })

	stores := []bucket.Store{bucket.NewMemory(), failingStore{}}
	for _, store := range stores {
		h := ratelimit.New(store, bucket.Limit{Capacity: 1}, observe)(&okHandler{})
		send(t, h, key)
		send(t, h, key)
	}
	if len(seen) != 4 {
		t.Fatalf("%d observations, want 4", len(seen))
	}
	for _, o := range seen {
		if text := fmt.Sprintf("%+v %v", o, o.Err); strings.Contains(text, "secret_key") {
			t.Errorf("observation holds the key: %s", text)
		}
	}
}

func TestNewPanicsOnMisuse(t *testing.T) {
	for name, fn := range map[string]func(){
		"nil store":     func() { ratelimit.New(nil, bucket.Limit{Capacity: 1}) },
		"invalid limit": func() { ratelimit.New(bucket.NewMemory(), bucket.Limit{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			fn()
		})
	}
}
