package waittest_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/internal/waittest"
)

func TestUntilReturnsOnceTheStateHolds(t *testing.T) {
	var polls atomic.Int64
	var ready atomic.Bool
	time.AfterFunc(20*time.Millisecond, func() { ready.Store(true) })

	waittest.Until(t, "the flag", func() bool {
		polls.Add(1)
		return ready.Load()
	})
	if !ready.Load() {
		t.Fatal("Until returned before the state held")
	}
	if polls.Load() < 2 {
		t.Fatalf("polled %d times, want a poll before and after the change", polls.Load())
	}
}

func TestUntilPollsOnceWhenTheStateHoldsAlready(t *testing.T) {
	polls := 0
	waittest.Until(t, "nothing", func() bool {
		polls++
		return true
	})
	if polls != 1 {
		t.Fatalf("polled %d times, want 1", polls)
	}
}

func TestClosed(t *testing.T) {
	c := make(chan struct{})
	if waittest.Closed(c) {
		t.Fatal("an open channel reported closed")
	}
	close(c)
	if !waittest.Closed(c) {
		t.Fatal("a closed channel reported open")
	}
}
