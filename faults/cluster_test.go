package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
	"github.com/redis/go-redis/v9"
)

// TestClusterLosesAMaster runs the store on a three-master Redis Cluster.
// Decisions on keys held by every master are exact; after one master is
// killed every request is still served, from memory, and keys drained
// before stay drained. When the master returns, the store goes back to the
// cluster.
func TestClusterLosesAMaster(t *testing.T) {
	// The masters keep an append-only file, so that the killed one comes
	// back with its buckets.
	cluster := redistest.StartCluster(t, 3,
		redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	client := cluster.Client(t, func(o *redis.ClusterOptions) {
		o.DialTimeout = 200 * time.Millisecond
		o.MaxRedirects = 3
		o.MaxRetries = -1
	})
	f, ev := newFallback(t, client)
	limit := bucket.Limit{Capacity: 5, Rate: 0.001}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()

	// Two keys on each master.
	keys := make(map[*redistest.Server][]string)
	for i := 0; i < 1000 && !everyMasterHas(keys, cluster, 2); i++ {
		key := fmt.Sprintf("client-%d", i)
		owner, err := cluster.MasterOf(ctx, f.Redis().KeyName(key))
		if err != nil {
			t.Fatal(err)
		}
		if len(keys[owner]) < 2 {
			keys[owner] = append(keys[owner], key)
		}
	}
	if !everyMasterHas(keys, cluster, 2) {
		t.Fatalf("found no keys on every master: %v", keys)
	}

	// Exact on every master: the first key of each is drained, and its
	// bucket on its master says so.
	for owner, ks := range keys {
		if got := takeAllFrom(t, f, ks[0], limit, bucket.BackendRedis); got != limit.Capacity {
			t.Fatalf("key on %s admitted %d, want %d", owner.Addr(), got, limit.Capacity)
		}
		tokens := redisTokens(t, owner.Client(t), f, ks[0], limit.Capacity)
		if tokens < 0 || tokens >= 1 {
			t.Fatalf("drained bucket on its master %s holds %v tokens", owner.Addr(), tokens)
		}
		takeN(t, f, ks[1], limit, 2)
	}

	victim := cluster.Masters[1]
	victim.Kill()
	waittest.Until(t, "the fallback to turn on", f.Active)

	for owner, ks := range keys {
		res, err := f.Take(ctx, ks[0], limit, 1)
		if err != nil || res.Allowed || res.Backend != bucket.BackendMemory {
			t.Fatalf("drained key of %s after the kill: %+v, %v; want refused from memory",
				owner.Addr(), res, err)
		}
		// The other key had 3 tokens left: the only instance keeps them.
		if got := takeAllFrom(t, f, ks[1], limit, bucket.BackendMemory); got != 3 {
			t.Fatalf("key of %s admitted %d from memory, want 3", owner.Addr(), got)
		}
	}

	victim.Restart()
	if err := cluster.WaitState(ctx, "ok", cluster.Masters...); err != nil {
		t.Fatal(err)
	}
	waittest.Until(t, "the store to return to the cluster", func() bool { return !f.Active() })
	for owner, ks := range keys {
		for _, key := range ks {
			res, err := f.Take(ctx, key, limit, 1)
			if err != nil || res.Allowed || res.Backend != bucket.BackendRedis {
				t.Fatalf("key of %s after recovery: %+v, %v; want a refusal from Redis",
					owner.Addr(), res, err)
			}
		}
	}
	if n := len(ev.of(bucket.EventFallbackOff)); n != 1 {
		t.Fatalf("got %d fallback_off events, want 1", n)
	}
}

func everyMasterHas(keys map[*redistest.Server][]string, c *redistest.Cluster, n int) bool {
	for _, m := range c.Masters {
		if len(keys[m]) < n {
			return false
		}
	}
	return true
}
