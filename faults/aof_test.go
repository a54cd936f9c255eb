package faults

import (
	"context"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/redistest"
)

// TestRestartFromAppendOnlyFile drains a key, then kills Redis and the
// store, and starts both again: Redis from its append-only file, the store
// with an empty memory. The key must still be drained: no free burst.
func TestRestartFromAppendOnlyFile(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	limit := bucket.Limit{Capacity: 20, Rate: 0.001}

	first, _ := newFallback(t, newClient(t, srv.Addr()))
	if got := takeAll(t, first, "k", limit); got != limit.Capacity {
		t.Fatalf("took %d from a fresh bucket, want %d", got, limit.Capacity)
	}
	first.Close()

	srv.Kill()
	srv.Restart()

	second, _ := newFallback(t, newClient(t, srv.Addr()))
	res, err := second.Take(context.Background(), "k", limit, 1)
	if err != nil || res.Allowed || res.Backend != bucket.BackendRedis {
		t.Fatalf("Take after both restarts = %+v, %v; want a refusal from Redis", res, err)
	}
	if res.RetryAfter <= 0 {
		t.Fatalf("refusal with RetryAfter %v", res.RetryAfter)
	}
}
