package faults

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/internal/hostiletest"
)

// TestProcessHostileRequests sends requests no well-behaved client sends
// to the real binary: those the router's tests send, and some that only
// the binary's settings decide. Each gets its 4xx or a closed connection,
// never a 5xx, and the process is still healthy and has logged no panic
// after.
func TestProcessHostileRequests(t *testing.T) {
	app := startAPI(t, map[string]string{"API_KEYS": hostiletest.Key})

	valid := hostiletest.Post(`{"item_id":"x","score":5}`, hostiletest.JSON)
	padded := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 64<<10) +
		"\r\n\r\n"
	cases := append([]hostiletest.Case{
		{Name: "valid", Raw: valid, Want: 201},
		{Name: "headers over the binary's limit", Raw: padded, Want: 431},
		{Name: "unknown key", Raw: hostiletest.Get("/v1/items/x/rating", "other-key"), Want: 401},
	}, hostiletest.Requests()...)
	hostiletest.Run(t, app.addr, cases)

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
