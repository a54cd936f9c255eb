package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// measures the handler and not the recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func benchmarkHandler(b *testing.B, h http.Handler) {
	// Enough keys that buckets never run dry, as on a busy service.
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-API-Key", "key-"+strconv.FormatInt(next.Add(1), 10))
		w := &discard{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

func BenchmarkBaseline(b *testing.B) {
	benchmarkHandler(b, &okHandler{})
}

func BenchmarkMiddlewareMemory(b *testing.B) {
	limit := bucket.Limit{Capacity: 1 << 40, Rate: 1 << 30}
	benchmarkHandler(b, ratelimit.New(bucket.NewMemory(), limit)(&okHandler{}))
}

func BenchmarkMiddlewareMemoryDenied(b *testing.B) {
	limit := bucket.Limit{Capacity: 1, Rate: 1e-9}
	benchmarkHandler(b, ratelimit.New(bucket.NewMemory(), limit)(&okHandler{}))
}
