package faults

import (
	"context"
	"sync"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/faultproxy"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// TestRedisStopsAnswering puts a proxy that holds every byte between the
// store and Redis: connections stay open, nothing comes back. Once the
// breaker has opened, no request may send anything to Redis, so none can
// wait for the Redis deadline; the proxy counts what reaches it. When the
// proxy forwards again, the store returns to Redis with the outage's
// spending.
func TestRedisStopsAnswering(t *testing.T) {
	srv := redistest.Start(t)
	proxy := faultproxy.Start(t, srv.Addr())
	f, ev := newFallback(t, newClient(t, proxy.Addr()))
	direct := srv.Client(t)
	ctx := context.Background()
	limit := bucket.Limit{Capacity: 100, Rate: 0}

	// Every bucket call names the key's Redis key; the heartbeat does not.
	calls := proxy.Watch(f.Redis().KeyName("k"))
	taken := takeN(t, f, "k", limit, 10)
	if calls.Load() == 0 {
		t.Fatal("the proxy saw no bucket call while forwarding")
	}

	// One request meets the silent Redis and opens the breaker.
	proxy.SetMode(faultproxy.Hold)
	before := calls.Load()
	res, err := f.Take(ctx, "k", limit, 1)
	if err != nil || !res.Allowed || res.Backend != bucket.BackendMemory {
		t.Fatalf("Take on a silent Redis = %+v, %v; want allowed from memory", res, err)
	}
	taken++
	if !f.Active() {
		t.Fatal("the fallback is off after a Redis timeout")
	}
	held := calls.Load() - before
	if held != 1 {
		t.Fatalf("the tripping request sent %d bucket calls, want 1", held)
	}

	// Concurrent requests after that make no Redis call at all.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var memoryAllowed int64
	var bad []string
	for range 8 {
		wg.Go(func() {
			for range 25 {
				res, err := f.Take(ctx, "k", limit, 1)
				mu.Lock()
				switch {
				case err != nil:
					bad = append(bad, err.Error())
				case res.Backend != bucket.BackendMemory:
					bad = append(bad, "answered by "+string(res.Backend))
				case res.Allowed:
					memoryAllowed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d requests went wrong during the outage, first: %s", len(bad), bad[0])
	}
	if got := calls.Load() - before; got != held {
		t.Fatalf("requests after the breaker opened sent %d bucket calls to Redis", got-held)
	}
	if want := limit.Capacity - taken; memoryAllowed != want {
		t.Fatalf("memory admitted %d, want the %d tokens Redis had left", memoryAllowed, want)
	}
	taken += memoryAllowed
	if n := len(ev.of(bucket.EventFallbackOn)); n != 1 {
		t.Fatalf("got %d fallback_on events, want 1", n)
	}

	// The held call reaches Redis once the proxy forwards; so does the
	// debit of the outage. A token is spent twice for the held call: its
	// answer never came, so memory decided it too.
	proxy.SetMode(faultproxy.Forward)
	waittest.Until(t, "the store to return to Redis", func() bool { return !f.Active() })
	want := float64(limit.Capacity - taken - held)
	waittest.Until(t, "the outage's spending in Redis", func() bool {
		return redisTokens(t, direct, f, "k", limit.Capacity) == want
	})
	res, err = f.Take(ctx, "k", limit, 1)
	if err != nil || res.Allowed || res.Backend != bucket.BackendRedis {
		t.Fatalf("after recovery Take = %+v, %v; want a refusal from Redis", res, err)
	}
}

// takeN takes n tokens one at a time and fails the test unless every take
// is allowed by Redis. It returns n.
func takeN(t testing.TB, s bucket.Store, key string, limit bucket.Limit, n int64) int64 {
	t.Helper()
	for i := range n {
		res, err := s.Take(context.Background(), key, limit, 1)
		if err != nil || !res.Allowed || res.Backend != bucket.BackendRedis {
			t.Fatalf("take %d of %q = %+v, %v; want allowed by Redis", i, key, res, err)
		}
	}
	return n
}
