package ratingapi_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/hostiletest"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
	"github.com/openclaw/ratelimit/ratingapi"
)

// TestHostileRequestsOverTCP sends each hostile request to the real router
// behind a real listener, with the rate limiter on, and then checks that
// no goroutine outlives the server.
func TestHostileRequestsOverTCP(t *testing.T) {
	before := runtime.NumGoroutine()

	limit := bucket.Limit{Capacity: 1000, Rate: 0}
	srv := httptest.NewServer(ratingapi.New(ratingapi.Config{
		RateLimit: ratelimit.New(bucket.NewMemory(), limit),
	}))
	hostiletest.Run(t, srv.Listener.Addr().String(), hostiletest.Requests())
	srv.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	settleGoroutines(t, before)
}

// TestHostileRequestsLeakNoMemory sends the hostile requests round after
// round to one server and checks that the live heap does not grow with
// them: nothing a refused request brings may stay behind.
func TestHostileRequestsLeakNoMemory(t *testing.T) {
	limit := bucket.Limit{Capacity: 1000, Rate: 0}
	srv := httptest.NewServer(ratingapi.New(ratingapi.Config{
		RateLimit: ratelimit.New(bucket.NewMemory(), limit),
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	requests := hostiletest.Requests()

	// The first round fills what is allocated once: pools, buffers, keys.
	hostiletest.Run(t, addr, requests)
	before := liveHeap()
	const rounds = 10
	for range rounds {
		hostiletest.Run(t, addr, requests)
	}
	after := liveHeap()

	// One round sends over 64 KiB in its oversized body alone: keeping one
	// such body a round would break this bound.
	const bound = 512 << 10
	grown := int64(after) - int64(before)
	t.Logf("live heap grew by %d bytes over %d rounds", grown, rounds)
	if grown > bound {
		t.Fatalf("live heap grew by %d bytes over %d rounds of %d hostile requests, "+
			"want at most %d", grown, rounds, len(requests), bound)
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return stats.HeapAlloc
}

// settleGoroutines waits, within a bound, for the goroutines to fall back
// to n, and fails with their stacks when they do not.
func settleGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
