package faults

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/fakeclock"
	"github.com/openclaw/ratelimit/internal/faultproxy"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// instance is one store on a shared Redis, behind its own proxy so that a
// test can cut it off alone.
type instance struct {
	store *bucket.Fallback
	proxy *faultproxy.Proxy
	clock *fakeclock.Clock
}

// startInstances starts n stores on srv, each behind its own proxy, and
// waits until every one counts n instances.
func startInstances(t *testing.T, srv *redistest.Server, n int, opts ...bucket.Option) []instance {
	t.Helper()
	list := make([]instance, n)
	for i := range list {
		p := faultproxy.Start(t, srv.Addr())
		c := fakeclock.New(time.Unix(1_700_000_000, 0))
		f, _ := newFallback(t, newClient(t, p.Addr()), append([]bucket.Option{
			bucket.WithClock(c),
		}, opts...)...)
		list[i] = instance{store: f, proxy: p, clock: c}
	}
	waittest.Until(t, fmt.Sprintf("every store to count %d instances", n), func() bool {
		for _, in := range list {
			if in.store.Instances() != n {
				return false
			}
		}
		return true
	})
	return list
}

// TestTwoInstancesShareOneLimit sends many concurrent requests on one key
// through two stores on one Redis: together they admit exactly the
// capacity.
func TestTwoInstancesShareOneLimit(t *testing.T) {
	srv := redistest.Start(t)
	in := startInstances(t, srv, 2)
	limit := bucket.Limit{Capacity: 200, Rate: 0.001} // < 1 token of refill in the test

	var allowed, failures atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		store := in[w%2].store
		wg.Go(func() {
			for range 40 {
				res, err := store.Take(context.Background(), "shared", limit, 1)
				switch {
				case err != nil || res.Backend != bucket.BackendRedis:
					failures.Add(1)
				case res.Allowed:
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d requests failed or were not decided by Redis", n)
	}
	if got := allowed.Load(); got != limit.Capacity {
		t.Fatalf("two instances admitted %d of 640 requests, want exactly %d", got, limit.Capacity)
	}
}

// TestPartitionedInstance cuts one of two instances off from Redis. Both
// keep serving, the cut-off one from memory at half of the limit, starting
// from half of the tokens it last saw in Redis; after the partition heals
// its spending is debited in Redis.
//
// The over-admission is what the cut-off instance admits beyond what Redis
// allowed: R/N, where R is the tokens it last saw and N the instances it
// counted, plus r*D/N over a partition of length D at rate r.
func TestPartitionedInstance(t *testing.T) {
	srv := redistest.Start(t)
	in := startInstances(t, srv, 2)
	a, b := in[0], in[1]
	limit := bucket.Limit{Capacity: 100, Rate: 0} // exact counts
	direct := srv.Client(t)

	// A last sees 80 tokens, B last sees 60, which Redis holds.
	takeN(t, a.store, "k", limit, 20)
	takeN(t, b.store, "k", limit, 20)

	a.proxy.SetMode(faultproxy.Cut)
	fromA := takeAllFrom(t, a.store, "k", limit, bucket.BackendMemory)
	fromB := takeAllFrom(t, b.store, "k", limit, bucket.BackendRedis)
	if !a.store.Active() || b.store.Active() {
		t.Fatalf("fallback active: cut-off %v, connected %v; want true, false",
			a.store.Active(), b.store.Active())
	}
	if fromB != 60 {
		t.Fatalf("the connected instance admitted %d, want the 60 Redis held", fromB)
	}
	if fromA != 40 {
		t.Fatalf("the cut-off instance admitted %d, want 80/2 = 40", fromA)
	}
	// The bound: at most one N-th of the capacity beyond the limit.
	if over := fromA + fromB - 60; over > limit.Capacity/2 {
		t.Fatalf("over-admission %d exceeds capacity/N = %d", over, limit.Capacity/2)
	}

	// Healed: A's 40 are a debt in Redis, which both instances now honour.
	a.proxy.SetMode(faultproxy.Forward)
	waittest.Until(t, "the cut-off instance to return to Redis", func() bool {
		return !a.store.Active()
	})
	if got := redisTokens(t, direct, a.store, "k", limit.Capacity); got != -40 {
		t.Fatalf("Redis holds %v tokens after the partition, want -40", got)
	}
	for _, s := range []*bucket.Fallback{a.store, b.store} {
		res, err := s.Take(context.Background(), "k", limit, 1)
		if err != nil || res.Allowed || res.Backend != bucket.BackendRedis {
			t.Fatalf("after healing Take = %+v, %v; want a refusal from Redis", res, err)
		}
	}
}

// TestOutageBound cuts three instances off together and holds the code to
// its bound: over an outage of length D, instances that counted N admit
// at most C + r*D between them, each starting from C/N on a key Redis had
// no state for, and refilling at r/N.
func TestOutageBound(t *testing.T) {
	srv := redistest.Start(t)
	const n = 3
	in := startInstances(t, srv, n)
	limit := bucket.Limit{Capacity: 60, Rate: 1}

	for _, x := range in {
		x.proxy.SetMode(faultproxy.Cut)
	}
	var total int64
	check := func(stage string, d time.Duration, want int64) {
		t.Helper()
		var stageTotal int64
		for i, x := range in {
			got := takeAllFrom(t, x.store, "k", limit, bucket.BackendMemory)
			if want >= 0 && got != want {
				t.Errorf("%s: instance %d admitted %d, want %d", stage, i, got, want)
			}
			stageTotal += got
		}
		total += stageTotal
		bound := float64(limit.Capacity) + limit.Rate*d.Seconds()
		if float64(total) > bound {
			t.Fatalf("%s: %d instances admitted %d over %v, above C + r*D = %v",
				stage, n, total, d, bound)
		}
	}

	// Start: C/N each.
	check("start", 0, limit.Capacity/n)

	// 30 s later: r*30/N each.
	for _, x := range in {
		x.clock.Advance(30 * time.Second)
	}
	check("after 30s", 30*time.Second, 30/n)

	// After a long outage each memory bucket is full again: the capacity
	// is not divided, so the burst at one moment may reach N*C, while the
	// total over the outage still stays under C + r*D.
	for _, x := range in {
		x.clock.Advance(1000 * time.Second)
	}
	check("after 1030s", 1030*time.Second, -1)
}

// takeAllFrom is takeAll that also fails the test when a decision comes
// from another backend than want.
func takeAllFrom(t *testing.T, s bucket.Store, key string, limit bucket.Limit,
	want bucket.Backend) int64 {
	t.Helper()
	var taken int64
	for range limit.Capacity * 4 {
		res, err := s.Take(context.Background(), key, limit, 1)
		if err != nil {
			t.Fatalf("Take %q: %v", key, err)
		}
		if res.Backend != want {
			t.Fatalf("Take %q answered by %s, want %s", key, res.Backend, want)
		}
		if !res.Allowed {
			return taken
		}
		taken++
	}
	t.Fatalf("Take %q never refused after %d tokens", key, taken)
	return 0
}
