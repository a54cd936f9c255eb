package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

const (
	secret = "s3cret-Pa55word"
	rawKey = "sk-live-RAWKEY-0123456789"
)

// TestTLSWithPassword connects over rediss:// with the right password and
// a client that trusts only the test CA: decisions come from Redis, and
// neither the API key nor the password appears in any Redis key name.
func TestTLSWithPassword(t *testing.T) {
	ca := redistest.NewCA(t)
	srv := redistest.Start(t, redistest.WithTLS(ca), redistest.WithArgs("--requirepass", secret))
	opts, err := redis.ParseURL(fmt.Sprintf("rediss://:%s@%s/0", secret, srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig.RootCAs = ca.Pool
	opts.MaxRetries = -1
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	// The TLS handshake of a cold connection counts against the deadline
	// of a decision, and under the race detector it can take longer than
	// that: warm the pool first, as a service does at start.
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
	f, ev := newFallback(t, client)
	limit := bucket.Limit{Capacity: 3, Rate: 0.001}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("events: %+v", ev.of(bucket.EventRedisError))
		}
	})

	if got := takeAllFrom(t, f, rawKey, limit, bucket.BackendRedis); got != limit.Capacity {
		t.Fatalf("admitted %d over TLS, want %d", got, limit.Capacity)
	}
	if f.Active() || len(ev.of(bucket.EventRedisError)) > 0 {
		t.Fatalf("Redis errors over TLS with the right password: %v", ev.of(bucket.EventRedisError))
	}
	assertNoSecretInKeys(t, client)
}

// TestWrongPassword gives the store a wrong password: every request is
// still served, from memory, and the fallback event says why without
// repeating the password.
func TestWrongPassword(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--requirepass", secret))
	client := newClient(t, srv.Addr(), func(o *redis.Options) { o.Password = "wrong-" + secret })
	f, ev := newFallback(t, client)
	limit := bucket.Limit{Capacity: 3, Rate: 0.001}

	if got := takeAllFrom(t, f, rawKey, limit, bucket.BackendMemory); got != limit.Capacity {
		t.Fatalf("admitted %d from memory, want %d", got, limit.Capacity)
	}
	on := ev.of(bucket.EventFallbackOn)
	if len(on) != 1 || on[0].Err == nil {
		t.Fatalf("fallback_on events %+v, want one with the Redis error", on)
	}
	msg := on[0].Err.Error()
	if !strings.Contains(msg, "WRONGPASS") && !strings.Contains(msg, "invalid password") {
		t.Errorf("fallback reason %q does not say the password is wrong", msg)
	}
	if strings.Contains(msg, secret) || strings.Contains(msg, rawKey) {
		t.Errorf("fallback reason %q repeats a secret", msg)
	}
	assertNoSecretInKeys(t, srv.Client(t, func(o *redis.Options) { o.Password = secret }))
}

// assertNoSecretInKeys scans every key on the server and fails when one
// holds the raw API key or the password.
func assertNoSecretInKeys(t *testing.T, client redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	iter := client.Scan(ctx, 0, "*", 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		name := iter.Val()
		n++
		if strings.Contains(name, rawKey) || strings.Contains(name, secret) {
			t.Errorf("Redis key %q holds a secret", name)
		}
		if !strings.HasPrefix(name, bucket.DefaultPrefix+":") {
			t.Errorf("Redis key %q is outside the prefix", name)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	t.Logf("scanned %d keys", n)
}
