// Package hostiletest holds requests to the Rating API that no
// well-behaved client sends, written byte for byte, and sends them over
// TCP, so that the tests of the router and of the binary hold both to the
// same answers.
package hostiletest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Key is the API key that the requests carry where they need an accepted
// one. A server with a list of keys must hold it.
const Key = "hostile-key"

// JSON is the content type of a JSON body.
const JSON = "application/json"

// patience bounds one exchange; only a server that neither answers nor
// closes reaches it.
const patience = 20 * time.Second

// Case is one request written byte for byte on a TCP connection.
type Case struct {
	Name string
	Raw  string
	Want int // the status; 0 accepts any 4xx
}

// Post returns a POST /v1/ratings that carries Key, body and contentType.
func Post(body, contentType string) string {
	return "POST /v1/ratings HTTP/1.1\r\nHost: x\r\nX-API-Key: " + Key + "\r\n" +
		"Content-Type: " + contentType + "\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// Get returns a GET of path that carries key as X-API-Key.
func Get(path, key string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + "\r\n\r\n"
}

// Requests returns the hostile requests, each with the 4xx that the
// Rating API's router must answer whatever server runs it: a server with
// a header limit below 1 MiB and a list of keys that holds Key gives the
// same answers.
func Requests() []Case {
	big := `{"item_id":"x","score":1,"comment":"` + strings.Repeat("c", 70<<10) + `"}`
	chunked := "POST /v1/ratings HTTP/1.1\r\nHost: x\r\nX-API-Key: " + Key + "\r\n" +
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
	item := "/v1/items/x/rating"

	return []Case{
		{"body over 64 KiB", Post(big, JSON), 413},
		{"chunked body over 64 KiB", chunked, 413},
		{"headers over 1 MiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " +
			strings.Repeat("p", 2<<20) + "\r\n\r\n", 431},
		{"key over 256 bytes", Get(item, strings.Repeat("k", 257)), 401},
		{"invalid UTF-8 in key", Get(item, "k\xff\xfe"), 401},
		{"NUL in key", Get(item, "k\x00ey"), 400},
		{"two keys", "GET " + item + " HTTP/1.1\r\nHost: x\r\n" +
			"X-API-Key: a\r\nX-API-Key: b\r\n\r\n", 401},
		{"no key", Get(item, ""), 401},
		{"invalid UTF-8 in item", Get("/v1/items/%FF%FE/rating", Key), 400},
		{"NUL in item", Get("/v1/items/a%00b/rating", Key), 400},
		{"NUL in body item", Post(`{"item_id":"a\u0000b","score":1}`, JSON), 400},
		{"invalid UTF-8 in body item", Post("{\"item_id\":\"\xff\",\"score\":1}", JSON), 400},
		{"duplicate field", Post(`{"item_id":"x","score":1,"score":5}`, JSON), 400},
		{"duplicate item", Post(`{"item_id":"a","item_id":"b","score":1}`, JSON), 400},
		{"unpaired surrogate in body item", Post(`{"item_id":"\ud800","score":1}`, JSON), 400},
		{"float score", Post(`{"item_id":"x","score":2.5}`, JSON), 400},
		{"string score", Post(`{"item_id":"x","score":"5"}`, JSON), 400},
		{"score below range", Post(`{"item_id":"x","score":-3}`, JSON), 400},
		{"score above range", Post(`{"item_id":"x","score":99}`, JSON), 400},
		{"score past int64", Post(`{"item_id":"x","score":99999999999999999999}`, JSON), 400},
		{"unknown field", Post(`{"item_id":"x","score":1,"role":"admin"}`, JSON), 400},
		{"wrong content type", Post(`{"item_id":"x","score":1}`, "text/plain"), 415},
		{"latin1 charset", Post(`{"item_id":"x","score":1}`, JSON+"; charset=latin1"), 415},
		{"nested arrays", Post(strings.Repeat("[", 50000), JSON), 400},
		{"dot segments", Get("/v1/items/../../../etc/passwd/rating", Key), 0},
		{"wrong method", "DELETE /v1/ratings HTTP/1.1\r\nHost: x\r\n" +
			"X-API-Key: " + Key + "\r\n\r\n", 405},
		{"garbage request line", "\x00\x01\x02 / HTTP/1.1\r\n\r\n", 400},
		{"HTTP/0.9", "GET /healthz\r\n\r\n", 0},
		{"bad content length", "POST /v1/ratings HTTP/1.1\r\nHost: x\r\n" +
			"Content-Length: -1\r\n\r\n", 400},
	}
}

// Run sends each case to addr on a connection of its own, in a subtest
// named after the case. A subtest fails on a 5xx, and on any answer other
// than the one the case wants. A closed connection with no answer is an
// acceptable refusal, but not an answer to a case that wants a success.
func Run(t *testing.T, addr string, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			got := Exchange(t, addr, c.Raw)
			switch {
			case got == 0 && (c.Want == 0 || c.Want >= 400):
				// A closed connection is an acceptable refusal.
			case got >= 500:
				t.Fatalf("got %d", got)
			case c.Want == 0 && (got < 400 || got > 499):
				t.Fatalf("got %d, want a 4xx", got)
			case c.Want != 0 && got != c.Want:
				t.Fatalf("got %d, want %d", got, c.Want)
			}
		})
	}
}

// Exchange writes raw on a new connection to addr and reads one response.
// It returns the status, or 0 when the server closed the connection
// without one. A server that does neither fails the test.
func Exchange(t *testing.T, addr, raw string) int {
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
