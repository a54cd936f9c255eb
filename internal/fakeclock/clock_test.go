package fakeclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/internal/fakeclock"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := fakeclock.New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want the start %v", got, start)
	}
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v on a second read, want %v still", got, start)
	}

	c.Advance(1500 * time.Millisecond)
	if got, want := c.Now(), start.Add(1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after Advance(1.5s): Now() = %v, want %v", got, want)
	}

	c.Advance(-time.Second)
	if got, want := c.Now(), start.Add(500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after Advance(-1s): Now() = %v, want %v", got, want)
	}
}

func TestZeroClockReadsZeroTime(t *testing.T) {
	var c fakeclock.Clock
	if got := c.Now(); !got.IsZero() {
		t.Fatalf("Now() = %v, want the zero time", got)
	}
	c.Advance(time.Minute)
	if got := c.Now(); got != (time.Time{}).Add(time.Minute) {
		t.Fatalf("after Advance(1m): Now() = %v, want a minute past the zero time", got)
	}
}

// TestClockIsSafeForConcurrentUse moves the clock from many goroutines
// while others read it; the race detector checks the access, and the
// final time checks that no step was lost.
func TestClockIsSafeForConcurrentUse(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := fakeclock.New(start)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				if c.Now().Before(start) {
					t.Error("Now() went before the start")
				}
			}
		})
	}
	wg.Wait()

	if got, want := c.Now(), start.Add(800*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now() = %v after 800 steps of 1ms, want %v", got, want)
	}
}
