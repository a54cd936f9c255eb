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
