package faults

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/faultproxy"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
	"github.com/redis/go-redis/v9"
)

// startPair starts two Rating API processes on srv, each behind its own
// proxy, and waits until each has sent a heartbeat after both were there,
// so that each counts two instances.
func startPair(t *testing.T, srv *redistest.Server, capacity int) ([2]*api, [2]*faultproxy.Proxy) {
	t.Helper()
	var apps [2]*api
	var proxies [2]*faultproxy.Proxy
	for i := range apps {
		proxies[i] = faultproxy.Start(t, srv.Addr())
		apps[i] = startAPI(t, apiEnv("redis://"+proxies[i].Addr(), capacity))
	}
	waitHeartbeats(t, srv.Client(t), 2)
	return apps, proxies
}

// waitHeartbeats waits until n instances have a heartbeat in Redis, and
// then until each has sent another one, which counted all n.
func waitHeartbeats(t *testing.T, client *redis.Client, n int64) {
	t.Helper()
	ctx := context.Background()
	key := bucket.DefaultPrefix + ":instances"
	var seen float64
	waittest.Until(t, "every instance's heartbeat", func() bool {
		beats, err := client.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil || int64(len(beats)) != n {
			return false
		}
		for _, b := range beats {
			seen = max(seen, b.Score)
		}
		return true
	})
	waittest.Until(t, "a heartbeat of each that counted all", func() bool {
		beats, err := client.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil || int64(len(beats)) != n {
			return false
		}
		for _, b := range beats {
			if b.Score <= seen {
				return false
			}
		}
		return true
	})
}

// TestTwoProcessesShareOneLimit sends many concurrent requests on one key
// to two Rating API processes on one Redis: together they admit exactly
// the capacity.
func TestTwoProcessesShareOneLimit(t *testing.T) {
	srv := redistest.Start(t)
	const capacity = 50
	apps, _ := startPair(t, srv, capacity)

	var created, other atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		app := apps[w%2]
		wg.Go(func() {
			for range 15 {
				switch app.rate("pair-key", "item") {
				case http.StatusCreated:
					created.Add(1)
				case http.StatusTooManyRequests:
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := other.Load(); n > 0 {
		t.Fatalf("%d requests got neither 201 nor 429", n)
	}
	if got := created.Load(); got != capacity {
		t.Fatalf("two processes admitted %d of 120, want exactly %d", got, capacity)
	}
}

// TestProcessPartition cuts one of two Rating API processes off from
// Redis. Both keep serving, the cut-off one from memory with half of the
// tokens it last saw; after the partition heals its spending is a debt in
// Redis that both honour.
func TestProcessPartition(t *testing.T) {
	srv := redistest.Start(t)
	const capacity = 100
	apps, proxies := startPair(t, srv, capacity)
	a, b := apps[0], apps[1]
	direct := srv.Client(t)

	// A last sees 90 tokens, B last sees 80, which Redis holds.
	for _, app := range []*api{a, b} {
		for range 10 {
			if code := app.rate("part-key", "item"); code != http.StatusCreated {
				t.Fatalf("got %d before the partition, want 201", code)
			}
		}
	}

	proxies[0].SetMode(faultproxy.Cut)
	fromA := a.rateUntilRefused("part-key", 2*capacity)
	fromB := b.rateUntilRefused("part-key", 2*capacity)
	if !a.fallbackActive() || b.fallbackActive() {
		t.Fatal("want the fallback on for the cut-off process only")
	}
	if fromB != 80 {
		t.Fatalf("the connected process admitted %d, want the 80 Redis held", fromB)
	}
	if fromA != 45 {
		t.Fatalf("the cut-off process admitted %d, want 90/2 = 45", fromA)
	}
	on := a.LogLines("rate_limit_fallback")
	if len(on) == 0 || on[0]["instances"] != float64(2) {
		t.Fatalf("fallback log lines %v, want one that counted 2 instances", on)
	}

	proxies[0].SetMode(faultproxy.Forward)
	waittest.Until(t, "the cut-off process to return to Redis", func() bool {
		return !a.fallbackActive()
	})
	// The refill of 0.01 a minute adds far less than 0.01 meanwhile.
	if got := redisTokensAt(t, direct, keyName("part-key"), capacity); got < -45 || got > -44.99 {
		t.Fatalf("Redis holds %v tokens after the partition, want -45", got)
	}
	for _, app := range apps {
		if code := app.rate("part-key", "item"); code != http.StatusTooManyRequests {
			t.Fatalf("after healing got %d, want 429", code)
		}
	}
}
