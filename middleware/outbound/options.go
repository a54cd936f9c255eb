package outbound

import (
	"net/http"
	"time"
)

// Defaults of the options.
const (
	// DefaultMaxWait is how long a request may wait for tokens by default:
	// a drained bucket of a per-minute quota refills within it.
	DefaultMaxWait = time.Minute

	// DefaultRetries is how many times a request refused with 429 is sent
	// again by default.
	DefaultRetries = 2
)

// DefaultResetHeaders are the response headers, besides Retry-After, that
// say how long a 429 holds: durations such as "1s", "6m0s" or "20ms".
var DefaultResetHeaders = []string{"X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens"}

// Option configures a Transport.
type Option func(*Transport)

// WithQuota adds a quota that every request must pass. Quotas are taken in
// the order they are added. At least one is required.
func WithQuota(q Quota) Option {
	return func(t *Transport) {
		t.quotas = append(t.quotas, q)
	}
}

// WithKey sets the function that names the buckets a request draws from.
// The default is the request's host (with its port, if any), so that all
// requests to one provider share its quotas. Keys are hashed before they
// reach Redis, so a key may hold a credential.
func WithKey(fn func(*http.Request) string) Option {
	return func(t *Transport) {
		if fn != nil {
			t.key = fn
		}
	}
}

// WithBase sets the transport that sends the requests; the default is
// http.DefaultTransport.
func WithBase(rt http.RoundTripper) Option {
	return func(t *Transport) {
		if rt != nil {
			t.base = rt
		}
	}
}

// WithMaxWait bounds how long a request waits for its tokens, each time it
// is sent; the default is DefaultMaxWait. A request whose tokens cannot be
// there in time fails at once with a *WaitError. Zero never waits. The
// request's context bounds the wait too. Negative values are ignored.
func WithMaxWait(d time.Duration) Option {
	return func(t *Transport) {
		if d >= 0 {
			t.maxWait = d
		}
	}
}

// WithRetries sets how many times a request refused with 429 is sent
// again; the default is DefaultRetries, and zero never retries. Only a
// request without a body, or whose body GetBody can replay, is retried.
// Negative values are ignored.
func WithRetries(n int) Option {
	return func(t *Transport) {
		if n >= 0 {
			t.retries = n
		}
	}
}

// WithResetHeaders replaces DefaultResetHeaders: the headers of a 429 that
// say how long it holds, besides Retry-After. A value may be a duration
// ("6m0s"), a number of seconds, or an RFC 3339 time.
func WithResetHeaders(names ...string) Option {
	return func(t *Transport) {
		t.resetHeaders = append([]string(nil), names...)
	}
}

// WithEvents sets a function that the Transport calls for every Event. It
// is called synchronously, from the goroutine of the request, and must not
// block.
func WithEvents(fn func(Event)) Option {
	return func(t *Transport) {
		t.onEvent = fn
	}
}
