package bucket

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryStaysWithinItsKeyBound(t *testing.T) {
	clock := newFakeClock()
	const bound = 10_000
	m := NewMemory(WithClock(clock), WithMaxKeys(bound))
	limit := PerMinute(10, 60)

	for i := 0; i < 1_000_000; i++ {
		mustTake(t, m, "key-"+strconv.Itoa(i), limit, 1)
		if i%1000 == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	if n := m.Len(); n > bound || n == 0 {
		t.Fatalf("after a million keys the store holds %d, want 1..%d", n, bound)
	}
}

func TestMemoryDropsFullBucketsFirst(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(WithClock(clock), WithMaxKeys(shardCount*shardCount))
	slow := Limit{Capacity: 5, Rate: 0.0001}
	fast := Limit{Capacity: 5, Rate: 1000}

	// Drained keys hold information; keys that refill within a tick do not.
	for i := 0; i < shardCount; i++ {
		mustTake(t, m, "drained-"+strconv.Itoa(i), slow, 5)
	}
	for i := 0; i < 100_000; i++ {
		mustTake(t, m, "passing-"+strconv.Itoa(i), fast, 1)
		clock.Advance(10 * time.Millisecond)
	}

	for i := 0; i < shardCount; i++ {
		if res := mustTake(t, m, "drained-"+strconv.Itoa(i), slow, 1); res.Allowed {
			t.Fatalf("drained key %d was evicted and came back full", i)
		}
	}
}

func TestMemoryDecisionDoesNotAllocate(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	limit := PerMinute(1000, 1000)
	mustTake(t, m, "known", limit, 1)

	allocs := testing.AllocsPerRun(1000, func() {
		m.Take(ctx, "known", limit, 1)
	})
	if allocs != 0 {
		t.Fatalf("a decision on a known key allocates %v times, want 0", allocs)
	}
}

func TestMemoryConcurrentTakesAdmitExactlyTheCapacity(t *testing.T) {
	m := NewMemory()
	limit := Limit{Capacity: 1000, Rate: 0}

	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if res, _ := m.Take(context.Background(), "hot", limit, 1); res.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != 1000 {
		t.Fatalf("3200 concurrent takes admitted %d, want exactly 1000", got)
	}
}

func TestWaitTakesWhenTokensArrive(t *testing.T) {
	m := NewMemory()
	limit := Limit{Capacity: 1, Rate: 100} // a token every 10ms
	ctx := context.Background()
	mustTake(t, m, "k", limit, 1)

	res, err := Wait(ctx, m, "k", limit, 1)
	if err != nil || !res.Allowed {
		t.Fatalf("Wait: %+v %v, want the token", res, err)
	}
}

func TestWaitGivesUpBeforeAHopelessWait(t *testing.T) {
	m := NewMemory()
	limit := Limit{Capacity: 1, Rate: 0.001} // a token every 1000s
	mustTake(t, m, "k", limit, 1)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Wait(ctx, m, "k", limit, 1)
	if !errors.Is(err, ErrWaitTooLong) || res.Allowed {
		t.Fatalf("Wait: %+v %v, want ErrWaitTooLong at once", res, err)
	}

	never := Limit{Capacity: 1, Rate: 0}
	mustTake(t, m, "never", never, 1)
	if _, err := Wait(context.Background(), m, "never", never, 1); !errors.Is(err, ErrWaitTooLong) {
		t.Fatalf("Wait on a bucket that never refills: %v, want ErrWaitTooLong", err)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	m := NewMemory()
	limit := Limit{Capacity: 1, Rate: 0.001}
	mustTake(t, m, "k", limit, 1)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(10 * time.Millisecond)
		cancel()
	}()
	if _, err := Wait(ctx, m, "k", limit, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v, want context.Canceled", err)
	}
}

// TestMemoryRefusalWritesNothing holds a refusal to leaving the stored
// bucket as it was, as the Redis script does: the state already refills to
// the tokens the refusal saw, and a flood of refusals that only reads an
// entry keeps it from moving between cores.
func TestMemoryRefusalWritesNothing(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(WithClock(clock))
	limit := Limit{Capacity: 3, Rate: 0.3}
	mustTake(t, m, "k", limit, 3)

	before := stateOf(t, m.table, "k")

	clock.Advance(time.Second)
	if res := mustTake(t, m, "k", limit, 1); res.Allowed {
		t.Fatal("a take from a bucket holding 0.3 tokens passed")
	}

	after := stateOf(t, m.table, "k")
	if after != before {
		t.Fatalf("a refusal wrote the bucket: %+v, was %+v", after, before)
	}

	clock.Advance(3 * time.Second)
	if res := mustTake(t, m, "k", limit, 1); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("after 4 s at 0.3 a second: allowed %v, remaining %d; want true, 0",
			res.Allowed, res.Remaining)
	}
}
