package faults

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// TestRedisKilledMidTraffic kills Redis with SIGKILL while clients send
// requests, and starts it again from its append-only file. No request may
// fail, the fallback must take over and keep the limits Redis last
// reported, and once Redis is back the spending of the outage must be in
// it.
func TestRedisKilledMidTraffic(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	client := newClient(t, srv.Addr())
	f, ev := newFallback(t, client)
	ctx := context.Background()

	// Refill is below one token over the test: one every 1000 seconds.
	busy := bucket.Limit{Capacity: 300, Rate: 0.001}
	small := bucket.Limit{Capacity: 5, Rate: 0.001}
	if got := takeAll(t, f, "drained", small); got != small.Capacity {
		t.Fatalf("took %d from a fresh bucket, want %d", got, small.Capacity)
	}

	const workers = 8
	var (
		allowed, fromMemory, sent atomic.Int64
		drainedLeaks, failures    atomic.Int64
		stop                      atomic.Bool
		wg                        sync.WaitGroup
		firstErr                  atomic.Value
	)
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				res, err := f.Take(ctx, "busy", busy, 1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				sent.Add(1)
				if res.Allowed {
					allowed.Add(1)
				}
				if res.Backend == bucket.BackendMemory {
					fromMemory.Add(1)
				}
				if res, err := f.Take(ctx, "drained", small, 1); err == nil && res.Allowed {
					drainedLeaks.Add(1)
				}
			}
		})
	}

	// Kill Redis once a third of the busy bucket is spent through it, and
	// let the clients run into the limit from memory.
	waittest.Until(t, "a third of the bucket spent", func() bool { return allowed.Load() >= 100 })
	srv.Kill()
	waittest.Until(t, "the fallback to turn on", f.Active)
	waittest.Until(t, "the limit reached in memory", func() bool {
		return fromMemory.Load() > busy.Capacity
	})
	stop.Store(true)
	wg.Wait()

	if n := failures.Load(); n > 0 {
		t.Fatalf("%d requests failed during the outage; first: %v", n, firstErr.Load())
	}
	if n := drainedLeaks.Load(); n > 0 {
		t.Fatalf("a drained key admitted %d requests", n)
	}
	// A reply lost when Redis died leaves a token spent in Redis that no
	// client got, so up to one per worker may be missing, never extra.
	got := allowed.Load()
	if got > busy.Capacity || got < busy.Capacity-workers {
		t.Fatalf("admitted %d on a bucket of %d, want %d..%d",
			got, busy.Capacity, busy.Capacity-workers, busy.Capacity)
	}
	if on := ev.of(bucket.EventFallbackOn); len(on) != 1 {
		t.Fatalf("got %d fallback_on events, want 1", len(on))
	}

	// Redis returns with its data; the store goes back to it and the
	// outage's spending is debited there.
	srv.Restart()
	waittest.Until(t, "the store to return to Redis", func() bool { return !f.Active() })
	off := ev.of(bucket.EventFallbackOff)
	if len(off) != 1 || off[0].WrittenBack < 1 || off[0].Dropped != 0 {
		t.Fatalf("fallback_off events %+v, want one that wrote back and dropped nothing", off)
	}
	tokens := redisTokens(t, client, f, "busy", busy.Capacity)
	want := float64(busy.Capacity - got)
	if tokens > want+0.1 || tokens < want-workers {
		t.Fatalf("Redis holds %v tokens after the outage, want %v (down to %v)",
			tokens, want, want-workers)
	}
	if d := redisTokens(t, client, f, "drained", small.Capacity); d >= 1 {
		t.Fatalf("drained key holds %v tokens in Redis after the outage", d)
	}

	res, err := f.Take(ctx, "busy", busy, 1)
	if err != nil || res.Allowed || res.Backend != bucket.BackendRedis {
		t.Fatalf("after recovery Take = %+v, %v; want a refusal from Redis", res, err)
	}
}
