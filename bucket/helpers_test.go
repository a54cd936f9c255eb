package bucket

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/internal/fakeclock"
)

// newFakeClock returns a clock that moves only when told to.
func newFakeClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// miniClock moves a memory clock and the clock of a miniredis together, so
// that a test can move time for both sides of a Fallback.
type miniClock struct {
	*fakeclock.Clock
	server *miniredis.Miniredis
}

func newMiniClock(server *miniredis.Miniredis) *miniClock {
	c := &miniClock{Clock: newFakeClock(), server: server}
	server.SetTime(c.Now())
	return c
}

func (c *miniClock) Advance(d time.Duration) {
	c.Clock.Advance(d)
	c.server.SetTime(c.Now())
}

// advancer moves the time that a store under test sees.
type advancer interface {
	Advance(d time.Duration)
}

// startMiniredis starts a miniredis and a client of it, both closed when the
// test ends.
func startMiniredis(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	server := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{
		Addr:                  server.Addr(),
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { client.Close() })
	return server, client
}

// countScripts counts the script calls that client completes without error,
// alone or in pipelines.
func countScripts(client *redis.Client) *atomic.Int64 {
	var n atomic.Int64
	client.AddHook(scriptCounter{&n})
	return &n
}

type scriptCounter struct{ n *atomic.Int64 }

func (scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && strings.HasPrefix(cmd.Name(), "eval") {
			c.n.Add(1)
		}
		return err
	}
}

func (c scriptCounter) ProcessPipelineHook(
	next redis.ProcessPipelineHook,
) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if cmd.Err() == nil && strings.HasPrefix(cmd.Name(), "eval") {
				c.n.Add(1)
			}
		}
		return err
	}
}

// stateOf returns a copy of what table holds of key.
func stateOf(t *testing.T, table *table, key string) bucketState {
	t.Helper()
	e := table.acquire(key, nil, 0)
	if e == nil {
		t.Fatalf("the table holds nothing of %q", key)
	}
	defer e.mu.Unlock()
	return e.bucketState
}
