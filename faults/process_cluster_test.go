package faults

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// TestProcessOnCluster runs the Rating API on a three-master Redis
// Cluster. Keys held by every master are limited exactly; after a master
// is killed every request is still served, and keys drained before stay
// drained.
func TestProcessOnCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	const capacity = 3
	app := startAPI(t, map[string]string{
		"REDIS_CLUSTER_ADDRS":            strings.Join(cluster.Addrs(), ","),
		"RATE_LIMIT_BUCKET_CAPACITY":     strconv.Itoa(capacity),
		"RATE_LIMIT_REFILL_RATE_PER_MIN": "0.01",
		"REDIS_RETRY_INTERVAL_MS":        "50",
		"REDIS_TIMEOUT_MS":               "500",
	})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()

	// One API key whose bucket each master holds.
	keys := make(map[*redistest.Server]string)
	for i := 0; i < 1000 && len(keys) < len(cluster.Masters); i++ {
		key := fmt.Sprintf("cluster-key-%d", i)
		owner, err := cluster.MasterOf(ctx, keyName(key))
		if err != nil {
			t.Fatal(err)
		}
		if keys[owner] == "" {
			keys[owner] = key
		}
	}
	if len(keys) != len(cluster.Masters) {
		t.Fatalf("found keys on %d masters, want %d", len(keys), len(cluster.Masters))
	}
	for owner, key := range keys {
		if got := app.rateUntilRefused(key, 10); got != capacity {
			t.Fatalf("key on %s admitted %d, want %d", owner.Addr(), got, capacity)
		}
		tokens := redisTokensAt(t, owner.Client(t), keyName(key), capacity)
		if tokens < 0 || tokens >= 1 {
			t.Fatalf("drained bucket on its master %s holds %v tokens", owner.Addr(), tokens)
		}
	}

	cluster.Masters[2].Kill()
	waittest.Until(t, "/healthz to report the fallback", app.fallbackActive)
	for owner, key := range keys {
		if code := app.rate(key, "item"); code != http.StatusTooManyRequests {
			t.Fatalf("drained key of %s got %d after the kill, want 429", owner.Addr(), code)
		}
	}
	// A fresh key is served from memory.
	if code := app.rate("cluster-fresh-key", "item"); code != http.StatusCreated {
		t.Fatalf("a fresh key got %d with a master down, want 201", code)
	}
}
