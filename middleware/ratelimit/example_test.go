package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

func Example() {
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hello")
	})

	// Three requests a key, refilled at one a minute.
	limited := ratelimit.New(bucket.NewMemory(), bucket.PerMinute(3, 1))(hello)

	for range 4 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-API-Key", "demo-key")
		rec := httptest.NewRecorder()
		limited.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("X-RateLimit-Remaining"),
			rec.Header().Get("RateLimit-Policy"))
	}
	// Output:
	// 200 2 "default";q=3;w=180
	// 200 1 "default";q=3;w=180
	// 200 0 "default";q=3;w=180
	// 429 0 "default";q=3;w=180
}
