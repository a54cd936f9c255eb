package bucket

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// storeUnderTest is a store and the clock that moves its time.
type storeUnderTest struct {
	store Store
	clock advancer
}

// stores returns every store that must behave as a token bucket, each with
// a clock the test controls.
func stores(t *testing.T) map[string]func(t *testing.T) storeUnderTest {
	return map[string]func(t *testing.T) storeUnderTest{
		"memory": func(t *testing.T) storeUnderTest {
			clock := newFakeClock()
			return storeUnderTest{NewMemory(WithClock(clock)), clock}
		},
		"redis": func(t *testing.T) storeUnderTest {
			server, client := startMiniredis(t)
			return storeUnderTest{NewRedis(client), newMiniClock(server)}
		},
		"fallback": func(t *testing.T) storeUnderTest {
			server, client := startMiniredis(t)
			clock := newMiniClock(server)
			f := NewFallback(client, WithClock(clock), WithProbeInterval(time.Hour))
			t.Cleanup(func() { f.Close() })
			return storeUnderTest{f, clock}
		},
	}
}

func forEachStore(t *testing.T, test func(t *testing.T, s storeUnderTest)) {
	for name, build := range stores(t) {
		t.Run(name, func(t *testing.T) {
			test(t, build(t))
		})
	}
}

func mustTake(t *testing.T, s Store, key string, limit Limit, n int64) Result {
	t.Helper()
	res, err := s.Take(context.Background(), key, limit, n)
	if err != nil {
		t.Fatalf("Take(%q, %d): %v", key, n, err)
	}
	return res
}

func TestStoreStartsFullAndCountsDown(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		limit := PerMinute(5, 0.0001)
		for i := int64(1); i <= 5; i++ {
			res := mustTake(t, s.store, "k", limit, 1)
			if !res.Allowed || res.Remaining != 5-i {
				t.Fatalf("take %d: allowed %v remaining %d, want true %d", i, res.Allowed, res.Remaining, 5-i)
			}
		}
		res := mustTake(t, s.store, "k", limit, 1)
		if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 {
			t.Fatalf("take 6: %+v, want a refusal with a retry-after", res)
		}
		if other := mustTake(t, s.store, "other", limit, 1); !other.Allowed {
			t.Fatalf("another key was refused: %+v", other)
		}
	})
}

// TestStoreExactRateNeverRefused holds the stores to exact fractional
// refill: a client that spends one token each time one token has refilled
// must never be refused. A store that adds int(elapsed*rate) and then moves
// its timestamp to now loses the fraction every time and starves it.
func TestStoreExactRateNeverRefused(t *testing.T) {
	cases := []struct {
		name      string
		perMinute float64
	}{
		{"500 a minute", 500},
		{"7 a minute", 7},
		{"1000 a second", 60000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s storeUnderTest) {
				limit := PerMinute(3, c.perMinute)

				// The Redis clock counts microseconds: wait the period
				// rounded up to one, which is never faster than the rate.
				period := time.Duration(math.Ceil(60e6/c.perMinute)) * time.Microsecond

				for i := 0; i < 3; i++ {
					mustTake(t, s.store, "k", limit, 1)
				}
				for i := 0; i < 300; i++ {
					s.clock.Advance(period)
					if res := mustTake(t, s.store, "k", limit, 1); !res.Allowed {
						t.Fatalf("request %d at the refill rate refused: %+v", i, res)
					}
				}
			})
		})
	}
}

func TestStoreRetryAndReset(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		limit := Limit{Capacity: 10, Rate: 2} // a token every 500ms
		mustTake(t, s.store, "k", limit, 10)

		res := mustTake(t, s.store, "k", limit, 4)
		if res.Allowed {
			t.Fatalf("take 4 from an empty bucket allowed")
		}
		if res.RetryAfter != 2*time.Second || res.ResetAfter != 5*time.Second {
			t.Fatalf("retry %v reset %v, want 2s and 5s", res.RetryAfter, res.ResetAfter)
		}

		s.clock.Advance(1999 * time.Millisecond)
		if res := mustTake(t, s.store, "k", limit, 4); res.Allowed || res.Remaining != 3 {
			t.Fatalf("after 1.999s: %+v, want refused with 3 remaining", res)
		}
		s.clock.Advance(time.Millisecond)
		res = mustTake(t, s.store, "k", limit, 4)
		if !res.Allowed || res.Remaining != 0 || res.ResetAfter != 5*time.Second {
			t.Fatalf("after 2s: %+v, want allowed, 0 remaining, full in 5s", res)
		}
		if res.RetryAfter != 0 || res.Next != 2*time.Second {
			t.Fatalf("after 2s: retry %v next %v, want 0 and 2s", res.RetryAfter, res.Next)
		}
	})
}

func TestStoreWeightedCost(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		limit := PerMinute(10, 0.0001)
		if res := mustTake(t, s.store, "k", limit, 7); !res.Allowed || res.Remaining != 3 {
			t.Fatalf("take 7 of 10: %+v", res)
		}
		if res := mustTake(t, s.store, "k", limit, 4); res.Allowed || res.Remaining != 3 {
			t.Fatalf("take 4 of 3: %+v, want refused and nothing spent", res)
		}
		if res := mustTake(t, s.store, "k", limit, 3); !res.Allowed || res.Remaining != 0 {
			t.Fatalf("take 3 of 3: %+v", res)
		}
	})
}

func TestStoreRejectsBadArguments(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		ctx := context.Background()
		good := PerMinute(10, 10)
		cases := []struct {
			name  string
			limit Limit
			n     int64
			want  error
		}{
			{"cost over capacity", good, 11, ErrCostTooHigh},
			{"zero cost", good, 0, ErrInvalidCost},
			{"negative cost", good, -1, ErrInvalidCost},
			{"zero capacity", Limit{Capacity: 0, Rate: 1}, 1, ErrInvalidLimit},
			{"negative rate", Limit{Capacity: 5, Rate: -1}, 1, ErrInvalidLimit},
			{"rate not a number", Limit{Capacity: 5, Rate: math.NaN()}, 1, ErrInvalidLimit},
		}
		for _, c := range cases {
			if _, err := s.store.Take(ctx, "k", c.limit, c.n); !errors.Is(err, c.want) {
				t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			}
		}
		if _, err := s.store.Debit(ctx, "k", good, 0); !errors.Is(err, ErrInvalidCost) {
			t.Errorf("debit 0: error %v, want %v", err, ErrInvalidCost)
		}
		if _, err := s.store.Drain(ctx, "k", good, -time.Second); err == nil {
			t.Errorf("drain for a negative duration: no error")
		}
	})
}

func TestStoreDebitGoesIntoDebt(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		ctx := context.Background()
		limit := Limit{Capacity: 10, Rate: 1}

		res, err := s.store.Debit(ctx, "k", limit, 15)
		if err != nil || !res.Allowed || res.Remaining != 0 {
			t.Fatalf("debit 15 of 10: %+v %v", res, err)
		}
		// Five tokens of debt take five seconds to pay off.
		s.clock.Advance(5 * time.Second)
		if res := mustTake(t, s.store, "k", limit, 1); res.Allowed || res.RetryAfter != time.Second {
			t.Fatalf("after paying off the debt: %+v, want refused for 1s", res)
		}

		// A debit never puts a bucket more than one capacity into debt.
		if _, err := s.store.Debit(ctx, "k", limit, 1000); err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(20 * time.Second)
		if res := mustTake(t, s.store, "k", limit, 10); !res.Allowed {
			t.Fatalf("20s after the largest debt: %+v, want full", res)
		}
	})
}

func TestStoreDrainHoldsUntilTheEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		ctx := context.Background()
		limit := Limit{Capacity: 10, Rate: 10}

		if _, err := s.store.Drain(ctx, "k", limit, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		res := mustTake(t, s.store, "k", limit, 1)
		if res.Allowed || res.RetryAfter != 3*time.Second+100*time.Millisecond {
			t.Fatalf("after drain: %+v, want refused for 3.1s", res)
		}
		s.clock.Advance(3 * time.Second)
		if res := mustTake(t, s.store, "k", limit, 1); res.Allowed {
			t.Fatalf("3s after a 3s drain: allowed, want one more token's wait")
		}
		s.clock.Advance(100 * time.Millisecond)
		if res := mustTake(t, s.store, "k", limit, 1); !res.Allowed {
			t.Fatalf("3.1s after a 3s drain: %+v, want allowed", res)
		}

		// A shorter drain leaves an emptier bucket as it is.
		mustTake(t, s.store, "k2", limit, 10)
		s.store.Drain(ctx, "k2", limit, 0)
		if res := mustTake(t, s.store, "k2", limit, 1); res.RetryAfter != 100*time.Millisecond {
			t.Fatalf("drain 0 on an empty bucket: retry %v, want 100ms", res.RetryAfter)
		}
	})
}

func TestStoreNeverRefillsAtRateZero(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		limit := Limit{Capacity: 2, Rate: 0}
		mustTake(t, s.store, "k", limit, 2)
		s.clock.Advance(24 * time.Hour)
		res := mustTake(t, s.store, "k", limit, 1)
		if res.Allowed || res.RetryAfter != Forever || res.ResetAfter != Forever {
			t.Fatalf("a day later: %+v, want refused forever", res)
		}
	})
}

func TestStoreLowerCapacityCutsTheBucket(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		mustTake(t, s.store, "k", PerMinute(100, 1), 1) // 99 left
		res := mustTake(t, s.store, "k", PerMinute(10, 1), 1)
		if !res.Allowed || res.Remaining != 9 {
			t.Fatalf("after lowering the capacity to 10: %+v, want 9 remaining", res)
		}
	})
}

// TestStoreKeepsFractions polls 2.4 times per refilled token. A store that
// truncates each refill to whole tokens and moves its timestamp loses the
// fraction at every poll or every payout; an exact store pays one token per
// period.
func TestStoreKeepsFractions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		limit := PerMinute(2, 500) // a token every 120ms
		mustTake(t, s.store, "k", limit, 2)

		allowed := 0
		for i := 0; i < 720; i++ {
			s.clock.Advance(50 * time.Millisecond)
			if mustTake(t, s.store, "k", limit, 1).Allowed {
				allowed++
			}
		}
		if allowed != 300 {
			t.Fatalf("36s at a token every 120ms paid out %d tokens, want 300", allowed)
		}
	})
}

func TestStoreRefundGivesTokensBack(t *testing.T) {
	forEachStore(t, func(t *testing.T, s storeUnderTest) {
		ctx := context.Background()
		limit := PerMinute(10, 0.0001)
		mustTake(t, s.store, "k", limit, 6)

		res, err := s.store.Refund(ctx, "k", limit, 4)
		if err != nil || res.Remaining != 8 {
			t.Fatalf("refund 4 after taking 6 of 10: %+v %v, want 8 remaining", res, err)
		}
		res, err = s.store.Refund(ctx, "k", limit, 5)
		if err != nil || res.Remaining != 10 {
			t.Fatalf("refund past the capacity: %+v %v, want 10 remaining", res, err)
		}
		if res := mustTake(t, s.store, "k", limit, 10); !res.Allowed {
			t.Fatalf("take 10 after refunds: %+v", res)
		}
		if _, err := s.store.Refund(ctx, "k", limit, 0); !errors.Is(err, ErrInvalidCost) {
			t.Fatalf("refund 0: %v, want %v", err, ErrInvalidCost)
		}
	})
}
