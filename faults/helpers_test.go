package faults

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/waittest"
	"github.com/redis/go-redis/v9"
)

// patience bounds every wait of these tests, as it bounds waittest.Until:
// generous, since the machine is shared, and never a claim about speed.
const patience = waittest.Patience

// probe is the probe interval of the stores under test, short so that a
// recovered Redis is noticed soon.
const probe = 50 * time.Millisecond

// events records the events of a Fallback.
type events struct {
	mu   sync.Mutex
	list []bucket.Event
}

func (e *events) record(ev bucket.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

// of returns the recorded events of kind k.
func (e *events) of(k bucket.EventKind) []bucket.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []bucket.Event
	for _, ev := range e.list {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// newFallback returns a Fallback on client with a short probe interval,
// recording its events, and closes it when the test ends.
func newFallback(t testing.TB, client redis.UniversalClient,
	opts ...bucket.Option) (*bucket.Fallback, *events) {
	t.Helper()
	ev := &events{}
	all := append([]bucket.Option{
		// A cold connection (dial, TLS, cluster slots, script load) must
		// fit in one deadline on a loaded machine under the race detector.
		bucket.WithTimeout(500 * time.Millisecond),
		bucket.WithProbeInterval(probe),
		bucket.WithEvents(ev.record),
	}, opts...)
	f := bucket.NewFallback(client, all...)
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			for _, e := range ev.of(bucket.EventFallbackOn) {
				t.Logf("fallback_on: %v", e.Err)
			}
		}
	})
	return f, ev
}

// newClient returns a client of addr that fails fast on a dead server
// instead of retrying, and closes it when the test ends.
func newClient(t testing.TB, addr string, configure ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{
		Addr:        addr,
		DialTimeout: 200 * time.Millisecond,
		MaxRetries:  -1,
	}
	for _, fn := range configure {
		fn(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// redisTokens reads the tokens field of the bucket of key on the server
// that client reaches. A missing bucket is a full one.
func redisTokens(t testing.TB, client redis.UniversalClient, f *bucket.Fallback,
	key string, full int64) float64 {
	t.Helper()
	return redisTokensAt(t, client, f.Redis().KeyName(key), full)
}

// takeAll takes one token at a time from key until the store refuses,
// and returns how many it took. It fails the test on any error.
func takeAll(t testing.TB, s bucket.Store, key string, limit bucket.Limit) int64 {
	t.Helper()
	ctx := context.Background()
	var taken int64
	for range limit.Capacity * 4 {
		res, err := s.Take(ctx, key, limit, 1)
		if err != nil {
			t.Fatalf("Take %q: %v", key, err)
		}
		if !res.Allowed {
			return taken
		}
		taken++
	}
	t.Fatalf("Take %q never refused after %d tokens", key, taken)
	return taken
}

// redisTokensAt reads the tokens field of the bucket at the Redis key
// name. A missing bucket is a full one.
func redisTokensAt(t testing.TB, client redis.UniversalClient, name string, full int64) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	text, err := client.HGet(ctx, name, "tokens").Result()
	if err == redis.Nil {
		return float64(full)
	}
	if err != nil {
		t.Fatalf("HGET %s tokens: %v", name, err)
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		t.Fatalf("tokens %q: %v", text, err)
	}
	return v
}
