package ratingapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
	"github.com/openclaw/ratelimit/ratingapi"
)

// hostileCase is one request written byte for byte on a TCP connection.
type hostileCase struct {
	name string
	raw  string
	want int // the status; 0 accepts any 4xx
}

// hostileRequests returns requests no well-behaved client sends, each with
// the 4xx it must get.
func hostileRequests() []hostileCase {
	post := func(body, contentType string) string {
		return "POST /v1/ratings HTTP/1.1\r\nHost: x\r\nX-API-Key: hostile-key\r\n" +
			"Content-Type: " + contentType + "\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	}
	get := func(path, key string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + "\r\n\r\n"
	}
	const jsonType = "application/json"
	big := `{"item_id":"x","score":1,"comment":"` + strings.Repeat("c", 70<<10) + `"}`
	chunked := "POST /v1/ratings HTTP/1.1\r\nHost: x\r\nX-API-Key: hostile-key\r\n" +
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)

	return []hostileCase{
		{"body over 64 KiB", post(big, jsonType), 413},
		{"chunked body over 64 KiB", chunked, 413},
		{"headers over 1 MiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " +
			strings.Repeat("p", 2<<20) + "\r\n\r\n", 431},
		{"key over 256 bytes", get("/v1/items/x/rating", strings.Repeat("k", 257)), 401},
		{"invalid UTF-8 in key", get("/v1/items/x/rating", "k\xff\xfe"), 401},
		{"NUL in key", get("/v1/items/x/rating", "k\x00ey"), 400},
		{"two keys", "GET /v1/items/x/rating HTTP/1.1\r\nHost: x\r\n" +
			"X-API-Key: a\r\nX-API-Key: b\r\n\r\n", 401},
		{"no key", get("/v1/items/x/rating", ""), 401},
		{"invalid UTF-8 in item", get("/v1/items/%FF%FE/rating", "hostile-key"), 400},
		{"NUL in item", get("/v1/items/a%00b/rating", "hostile-key"), 400},
		{"NUL in body item", post(`{"item_id":"a\u0000b","score":1}`, jsonType), 400},
		{"invalid UTF-8 in body item", post("{\"item_id\":\"\xff\",\"score\":1}", jsonType), 400},
		{"duplicate field", post(`{"item_id":"x","score":1,"score":5}`, jsonType), 400},
		{"duplicate item", post(`{"item_id":"a","item_id":"b","score":1}`, jsonType), 400},
		{"unpaired surrogate in body item", post(`{"item_id":"\ud800","score":1}`, jsonType), 400},
		{"float score", post(`{"item_id":"x","score":2.5}`, jsonType), 400},
		{"string score", post(`{"item_id":"x","score":"5"}`, jsonType), 400},
		{"score out of range", post(`{"item_id":"x","score":99}`, jsonType), 400},
		{"score past int64", post(`{"item_id":"x","score":99999999999999999999}`, jsonType), 400},
		{"unknown field", post(`{"item_id":"x","score":1,"role":"admin"}`, jsonType), 400},
		{"wrong content type", post(`{"item_id":"x","score":1}`, "text/plain"), 415},
		{"latin1 charset", post(`{"item_id":"x","score":1}`, jsonType+"; charset=latin1"), 415},
		{"nested arrays", post(strings.Repeat("[", 50000), jsonType), 400},
		{"dot segments", get("/v1/items/../../../etc/passwd/rating", "hostile-key"), 0},
		{"wrong method", "DELETE /v1/ratings HTTP/1.1\r\nHost: x\r\n" +
			"X-API-Key: hostile-key\r\n\r\n", 405},
		{"garbage request line", "\x00\x01\x02 / HTTP/1.1\r\n\r\n", 400},
		{"bad content length", "POST /v1/ratings HTTP/1.1\r\nHost: x\r\n" +
			"Content-Length: -1\r\n\r\n", 400},
	}
}

// exchange writes raw on a new connection to addr and reads one response.
// It returns the status, or 0 when the server closed the connection
// without one.
func exchange(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))

	// The server may answer and close before it has read all of raw.
	go func() { _, _ = io.WriteString(conn, raw) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestHostileRequestsOverTCP sends each hostile request to the real router
// behind a real listener, with the rate limiter on, and then checks that
// no goroutine outlives the server.
func TestHostileRequestsOverTCP(t *testing.T) {
	before := runtime.NumGoroutine()

	limit := bucket.Limit{Capacity: 1000, Rate: 0}
	srv := httptest.NewServer(ratingapi.New(ratingapi.Config{
		RateLimit: ratelimit.New(bucket.NewMemory(), limit),
	}))
	addr := srv.Listener.Addr().String()
	for _, c := range hostileRequests() {
		t.Run(c.name, func(t *testing.T) {
			got := exchange(t, addr, c.raw)
			switch {
			case got == 0:
				// A closed connection is an acceptable answer.
			case got >= 500:
				t.Fatalf("got %d", got)
			case c.want == 0 && (got < 400 || got > 499):
				t.Fatalf("got %d, want a 4xx", got)
			case c.want != 0 && got != c.want:
				t.Fatalf("got %d, want %d", got, c.want)
			}
		})
	}
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
