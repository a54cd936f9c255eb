package bucket

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/internal/redistest"
)

// takeConcurrently makes calls Takes of one token on key from callers
// goroutines at once and returns how many were allowed.
func takeConcurrently(
	t *testing.T, store Store, key string, limit Limit, callers, calls int,
) int64 {
	t.Helper()
	var (
		allowed atomic.Int64
		failed  atomic.Value
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			for next.Add(1) <= int64(calls) {
				res, err := store.Take(context.Background(), key, limit, 1)
				if err != nil {
					failed.Store(err)
					return
				}
				if res.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		t.Fatalf("Take: %v", err)
	}
	return allowed.Load()
}

func TestCoalescerAdmitsExactlyCapacity(t *testing.T) {
	server := redistest.Start(t)
	store := NewRedis(server.Client(t))
	limit := Limit{Capacity: 100, Rate: 0}

	got := takeConcurrently(t, store, "hot", limit, 64, 300)
	if got != limit.Capacity {
		t.Fatalf("allowed %d of 300 concurrent takes, want exactly %d", got, limit.Capacity)
	}
}

func TestCoalescerOnCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	store := NewRedis(cluster.Client(t))
	limit := Limit{Capacity: 20, Rate: 0}

	// Keys spread over the nodes, so each pipeline is split by node.
	for i := range 8 {
		key := fmt.Sprintf("tenant-%d", i)
		if got := takeConcurrently(t, store, key, limit, 16, 50); got != limit.Capacity {
			t.Fatalf("key %s: allowed %d of 50, want %d", key, got, limit.Capacity)
		}
	}
}

// startWarm starts a Redis and a store on it whose first decision, on key
// k under limit, has been made, so that its connections and script are in
// place.
func startWarm(t *testing.T, limit Limit) (*redistest.Server, *redis.Client, *Redis) {
	t.Helper()
	server := redistest.Start(t)
	client := server.Client(t)
	store := NewRedis(client)
	if _, err := store.Take(context.Background(), "k", limit, 1); err != nil {
		t.Fatalf("first Take: %v", err)
	}
	return server, client, store
}

func TestCoalescerReloadsScriptAfterFlush(t *testing.T) {
	ctx := context.Background()
	limit := Limit{Capacity: 1000, Rate: 0}
	_, client, store := startWarm(t, limit)
	for round := range 3 {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatalf("SCRIPT FLUSH: %v", err)
		}
		// Concurrent callers share pipelines, in which every call gets
		// NOSCRIPT at once.
		if got := takeConcurrently(t, store, "k", limit, 16, 50); got != 50 {
			t.Fatalf("round %d: allowed %d of 50 after SCRIPT FLUSH, want 50", round, got)
		}
	}

	res, err := store.Take(ctx, "k", limit, 1)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if want := limit.Capacity - 152; res.Remaining != want {
		t.Fatalf("remaining %d, want %d: a call ran twice or not at all", res.Remaining, want)
	}
}

func TestCoalescerHonoursCallerContext(t *testing.T) {
	ctx := context.Background()
	limit := Limit{Capacity: 1000, Rate: 0}
	server, _, store := startWarm(t, limit)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := store.Take(cancelled, "k", limit, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take with a cancelled context: got %v, want context.Canceled", err)
	}

	// While Redis holds every command, callers fill the flights and queue
	// up behind them; each must leave when its own deadline passes.
	pause := 800 * time.Millisecond
	admin := server.Client(t)
	if err := admin.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*maxFlights+4)
	for i := range errs {
		wg.Go(func() {
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, errs[i] = store.Take(short, "k", limit, 1)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("caller %d: got %v, want context.DeadlineExceeded", i, err)
		}
	}

	// Once Redis answers again, the flights land and the store goes on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := store.Take(ctx, "k", limit, 1)
		if err == nil && res.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Take went through after the pause: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCoalescerReportsRedisErrors(t *testing.T) {
	server := redistest.Start(t)
	client := server.Client(t, func(o *redis.Options) { o.MaxRetries = -1 })
	store := NewRedis(client)
	server.Kill()

	limit := Limit{Capacity: 10, Rate: 1}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = store.Take(context.Background(), "k", limit, 1)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("caller %d: Take on a dead Redis returned no error", i)
		}
	}
}

func TestCoalescerSlotsMatchCluster(t *testing.T) {
	ctx := context.Background()
	cluster := redistest.StartCluster(t, 3)
	client := cluster.Client(t)
	store := NewRedis(client)

	keys := []string{"", "a", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{}x"}
	for i := range 20 {
		keys = append(keys, store.KeyName(fmt.Sprint("tenant-", i)))
	}
	for _, key := range keys {
		want, err := client.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", key, err)
		}
		if got := slotOf(key); int64(got) != want {
			t.Errorf("slotOf(%q) = %d, Redis says %d", key, got, want)
		}
	}
}

func TestCoalescerFailsOneDecisionAlone(t *testing.T) {
	ctx := context.Background()
	server := redistest.Start(t)
	client := server.Client(t)
	store := NewRedis(client)
	limit := Limit{Capacity: 10, Rate: 1}

	// A key that holds a string makes its own decision fail inside the
	// script call it shares with the others.
	if err := client.Set(ctx, store.KeyName("broken"), "x", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	keys := []string{"a", "broken", "b", "c", "broken", "d"}
	for round := range 20 {
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for i, key := range keys {
			wg.Go(func() {
				_, errs[i] = store.Take(ctx, key, limit, 1)
			})
		}
		wg.Wait()
		for i, key := range keys {
			if (errs[i] != nil) != (key == "broken") {
				t.Fatalf("round %d, key %s: error %v", round, key, errs[i])
			}
			if key == "broken" && !strings.Contains(errs[i].Error(), "WRONGTYPE") {
				t.Fatalf("round %d: error %q does not say WRONGTYPE", round, errs[i])
			}
		}
	}
}
