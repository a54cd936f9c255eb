package faults

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw on a new connection to addr and reads one
// response. It returns the status, or 0 when the server closed the
// connection without one.
func rawExchange(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(patience))

	// The server may answer and close before it has read all of raw.
	go func() { _, _ = io.WriteString(conn, raw) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within %v", patience)
		}
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestProcessHostileRequests sends requests no well-behaved client sends
// to the real binary. Each gets its 4xx or a closed connection, never a
// 5xx, and the process is still healthy and has logged no panic after.
func TestProcessHostileRequests(t *testing.T) {
	app := startAPI(t, map[string]string{"API_KEYS": "hostile-key"})

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
	cases := []struct {
		name string
		raw  string
		want int // 0 accepts any 4xx
	}{
		{"valid", post(`{"item_id":"x","score":5}`, jsonType), 201},
		{"body over 64 KiB", post(big, jsonType), 413},
		{"headers over the limit", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " +
			strings.Repeat("p", 64<<10) + "\r\n\r\n", 431},
		{"unknown key", get("/v1/items/x/rating", "other-key"), 401},
		{"key over 256 bytes", get("/v1/items/x/rating", strings.Repeat("k", 257)), 401},
		{"invalid UTF-8 in key", get("/v1/items/x/rating", "k\xff\xfe"), 401},
		{"NUL in key", get("/v1/items/x/rating", "hostile\x00key"), 400},
		{"invalid UTF-8 in item", get("/v1/items/%FF%FE/rating", "hostile-key"), 400},
		{"NUL in item", get("/v1/items/a%00b/rating", "hostile-key"), 400},
		{"NUL in body item", post(`{"item_id":"a\u0000b","score":1}`, jsonType), 400},
		{"float score", post(`{"item_id":"x","score":2.5}`, jsonType), 400},
		{"string score", post(`{"item_id":"x","score":"5"}`, jsonType), 400},
		{"score out of range", post(`{"item_id":"x","score":-3}`, jsonType), 400},
		{"unknown field", post(`{"item_id":"x","score":1,"role":"admin"}`, jsonType), 400},
		{"wrong content type", post(`{"item_id":"x","score":1}`, "text/plain"), 415},
		{"nested arrays", post(strings.Repeat("[", 50000), jsonType), 400},
		{"dot segments", get("/v1/items/../../../etc/passwd/rating", "hostile-key"), 0},
		{"garbage request line", "\x00\x01\x02 / HTTP/1.1\r\n\r\n", 400},
		{"HTTP/0.9", "GET /healthz\r\n\r\n", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rawExchange(t, app.addr, c.raw)
			switch {
			case got == 0 && c.want != 201:
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

	if app.fallbackActive() {
		t.Fatal("the memory store reports a fallback")
	}
	if lines := app.LogLines("handler panicked"); len(lines) > 0 {
		t.Fatalf("the process logged panics: %v", lines)
	}
}

// TestProcessClosesSlowHeaders opens a connection to the binary, sends the
// start of a request byte by byte, and then stops. The server must close
// the connection by its own timeouts; the test waits for the close (or a
// 408 and the close) and never asserts how long it took.
func TestProcessClosesSlowHeaders(t *testing.T) {
	t.Parallel()
	app := startAPI(t, map[string]string{})

	conn, err := net.Dial("tcp", app.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, b := range []byte("POST /v1/ratings HTTP/1.1\r\nHost: x\r\nX-API-") {
		if _, err := conn.Write([]byte{b}); err != nil {
			t.Fatalf("the server closed while headers were still coming: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}

	// Read what the server sends until it closes; patience only ends a
	// test that would hang.
	_ = conn.SetReadDeadline(time.Now().Add(patience))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a stalled connection open for %v", patience)
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !isReset(err) {
		t.Fatalf("reading the stalled connection: %v", err)
	}
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408") &&
		!strings.HasPrefix(string(got), "HTTP/1.1 400") {
		t.Fatalf("the server answered a stalled request with %q", got)
	}
}

// isReset reports whether err is a connection reset by the peer, which is
// a close too.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
