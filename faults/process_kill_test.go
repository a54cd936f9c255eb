package faults

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openclaw/ratelimit/internal/faultproxy"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// TestProcessRedisKilled kills the Redis of a running Rating API with
// SIGKILL while clients post ratings. No request gets a 5xx or a broken
// connection, /healthz reports the fallback, the limit holds, and once
// Redis is back the outage's spending is in it.
func TestProcessRedisKilled(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	const capacity = 60
	app := startAPI(t, apiEnv("redis://"+srv.Addr(), capacity))
	direct := srv.Client(t)

	const workers = 6
	var (
		created, other, sent atomic.Int64
		stop                 atomic.Bool
		wg                   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				switch app.rate("killed-key", "item") {
				case http.StatusCreated:
					created.Add(1)
				case http.StatusTooManyRequests:
				default:
					other.Add(1)
				}
				sent.Add(1)
			}
		})
	}
	waittest.Until(t, "a third of the bucket spent", func() bool { return created.Load() >= 20 })
	srv.Kill()
	waittest.Until(t, "/healthz to report the fallback", app.fallbackActive)
	atKill := sent.Load()
	waittest.Until(t, "requests served during the outage", func() bool {
		return sent.Load() > atKill+2*capacity
	})
	stop.Store(true)
	wg.Wait()

	if n := other.Load(); n > 0 {
		t.Fatalf("%d requests got neither 201 nor 429 during the outage", n)
	}
	got := created.Load()
	if got > capacity || got < capacity-workers {
		t.Fatalf("admitted %d on a bucket of %d, want %d..%d",
			got, capacity, capacity-workers, capacity)
	}
	if len(app.LogLines("rate_limit_fallback")) == 0 {
		t.Fatalf("no rate_limit_fallback log line:\n%s", app.Output())
	}

	srv.Restart()
	waittest.Until(t, "/healthz to report Redis again", func() bool {
		return !app.fallbackActive()
	})
	tokens := redisTokensAt(t, direct, keyName("killed-key"), capacity)
	want := float64(capacity - got)
	if tokens > want+0.1 || tokens < want-workers {
		t.Fatalf("Redis holds %v tokens after the outage, want %v (down to %v)",
			tokens, want, want-workers)
	}
	if code := app.rate("killed-key", "item"); code != http.StatusTooManyRequests {
		t.Fatalf("after recovery got %d, want 429", code)
	}
}

// TestProcessRedisSilent puts a proxy that holds every byte between the
// Rating API and Redis. After the first request opens the breaker, no
// request sends a bucket call to Redis, so none waits for its deadline.
func TestProcessRedisSilent(t *testing.T) {
	srv := redistest.Start(t)
	proxy := faultproxy.Start(t, srv.Addr())
	const capacity = 30
	app := startAPI(t, apiEnv("redis://"+proxy.Addr(), capacity))
	calls := proxy.Watch(keyName("silent-key"))

	for range 5 {
		if code := app.rate("silent-key", "item"); code != http.StatusCreated {
			t.Fatalf("got %d before the fault, want 201", code)
		}
	}
	proxy.SetMode(faultproxy.Hold)
	if code := app.rate("silent-key", "item"); code != http.StatusCreated {
		t.Fatalf("the request that met the silent Redis got %d, want 201", code)
	}
	waittest.Until(t, "/healthz to report the fallback", app.fallbackActive)
	before := calls.Load()

	created := 0
	for range 2 * capacity {
		switch code := app.rate("silent-key", "item"); code {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("got %d during the outage, want 201 or 429", code)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("requests after the breaker opened sent %d bucket calls to Redis", n)
	}
	if want := capacity - 6; created != want {
		t.Fatalf("admitted %d from memory, want the %d Redis had left", created, want)
	}

	proxy.SetMode(faultproxy.Forward)
	waittest.Until(t, "/healthz to report Redis again", func() bool {
		return !app.fallbackActive()
	})
	if code := app.rate("silent-key", "item"); code != http.StatusTooManyRequests {
		t.Fatalf("after recovery got %d, want 429", code)
	}
}

// TestProcessRestartFromAppendOnlyFile drains a key through the Rating
// API, then kills Redis, restarts it from its append-only file, and
// restarts the Rating API: the key is still drained.
func TestProcessRestartFromAppendOnlyFile(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	const capacity = 5
	app := startAPI(t, apiEnv("redis://"+srv.Addr(), capacity))

	if got := app.rateUntilRefused("aof-key", 10*capacity); got != capacity {
		t.Fatalf("admitted %d, want %d", got, capacity)
	}
	srv.Kill()
	srv.Restart()
	app.restart()

	if app.fallbackActive() {
		t.Fatal("a restarted process on a running Redis reports the fallback")
	}
	if code := app.rate("aof-key", "item"); code != http.StatusTooManyRequests {
		t.Fatalf("a drained key got %d after both restarts, want 429", code)
	}
}
