package bucket

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/internal/redistest"
)

// benchKeys is how many keys the many-key benchmarks spread over.
const benchKeys = 10_000

var benchKeyNames = func() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%05d", i)
	}
	return keys
}()

// high is a limit that never refuses within a benchmark.
var high = Limit{Capacity: 1 << 40, Rate: 1 << 40}

// benchTake runs Take on store from parallel goroutines, on one key or
// spread over benchKeys, and fails on an error or an unexpected refusal.
func benchTake(b *testing.B, store Store, limit Limit, many, wantAllowed bool) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919
		for pb.Next() {
			key := "hot"
			if many {
				key = benchKeyNames[i%benchKeys]
				i++
			}
			res, err := store.Take(ctx, key, limit, 1)
			if err != nil {
				b.Error(err)
				return
			}
			if res.Allowed != wantAllowed {
				b.Errorf("allowed %v, want %v", res.Allowed, wantAllowed)
				return
			}
		}
	})
}

// drained returns a limit of a few tokens without refill, and spends the
// tokens of key under it.
func drained(b *testing.B, store Store, key string) Limit {
	b.Helper()
	limit := Limit{Capacity: 10, Rate: 0}
	for range limit.Capacity {
		if _, err := store.Take(context.Background(), key, limit, 1); err != nil {
			b.Fatal(err)
		}
	}
	return limit
}

func BenchmarkMemory(b *testing.B) {
	b.Run("hot key", func(b *testing.B) { benchTake(b, NewMemory(), high, false, true) })
	b.Run("10000 keys", func(b *testing.B) { benchTake(b, NewMemory(), high, true, true) })
	b.Run("refused", func(b *testing.B) {
		m := NewMemory()
		benchTake(b, m, drained(b, m, "hot"), false, false)
	})
}

// benchClient starts a redis-server and returns a client of it.
func benchClient(b *testing.B) *redis.Client {
	b.Helper()
	return redistest.Start(b).Client(b)
}

func BenchmarkRedis(b *testing.B) {
	for _, callers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("hot key, %d callers per core", callers), func(b *testing.B) {
			b.SetParallelism(callers)
			benchTake(b, NewRedis(benchClient(b)), high, false, true)
		})
	}
	b.Run("10000 keys, 64 callers per core", func(b *testing.B) {
		b.SetParallelism(64)
		benchTake(b, NewRedis(benchClient(b)), high, true, true)
	})
}

func BenchmarkFallback(b *testing.B) {
	b.Run("healthy, hot key", func(b *testing.B) {
		b.SetParallelism(8)
		f := NewFallback(benchClient(b))
		b.Cleanup(func() { f.Close() })
		benchTake(b, f, high, false, true)
	})
	b.Run("healthy, refused from memory", func(b *testing.B) {
		f := NewFallback(benchClient(b))
		b.Cleanup(func() { f.Close() })
		benchTake(b, f, drained(b, f, "hot"), false, false)
	})
	b.Run("redis dead", func(b *testing.B) {
		server := redistest.Start(b)
		client := server.Client(b, func(o *redis.Options) { o.MaxRetries = -1 })
		f := NewFallback(client, WithTimeout(50*time.Millisecond))
		b.Cleanup(func() { f.Close() })
		server.Kill()
		for !f.Active() {
			_, _ = f.Take(context.Background(), "warm", high, 1)
		}
		benchTake(b, f, high, true, true)
	})
}
