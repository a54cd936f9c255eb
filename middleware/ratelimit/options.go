package ratelimit

import (
	"net/http"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

// Option configures the middleware returned by New.
type Option func(*config)

// LimitFunc returns the limit of the bucket of key, for example from the
// plan of the customer who owns the key.
type LimitFunc func(r *http.Request, key string) bucket.Limit

// CostFunc returns how many tokens a request costs. An error refuses the
// request with 400 and "invalid request cost"; the text of the error is
// never sent to the client.
type CostFunc func(r *http.Request) (int64, error)

// DeniedHandler writes the response to a request that the limit refused.
// The rate limit headers and Retry-After are already set when it runs.
type DeniedHandler func(w http.ResponseWriter, r *http.Request, res bucket.Result)

// ErrorPolicy says what the middleware does with a request when the store
// fails.
type ErrorPolicy int

const (
	// FailOpen lets the request through without rate limit headers. It is
	// the default: a failing limiter should not take the service down with
	// it, and the Fallback store of package bucket does not fail when
	// Redis does.
	FailOpen ErrorPolicy = iota

	// FailClosed refuses the request with 503 and a JSON error.
	FailClosed
)

type config struct {
	limit   bucket.Limit
	key     KeyFunc
	limitOf LimitFunc
	cost    CostFunc
	denied  DeniedHandler
	policy  ErrorPolicy
	shadow  bool
	maxWait time.Duration
	observe func(Observation)
	clock   bucket.Clock
}

// WithKeyFunc replaces the key function. The default is
// HeaderKey(DefaultKeyHeader). A nil fn is ignored.
func WithKeyFunc(fn KeyFunc) Option {
	return func(c *config) {
		if fn != nil {
			c.key = fn
		}
	}
}

// WithLimitFunc gives each key its own limit. Without it every key has the
// limit passed to New. A nil fn is ignored.
func WithLimitFunc(fn LimitFunc) Option {
	return func(c *config) {
		if fn != nil {
			c.limitOf = fn
		}
	}
}

// WithCostFunc gives each request its own cost in tokens. Without it every
// request costs one token. A request that costs more than the capacity of
// its bucket can never pass, and is refused with 400. A nil fn is ignored.
func WithCostFunc(fn CostFunc) Option {
	return func(c *config) {
		if fn != nil {
			c.cost = fn
		}
	}
}

// WithDeniedHandler replaces the response to a refused request. The
// default writes 429 and {"error": "rate limit exceeded",
// "retry_after_seconds": N}. A nil fn is ignored.
func WithDeniedHandler(fn DeniedHandler) Option {
	return func(c *config) {
		if fn != nil {
			c.denied = fn
		}
	}
}

// WithErrorPolicy says what to do when the store returns an error; the
// default is FailOpen. Clients never see the text of the error.
func WithErrorPolicy(p ErrorPolicy) Option {
	return func(c *config) {
		c.policy = p
	}
}

// WithShadow turns shadow mode on or off. In shadow mode the middleware
// takes tokens, sets the headers and reports each decision to the
// observer, but lets every request through, even when the store fails.
// Requests without a valid key are still refused, since they have no
// bucket to report on.
func WithShadow(on bool) Option {
	return func(c *config) {
		c.shadow = on
	}
}

// WithMaxWait makes a request that finds too few tokens wait up to d for
// them, instead of being refused at once. A request whose tokens cannot be
// there within d is refused without waiting. Zero, the default, never
// waits. The server's WriteTimeout must leave room for d.
func WithMaxWait(d time.Duration) Option {
	return func(c *config) {
		c.maxWait = max(d, 0)
	}
}

// WithObserver sets a function called once for every request, after the
// decision and before the response, for example to count decisions in
// metrics. It runs on the request's goroutine and must not block.
func WithObserver(fn func(Observation)) Option {
	return func(c *config) {
		c.observe = fn
	}
}

// WithClock replaces the clock that dates X-RateLimit-Reset and measures
// latency. Tests pass the clock of their store.
func WithClock(clock bucket.Clock) Option {
	return func(c *config) {
		if clock != nil {
			c.clock = clock
		}
	}
}
