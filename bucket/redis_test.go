package bucket

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// TestRedisTwoInstancesNeverSpendOneTokenTwice hammers one key from two
// stores on two separate connections pools, as two instances of a service
// would, and counts what they admit together.
func TestRedisTwoInstancesNeverSpendOneTokenTwice(t *testing.T) {
	server := redistest.Start(t)
	limit := Limit{Capacity: 500, Rate: 0}
	instances := []*Redis{NewRedis(server.Client(t)), NewRedis(server.Client(t))}

	var admitted atomic.Int64
	var wg sync.WaitGroup
	for _, store := range instances {
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 40; i++ {
					res, err := store.Take(context.Background(), "shared", limit, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	if got := admitted.Load(); got != 500 {
		t.Fatalf("1280 takes from two instances admitted %d, want exactly 500", got)
	}
}

func TestRedisKeepsHashedKeysThatExpireWhenFull(t *testing.T) {
	server := redistest.Start(t)
	client := server.Client(t)
	store := NewRedis(client, WithPrefix("test:bucket"))
	ctx := context.Background()
	limit := Limit{Capacity: 10, Rate: 2}
	const apiKey = "sk-live-secret-key"

	res, err := store.Take(ctx, apiKey, limit, 4)
	if err != nil || !res.Allowed {
		t.Fatalf("Take: %+v %v", res, err)
	}

	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	name := store.KeyName(apiKey)
	if len(keys) != 1 || keys[0] != name || !strings.HasPrefix(name, "test:bucket:") {
		t.Fatalf("Redis keys %v, want only %q", keys, name)
	}
	if len(strings.TrimPrefix(name, "test:bucket:")) != 32 || strings.Contains(name, apiKey) {
		t.Fatalf("key name %q is not a 32-digit hash of the API key", name)
	}

	fields, err := client.HGetAll(ctx, name).Result()
	if err != nil || fields["tokens"] != "6" || fields["ts"] == "" {
		t.Fatalf("bucket hash %v %v, want tokens 6 and a ts", fields, err)
	}
	// Four tokens at two a second: full again in two seconds.
	ttl, err := client.PTTL(ctx, name).Result()
	if err != nil || ttl <= time.Second || ttl > 2100*time.Millisecond {
		t.Fatalf("expiry %v %v, want the 2s until the bucket is full", ttl, err)
	}
}

func TestRedisReloadsTheScriptAfterAFlush(t *testing.T) {
	server := redistest.Start(t)
	client := server.Client(t)
	store := NewRedis(client)
	ctx := context.Background()
	limit := PerMinute(10, 1)

	mustTake(t, store, "k", limit, 1)
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if res := mustTake(t, store, "k", limit, 1); !res.Allowed || res.Remaining != 8 {
		t.Fatalf("after SCRIPT FLUSH: %+v, want allowed with 8 remaining", res)
	}
}

// TestFallbackKeepsLimitsThroughARedisKill kills a real Redis with SIGKILL,
// spends from memory, and starts it again from its append-only file.
func TestFallbackKeepsLimitsThroughARedisKill(t *testing.T) {
	server := redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	client := server.Client(t)
	events := &eventLog{}
	store := NewFallback(client, WithProbeInterval(20*time.Millisecond), WithEvents(events.record))
	t.Cleanup(func() { store.Close() })
	limit := PerMinute(20, 0.001)

	mustTake(t, store, "drained", limit, 20)
	mustTake(t, store, "spent", limit, 5) // 15 left

	server.Kill()
	for i := 0; i < 5; i++ {
		if res := mustTake(t, store, "drained", limit, 1); res.Allowed {
			t.Fatalf("a drained key was allowed after Redis was killed: %+v", res)
		}
	}
	for i := 0; i < 10; i++ {
		if res := mustTake(t, store, "spent", limit, 1); !res.Allowed || res.Backend != BackendMemory {
			t.Fatalf("take %d from memory: %+v", i, res)
		}
	}
	if !store.Active() || events.count(EventFallbackOn) != 1 {
		t.Fatalf("active %v, %d fallback_on events; want on, once", store.Active(),
			events.count(EventFallbackOn))
	}

	server.Restart()
	waittest.Until(t, "the store returns to Redis", func() bool { return !store.Active() })
	name := store.Redis().KeyName("spent")
	tokens, err := client.HGet(context.Background(), name, "tokens").Float64()
	if err != nil || tokens < 4.9 || tokens > 5.1 {
		t.Fatalf("Redis holds %v tokens (%v) for a key left with 15 and 10 spent in the outage, want 5",
			tokens, err)
	}
	if res := mustTake(t, store, "drained", limit, 1); res.Allowed {
		t.Fatalf("a drained key was allowed after Redis returned: %+v", res)
	}
}

func TestRedisReportsAWrongPassword(t *testing.T) {
	server := redistest.Start(t, redistest.WithArgs("--requirepass", "right"))
	client := server.Client(t, func(o *redis.Options) {
		o.Password = "wrong"
		o.MaxRetries = -1
	})
	_, err := NewRedis(client).Take(context.Background(), "k", PerMinute(5, 5), 1)
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("Take with a wrong password: %v, want the WRONGPASS reply", err)
	}
	if strings.Count(err.Error(), "bucket:") != 1 {
		t.Fatalf("error %q names the package more than once", err)
	}
}
