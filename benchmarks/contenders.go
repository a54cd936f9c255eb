package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/httprate"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/goredisstore.v9"
	"github.com/throttled/throttled/v2/store/memstore"
	"github.com/ulule/limiter/v3"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
	"golang.org/x/time/rate"

	"github.com/openclaw/ratelimit/bucket"
)

// Limiter is what every contender is measured through: one decision for
// one request on key.
type Limiter interface {
	Allow(ctx context.Context, key string) (bool, error)
}

// spec is the limit every contender is given: capacity requests at once,
// refilled evenly over window.
type spec struct {
	capacity int
	window   time.Duration
}

func (s spec) bucket() bucket.Limit {
	return bucket.Limit{Capacity: int64(s.capacity), Rate: float64(s.capacity) / s.window.Seconds()}
}

// env is what a contender's setup may use.
type env struct {
	client func() *redis.Client // a new client of the benchmark Redis
	dead   func() *redis.Client // a client of a port where nothing listens
	prefix string               // a key prefix no other setup uses
}

// contender is one limiter under test.
type contender struct {
	name    string
	store   string // "redis", "memory", or "none"
	ours    bool   // this project's code: its correctness must be exact
	missing string // why it cannot be measured here, if it cannot
	setup   func(env, spec) (Limiter, func(), error)
}

// limiterFunc adapts a function to Limiter.
type limiterFunc func(ctx context.Context, key string) (bool, error)

func (f limiterFunc) Allow(ctx context.Context, key string) (bool, error) { return f(ctx, key) }

func nothing() {}

func contenders() []contender {
	return []contender{
		{name: referenceName, store: "redis", setup: setupReference},
		{name: "ours: bucket.Redis", store: "redis", ours: true, setup: setupOursRedis},
		{name: "ours: bucket.Fallback", store: "redis", ours: true, setup: setupOursFallback},
		{name: "ours: Fallback, Redis dead", store: "memory", ours: true, setup: setupOursDead},
		{name: "ours: bucket.Memory", store: "memory", ours: true, setup: setupOursMemory},
		{name: "redis_rate v10", store: "redis", setup: setupRedisRate},
		{name: "ulule/limiter v3", store: "redis", setup: setupUluleRedis},
		{name: "throttled v2 (goredisstore.v9)", store: "redis", setup: setupThrottledRedis},
		{name: "ulule/limiter v3", store: "memory", setup: setupUluleMemory},
		{name: "throttled v2 (memstore)", store: "memory", setup: setupThrottledMemory},
		{name: "sethvargo/go-limiter", store: "memory", setup: setupSethvargo},
		{name: "go-chi/httprate", store: "memory", setup: setupHTTPRate},
		{name: "x/time/rate (map+mutex)", store: "memory", setup: setupXRate},
		{
			name: "go-chi/httprate-redis", store: "redis",
			missing: "not served by the module proxy here (403 on go get)",
		},
	}
}

// referenceSource is the smallest token bucket a Redis script can hold:
// read, refill, take, write, on a hash, timed by the Redis clock.
const referenceSource = `
local cap = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local b = redis.call('HMGET', KEYS[1], 'n', 't')
local n = math.min(cap, (tonumber(b[1]) or cap) + (now - (tonumber(b[2]) or now)) * ARGV[2])
if n < 1 then return 0 end
redis.call('HSET', KEYS[1], 'n', n - 1, 't', now)
return 1
`

var referenceScript = redis.NewScript(referenceSource)

func setupReference(e env, s spec) (Limiter, func(), error) {
	c := e.client()
	perMicro := fmt.Sprint(float64(s.capacity) / float64(s.window.Microseconds()))
	return limiterFunc(func(ctx context.Context, key string) (bool, error) {
		n, err := referenceScript.Run(ctx, c, []string{e.prefix + key}, s.capacity, perMicro).Int()
		return n == 1, err
	}), func() { c.Close() }, nil
}

func setupOursRedis(e env, s spec) (Limiter, func(), error) {
	c := e.client()
	store := bucket.NewRedis(c, bucket.WithPrefix(e.prefix+"ours"))
	return storeLimiter(store, s), func() { c.Close() }, nil
}

func setupOursFallback(e env, s spec) (Limiter, func(), error) {
	c := e.client()
	store := bucket.NewFallback(c, bucket.WithPrefix(e.prefix+"ours"))
	return storeLimiter(store, s), func() { store.Close(); c.Close() }, nil
}

// setupOursDead points a Fallback at a port where nothing listens, and
// waits until its breaker is open, so that only the outage is measured.
func setupOursDead(e env, s spec) (Limiter, func(), error) {
	c := e.dead()
	store := bucket.NewFallback(c, bucket.WithPrefix(e.prefix+"ours"))
	done := func() { store.Close(); c.Close() }

	deadline := time.Now().Add(5 * time.Second)
	for !store.Active() {
		if time.Now().After(deadline) {
			done()
			return nil, nil, errors.New("the breaker did not open")
		}
		_, _ = store.Take(context.Background(), "warm", s.bucket(), 1)
		time.Sleep(time.Millisecond)
	}
	return storeLimiter(store, s), done, nil
}

func setupOursMemory(_ env, s spec) (Limiter, func(), error) {
	return storeLimiter(bucket.NewMemory(), s), nothing, nil
}

func storeLimiter(store bucket.Store, s spec) Limiter {
	limit := s.bucket()
	return limiterFunc(func(ctx context.Context, key string) (bool, error) {
		res, err := store.Take(ctx, key, limit, 1)
		return res.Allowed, err
	})
}

func setupRedisRate(e env, s spec) (Limiter, func(), error) {
	c := e.client()
	l := redis_rate.NewLimiter(c)
	limit := redis_rate.Limit{Rate: s.capacity, Burst: s.capacity, Period: s.window}
	return limiterFunc(func(ctx context.Context, key string) (bool, error) {
		res, err := l.Allow(ctx, e.prefix+key, limit)
		if err != nil {
			return false, err
		}
		return res.Allowed > 0, nil
	}), func() { c.Close() }, nil
}

func setupUluleRedis(e env, s spec) (Limiter, func(), error) {
	c := e.client()
	store, err := ulredis.NewStoreWithOptions(c, limiter.StoreOptions{Prefix: e.prefix + "ulule"})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return ululeLimiter(store, s), func() { c.Close() }, nil
}

func setupUluleMemory(e env, s spec) (Limiter, func(), error) {
	store := ulmemory.NewStoreWithOptions(limiter.StoreOptions{
		Prefix: e.prefix + "ulule", CleanUpInterval: time.Minute,
	})
	return ululeLimiter(store, s), nothing, nil
}

func ululeLimiter(store limiter.Store, s spec) Limiter {
	l := limiter.New(store, limiter.Rate{Period: s.window, Limit: int64(s.capacity)})
	return limiterFunc(func(ctx context.Context, key string) (bool, error) {
		res, err := l.Get(ctx, key)
		return err == nil && !res.Reached, err
	})
}

func setupThrottledRedis(e env, s spec) (Limiter, func(), error) {
	c := e.client()
	store, err := goredisstore.NewCtx(c, e.prefix+"throttled:")
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	l, err := throttledLimiter(store, s)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return l, func() { c.Close() }, nil
}

func setupThrottledMemory(_ env, s spec) (Limiter, func(), error) {
	store, err := memstore.NewCtx(65536)
	if err != nil {
		return nil, nil, err
	}
	l, err := throttledLimiter(store, s)
	return l, nothing, err
}

// throttledLimiter gives GCRA a burst of capacity-1 beyond the first
// request, which is capacity requests at once.
func throttledLimiter(store throttled.GCRAStoreCtx, s spec) (Limiter, error) {
	quota := throttled.RateQuota{
		MaxRate:  throttled.PerDuration(s.capacity, s.window),
		MaxBurst: s.capacity - 1,
	}
	l, err := throttled.NewGCRARateLimiterCtx(store, quota)
	if err != nil {
		return nil, err
	}
	return limiterFunc(func(ctx context.Context, key string) (bool, error) {
		limited, _, err := l.RateLimitCtx(ctx, key, 1)
		return err == nil && !limited, err
	}), nil
}

func setupSethvargo(_ env, s spec) (Limiter, func(), error) {
	store, err := memorystore.New(&memorystore.Config{Tokens: uint64(s.capacity), Interval: s.window})
	if err != nil {
		return nil, nil, err
	}
	return limiterFunc(func(ctx context.Context, key string) (bool, error) {
		_, _, _, ok, err := store.Take(ctx, key)
		return ok, err
	}), func() { store.Close(context.Background()) }, nil
}

// setupHTTPRate asks httprate for a decision without HTTP: with no
// response headers configured, OnLimit does not touch the writer.
func setupHTTPRate(_ env, s spec) (Limiter, func(), error) {
	noHeaders := httprate.WithResponseHeaders(httprate.ResponseHeaders{})
	l := httprate.NewRateLimiter(s.capacity, s.window, noHeaders)
	req, err := http.NewRequest(http.MethodGet, "/", nil)
	if err != nil {
		return nil, nil, err
	}
	var w discardWriter
	return limiterFunc(func(_ context.Context, key string) (bool, error) {
		return !l.OnLimit(w, req, key), nil
	}), nothing, nil
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// xrate is the usual way to limit by key with golang.org/x/time/rate: a map
// of limiters behind a mutex.
type xrate struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	limit rate.Limit
	burst int
}

func setupXRate(_ env, s spec) (Limiter, func(), error) {
	x := &xrate{
		m:     make(map[string]*rate.Limiter),
		limit: rate.Limit(float64(s.capacity) / s.window.Seconds()),
		burst: s.capacity,
	}
	return x, nothing, nil
}

func (x *xrate) Allow(_ context.Context, key string) (bool, error) {
	x.mu.Lock()
	l, ok := x.m[key]
	if !ok {
		l = rate.NewLimiter(x.limit, x.burst)
		x.m[key] = l
	}
	x.mu.Unlock()
	return l.Allow(), nil
}

// referenceName names the reference every figure is compared with.
const referenceName = "reference: EVALSHA"
