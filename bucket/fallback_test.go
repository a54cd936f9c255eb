package bucket

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/internal/waittest"
)

// eventLog records the events of a store.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) record(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) count(kind EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (l *eventLog) last(kind EventKind) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.events) - 1; i >= 0; i-- {
		if l.events[i].Kind == kind {
			return l.events[i], true
		}
	}
	return Event{}, false
}

type fallbackFixture struct {
	server *miniredis.Miniredis
	clock  *miniClock
	store  *Fallback
	events *eventLog
}

func newFallbackFixture(t *testing.T, opts ...Option) *fallbackFixture {
	t.Helper()
	server, client := startMiniredis(t)
	fx := &fallbackFixture{server: server, clock: newMiniClock(server), events: &eventLog{}}
	opts = append([]Option{
		WithClock(fx.clock),
		WithProbeInterval(10 * time.Millisecond),
		WithEvents(fx.events.record),
	}, opts...)
	fx.store = NewFallback(client, opts...)
	t.Cleanup(func() { fx.store.Close() })
	return fx
}

// redisTokens reads the tokens field of the Redis bucket of key.
func (fx *fallbackFixture) redisTokens(t *testing.T, key string) float64 {
	t.Helper()
	text := fx.server.HGet(fx.store.Redis().KeyName(key), "tokens")
	tokens, err := strconv.ParseFloat(text, 64)
	if err != nil {
		t.Fatalf("tokens of %q in Redis: %q: %v", key, text, err)
	}
	return tokens
}

func TestFallbackAnswersFromMemoryWhenRedisDies(t *testing.T) {
	fx := newFallbackFixture(t)
	limit := PerMinute(10, 0.001)

	if res := mustTake(t, fx.store, "k", limit, 1); res.Backend != BackendRedis {
		t.Fatalf("healthy answer from %s, want redis", res.Backend)
	}

	fx.server.Close()
	res := mustTake(t, fx.store, "k", limit, 1)
	if !res.Allowed || res.Backend != BackendMemory || !fx.store.Active() {
		t.Fatalf("after Redis died: %+v active %v, want allowed from memory", res, fx.store.Active())
	}
	on, ok := fx.events.last(EventFallbackOn)
	if !ok || on.Err == nil || fx.events.count(EventRedisError) == 0 {
		t.Fatalf("no fallback_on event with the Redis error: %+v", fx.events.events)
	}
}

func TestFallbackKeepsADrainedKeyDrained(t *testing.T) {
	fx := newFallbackFixture(t)
	limit := PerMinute(5, 0.001)
	mustTake(t, fx.store, "k", limit, 5)

	fx.server.Close()
	for i := 0; i < 10; i++ {
		if res := mustTake(t, fx.store, "k", limit, 1); res.Allowed {
			t.Fatalf("take %d on a drained key allowed after Redis died: %+v", i, res)
		}
	}
}

func TestFallbackStartsFromTheLastRedisState(t *testing.T) {
	fx := newFallbackFixture(t)
	limit := Limit{Capacity: 10, Rate: 1}
	mustTake(t, fx.store, "k", limit, 7) // 3 left

	fx.clock.Advance(2 * time.Second) // 5 by now
	fx.server.Close()
	allowed := 0
	for i := 0; i < 10; i++ {
		if mustTake(t, fx.store, "k", limit, 1).Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("memory admitted %d from a key Redis left with 3 two seconds ago, want 5", allowed)
	}

	// Alone, the instance refills at the whole rate.
	if res := mustTake(t, fx.store, "k", limit, 1); res.Next != time.Second {
		t.Fatalf("next token in %v from memory, want 1s", res.Next)
	}
}

func TestFallbackSharesTheLimitAmongInstances(t *testing.T) {
	server, client := startMiniredis(t)
	stores := startInstances(t, client, 4)

	server.Close()
	limit := PerMinute(100, 0.001)
	if total := takeFromEach(t, stores, "fresh", limit, 100); total != 100 {
		t.Fatalf("four instances cut off together admitted %d on a fresh key, want 100", total)
	}
}

func TestFallbackWritesTheOutageBack(t *testing.T) {
	fx := newFallbackFixture(t)
	limit := PerMinute(100, 0.001)
	mustTake(t, fx.store, "k", limit, 10) // 90 left in Redis

	fx.server.Close()
	for i := 0; i < 30; i++ {
		mustTake(t, fx.store, "k", limit, 1)
	}
	// Another instance spends in Redis meanwhile; its spending must stay.
	fx.server.Restart()
	fx.server.HSet(fx.store.Redis().KeyName("k"), "tokens", "80")

	waittest.Until(t, "the store returns to Redis", func() bool { return !fx.store.Active() })
	if got := fx.redisTokens(t, "k"); got < 49.9 || got > 50.1 {
		t.Fatalf("Redis holds %v tokens after 30 were spent from memory, want 50", got)
	}
	off, ok := fx.events.last(EventFallbackOff)
	if !ok || off.WrittenBack != 1 || off.Dropped != 0 {
		t.Fatalf("fallback_off event %+v, want one key written back", off)
	}
	if res := mustTake(t, fx.store, "k", limit, 1); res.Backend != BackendRedis {
		t.Fatalf("after recovery the answer came from %s", res.Backend)
	}
}

func TestFallbackWritesAnOutageDrainBack(t *testing.T) {
	fx := newFallbackFixture(t)
	limit := PerMinute(100, 100)
	mustTake(t, fx.store, "k", limit, 10) // 90 left in Redis

	fx.server.Close()
	res, err := fx.store.Drain(context.Background(), "k", limit, time.Hour)
	if err != nil || res.Backend != BackendMemory {
		t.Fatalf("drain during the outage: %+v, %v; want an answer from memory", res, err)
	}
	fx.server.Restart()

	waittest.Until(t, "the store returns to Redis", func() bool { return !fx.store.Active() })
	// An hour at 100 a minute is 6,000 tokens to wait for.
	if got := fx.redisTokens(t, "k"); got > -5999 {
		t.Fatalf("Redis holds %v tokens after an hour's drain, want about -6000", got)
	}
	res = mustTake(t, fx.store, "k", limit, 1)
	if res.Allowed || res.Backend != BackendRedis || res.RetryAfter < 59*time.Minute {
		t.Fatalf("take after the drain was written back: %+v; want refused by Redis for an hour",
			res)
	}
}

func TestFallbackClosesOnlyAfterSeveralGoodProbes(t *testing.T) {
	server, client := startMiniredis(t)
	scripts := countScripts(client)
	var scriptsAtClose atomic.Int64
	f := NewFallback(client, WithProbeInterval(10*time.Millisecond), WithProbesToClose(5),
		WithEvents(func(e Event) {
			if e.Kind == EventFallbackOff {
				scriptsAtClose.Store(scripts.Load())
			}
		}))
	t.Cleanup(func() { f.Close() })

	// A refund in an outage that spent nothing gives back nothing, so
	// closing writes nothing back: every script that succeeds until the
	// breaker closes is a probe.
	server.Close()
	if _, err := f.Refund(context.Background(), "k", PerMinute(10, 1), 1); err != nil {
		t.Fatal(err)
	}
	server.Restart()
	before := scripts.Load()

	waittest.Until(t, "the store returns to Redis", func() bool { return !f.Active() })
	if probes := scriptsAtClose.Load() - before; probes < 5 {
		t.Fatalf("closed after %d good probes, want at least 5", probes)
	}
}

func TestFallbackRefusesFromMemoryOfARefusal(t *testing.T) {
	fx := newFallbackFixture(t, WithProbeInterval(time.Hour))
	limit := PerMinute(3, 1) // a token a minute
	mustTake(t, fx.store, "k", limit, 3)
	waittest.Until(t, "the first heartbeat is done", func() bool {
		return fx.server.Exists(fx.store.instancesKey())
	})

	before := fx.server.CommandCount()
	for i := 0; i < 1000; i++ {
		res := mustTake(t, fx.store, "k", limit, 1)
		if res.Allowed || !res.Cached || res.Backend != BackendRedis {
			t.Fatalf("flood request %d: %+v, want a cached refusal", i, res)
		}
	}
	if n := fx.server.CommandCount() - before; n != 0 {
		t.Fatalf("a flood of refused requests cost %d Redis commands, want 0", n)
	}

	// Once a token has refilled, Redis is asked again.
	fx.clock.Advance(time.Minute)
	if res := mustTake(t, fx.store, "k", limit, 1); !res.Allowed || res.Cached {
		t.Fatalf("a minute later: %+v, want allowed by Redis", res)
	}
}

func TestFallbackLeavesTheBreakerAloneWhenTheCallerGivesUp(t *testing.T) {
	fx := newFallbackFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fx.store.Take(ctx, "k", PerMinute(10, 10), 1); err == nil {
		t.Fatalf("Take with a cancelled context: no error")
	}
	if fx.store.Active() {
		t.Fatalf("a cancelled caller opened the breaker")
	}
}

func TestFallbackCloseStopsItsGoroutine(t *testing.T) {
	server, client := startMiniredis(t)
	f := NewFallback(client, WithProbeInterval(time.Millisecond))
	waittest.Until(t, "the heartbeat runs", func() bool { return f.Instances() == 1 })
	if waittest.Closed(f.stopped) {
		t.Fatalf("the watcher ended before Close")
	}
	f.Close()
	// The watcher closes stopped as it returns, and only then.
	if !waittest.Closed(f.stopped) {
		t.Fatalf("the watcher still runs after Close")
	}
	if n, _ := server.ZMembers(f.instancesKey()); len(n) != 0 {
		t.Fatalf("Close left the heartbeat %v in Redis", n)
	}
}

func TestFallbackRefundsOnlyWhatTheOutageSpent(t *testing.T) {
	fx := newFallbackFixture(t)
	ctx := context.Background()
	limit := PerMinute(10, 0.0001)
	mustTake(t, fx.store, "k", limit, 6) // spent in Redis: 4 left

	fx.server.Close()
	mustTake(t, fx.store, "k", limit, 3) // spent in memory: 1 left
	res, err := fx.store.Refund(ctx, "k", limit, 9)
	if err != nil || res.Remaining != 4 || res.Backend != BackendMemory {
		t.Fatalf("refund 9 with 3 spent in the outage: %+v %v, want 4 remaining", res, err)
	}

	// The refunded spending is not written back.
	fx.server.Restart()
	waittest.Until(t, "the store returns to Redis", func() bool { return !fx.store.Active() })
	if got := fx.redisTokens(t, "k"); got < 3.9 || got > 4.1 {
		t.Fatalf("Redis holds %v tokens, want the 4 left before the outage", got)
	}
}

func TestFallbackInstancesCannotSaveUpPastOneCapacity(t *testing.T) {
	server, client := startMiniredis(t)
	clock := newMiniClock(server)
	stores := startInstances(t, client, 2, WithClock(clock))

	server.Close()
	limit := PerMinute(100, 100)
	for _, f := range stores {
		mustTake(t, f, "k", limit, 1) // opens the breaker
	}
	clock.Advance(time.Hour)

	if burst := takeFromEach(t, stores, "k", limit, 100); burst != 100 {
		t.Fatalf("two instances an hour into an outage burst %d, want one capacity, 100", burst)
	}

	// A request costing more than one instance's share still passes once
	// the instance has refilled to its cost.
	res := mustTake(t, stores[0], "big", limit, 80)
	if res.Allowed || res.RetryAfter != 36*time.Second {
		t.Fatalf("a request of 80 with 50 held: %+v, want a wait of 36s", res)
	}
	clock.Advance(36 * time.Second)
	if res := mustTake(t, stores[0], "big", limit, 80); !res.Allowed {
		t.Fatalf("a request of 80 after 36s: %+v, want allowed", res)
	}
}

// TestRememberedAnswersKeepTheirOrder holds the rule that keeps the memory
// of a key an upper bound of its Redis bucket when answers come back out
// of order, several of them from one script call at one Redis instant.
func TestRememberedAnswersKeepTheirOrder(t *testing.T) {
	remembered := bucketState{tokens: 5, redisAt: 100}
	cases := []struct {
		name  string
		state redisState
		kind  requestKind
		want  bool
	}{
		{"an older answer", redisState{tokens: 3, micros: 99}, take, true},
		{"a newer answer", redisState{tokens: 9, micros: 101}, take, false},
		{"a fuller take at the same instant came first", redisState{tokens: 6}, take, true},
		{"an emptier take at the same instant came later", redisState{tokens: 4}, take, false},
		{"a fuller refund at the same instant came later", redisState{tokens: 7}, refund, false},
		{"an emptier refund at the same instant came first", redisState{tokens: 4}, refund, true},
	}
	for _, c := range cases {
		if c.state.micros == 0 {
			c.state.micros = remembered.redisAt
		}
		if got := remembered.supersedes(c.state, c.kind); got != c.want {
			t.Errorf("%s: supersedes %v, want %v", c.name, got, c.want)
		}
	}
}

// startInstances starts n Fallback stores on one client, as n instances of
// a service, and waits until each counts all n.
func startInstances(t *testing.T, client *redis.Client, n int, opts ...Option) []*Fallback {
	t.Helper()
	opts = append([]Option{WithProbeInterval(10 * time.Millisecond)}, opts...)
	stores := make([]*Fallback, n)
	for i := range stores {
		stores[i] = NewFallback(client, opts...)
		t.Cleanup(func() { stores[i].Close() })
	}
	waittest.Until(t, "every instance counts the others", func() bool {
		for _, f := range stores {
			if f.Instances() != n {
				return false
			}
		}
		return true
	})
	return stores
}

// takeFromEach asks each store for one token tries times and returns how
// many were allowed in all.
func takeFromEach(t *testing.T, stores []*Fallback, key string, limit Limit, tries int) int {
	t.Helper()
	allowed := 0
	for _, f := range stores {
		for range tries {
			if mustTake(t, f, key, limit, 1).Allowed {
				allowed++
			}
		}
	}
	return allowed
}

// TestFallbackRefusalFromMemoryWritesNothing holds a refusal made from
// memory during an outage to leaving the entry as it was, as in the memory
// store.
func TestFallbackRefusalFromMemoryWritesNothing(t *testing.T) {
	fx := newFallbackFixture(t)
	limit := Limit{Capacity: 3, Rate: 0.3}
	mustTake(t, fx.store, "k", limit, 3)

	// Past the remembered refusal, so that the take reaches the dead Redis.
	fx.clock.Advance(4 * time.Second)
	fx.server.Close()
	if res := mustTake(t, fx.store, "k", limit, 1); !res.Allowed || res.Backend != BackendMemory {
		t.Fatalf("first take of the outage, with 1.2 tokens: %+v, want allowed from memory", res)
	}
	if res := mustTake(t, fx.store, "k", limit, 1); res.Allowed || res.Backend != BackendMemory {
		t.Fatalf("second take of the outage, with 0.2 tokens: %+v, want refused from memory", res)
	}
	before := stateOf(t, fx.store.table, "k")

	fx.clock.Advance(time.Second)
	if res := mustTake(t, fx.store, "k", limit, 1); res.Allowed {
		t.Fatalf("a take from a bucket holding about 0.3 tokens passed: %+v", res)
	}
	after := stateOf(t, fx.store.table, "k")
	if after != before {
		t.Fatalf("a refusal from memory wrote the entry: %+v, was %+v", after, before)
	}
}

// TestFallbackLosesNoSpendingAtTheSwitchBack holds decisions made from
// memory while the store switches back to Redis to reaching Redis: each is
// either written back or made by Redis itself, whichever side of the switch
// it falls on.
func TestFallbackLosesNoSpendingAtTheSwitchBack(t *testing.T) {
	fx := newFallbackFixture(t)
	limit := Limit{Capacity: 1_000_000_000, Rate: 0}
	mustTake(t, fx.store, "k", limit, 1)

	fx.server.Close()
	mustTake(t, fx.store, "k", limit, 1) // trips the breaker
	if !fx.store.Active() {
		t.Fatal("the breaker did not open after Redis died")
	}
	fx.server.Restart()

	const callers = 8
	var taken atomic.Int64
	taken.Store(2)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			// Until the switch is over, and a little after, in both stores.
			for i := 0; i < 1_000_000; i++ {
				res, err := fx.store.Take(context.Background(), "k", limit, 1)
				if err != nil || !res.Allowed {
					t.Errorf("take %d: %+v, %v", i, res, err)
					return
				}
				taken.Add(1)
				if !fx.store.Active() && i > 100 {
					return
				}
			}
		})
	}
	wg.Wait()
	waittest.Until(t, "the write-back after the switch ends", func() bool {
		return fx.events.count(EventFallbackOff) == 1
	})

	want := float64(limit.Capacity - taken.Load())
	if got := fx.redisTokens(t, "k"); got != want {
		t.Fatalf("Redis holds %v tokens after %d takes, want %v", got, taken.Load(), want)
	}
}
