package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// keyCount is how many keys the many-keys case spreads over.
const keyCount = 10_000

var manyKeys = func() []string {
	keys := make([]string, keyCount)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%05d", i)
	}
	return keys
}()

// benchCase is one workload every contender runs.
type benchCase struct {
	name    string
	spec    spec
	key     func(caller, i int) string
	prepare func(context.Context, Limiter) error
	refused bool // whether every decision should refuse
}

func cases() []benchCase {
	high := spec{capacity: 1_000_000_000, window: time.Second}
	return []benchCase{
		{
			name: "one hot key, allowed",
			spec: high,
			key:  func(int, int) string { return "hot" },
		},
		{
			name: "10,000 keys, allowed",
			spec: high,
			key:  func(c, i int) string { return manyKeys[(c*1237+i)%keyCount] },
		},
		{
			name:    "flood on one key over its limit",
			spec:    spec{capacity: 10, window: time.Hour},
			key:     func(int, int) string { return "flood" },
			prepare: drain("flood", 10),
			refused: true,
		},
	}
}

// drain spends the tokens of key until the limiter refuses.
func drain(key string, capacity int) func(context.Context, Limiter) error {
	return func(ctx context.Context, lim Limiter) error {
		for range capacity + 100 {
			ok, err := lim.Allow(ctx, key)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
		}
		return fmt.Errorf("key %s still allowed after %d calls", key, capacity+100)
	}
}

// exactCapacity is the capacity of the correctness check.
const exactCapacity = 100

// correctness makes 2N calls on a fresh key of capacity N at once from
// many goroutines, with negligible refill, and returns how many passed,
// how many failed, and the first error.
func correctness(ctx context.Context, lim Limiter, callers int) (int64, int64, error) {
	var (
		next, allowed, failed atomic.Int64
		failure               atomic.Value
		wg                    sync.WaitGroup
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			for next.Add(1) <= 2*exactCapacity {
				ok, err := lim.Allow(ctx, "exact")
				if err != nil {
					failure.CompareAndSwap(nil, err)
					failed.Add(1)
					continue
				}
				if ok {
					allowed.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	err, _ := failure.Load().(error)
	return allowed.Load(), failed.Load(), err
}
