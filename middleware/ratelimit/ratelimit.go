package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// New returns middleware that limits requests with the buckets of store,
// each under limit unless WithLimitFunc says otherwise. It panics when
// store is nil or limit is invalid, since either is a mistake of set-up.
// The middleware is safe for concurrent use.
//
// A request goes through these steps: the key function names its bucket
// (401 on failure), the cost function prices it (400 on failure), the
// store takes the tokens, and the response gets the rate limit headers.
// A refused request then goes to the denied handler (429 by default);
// an allowed one goes on to next.
func New(store bucket.Store, limit bucket.Limit, opts ...Option) func(http.Handler) http.Handler {
	if store == nil {
		panic("ratelimit: nil store")
	}
	if err := limit.Validate(); err != nil {
		panic(fmt.Sprintf("ratelimit: %v", err))
	}

	c := config{
		limit:  limit,
		key:    HeaderKey(DefaultKeyHeader),
		denied: Denied,
		clock:  systemClock{},
	}
	for _, opt := range opts {
		opt(&c)
	}
	return func(next http.Handler) http.Handler {
		return &limiter{config: c, store: store, next: next}
	}
}

type limiter struct {
	config
	store bucket.Store
	next  http.Handler
}

func (l *limiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, err := l.key(r)
	if err == nil && key == "" {
		err = ErrMissingKey
	}
	if err != nil {
		l.report(Observation{Outcome: OutcomeUnauthorized})
		if errors.Is(err, ErrMissingKey) {
			writeError(w, http.StatusUnauthorized, "missing API key")
		} else {
			writeError(w, http.StatusUnauthorized, "invalid API key")
		}
		return
	}

	limit := l.limit
	if l.limitOf != nil {
		limit = l.limitOf(r, key)
	}
	cost := int64(1)
	if l.cost != nil {
		if cost, err = l.cost(r); err != nil || cost < 1 {
			l.report(Observation{Outcome: OutcomeInvalidCost})
			writeError(w, http.StatusBadRequest, "invalid request cost")
			return
		}
	}

	start := l.clock.Now()
	res, waited, err := l.decide(r.Context(), key, limit, cost)
	end := l.clock.Now()
	obs := Observation{
		Backend: res.Backend,
		Latency: end.Sub(start),
		Waited:  waited,
		Cost:    cost,
		Err:     err,
	}
	if err != nil {
		l.failed(w, r, obs)
		return
	}

	next := setHeaders(w.Header(), res, end)
	switch {
	case res.Allowed:
		obs.Outcome = OutcomeAllowed
	case l.shadow:
		obs.Outcome = OutcomeShadowDenied
	default:
		obs.Outcome = OutcomeDenied
		l.report(obs)
		if after := retryAfter(res, next); after != "" {
			w.Header().Set(HeaderRetryAfter, after)
		}
		l.denied(w, r, res)
		return
	}
	l.report(obs)
	l.next.ServeHTTP(w, r)
}

// decide takes the tokens, waiting for them in wait mode. It reports
// whether the request waited.
func (l *limiter) decide(
	ctx context.Context, key string, limit bucket.Limit, cost int64,
) (bucket.Result, bool, error) {
	res, err := l.store.Take(ctx, key, limit, cost)
	if err != nil || res.Allowed || l.maxWait <= 0 || l.shadow ||
		res.RetryAfter > l.maxWait {
		return res, false, err
	}

	ctx, cancel := context.WithTimeout(ctx, l.maxWait)
	defer cancel()
	res, err = bucket.Wait(ctx, l.store, key, limit, cost)
	if errors.Is(err, bucket.ErrWaitTooLong) || errors.Is(err, context.DeadlineExceeded) {
		// Time ran out: the last answer is a refusal like any other.
		res.Allowed = false
		return res, true, nil
	}
	return res, true, err
}

// failed answers a request whose decision failed.
func (l *limiter) failed(w http.ResponseWriter, r *http.Request, obs Observation) {
	if r.Context().Err() != nil {
		// The client went away: nobody is left to answer.
		obs.Outcome = OutcomeCanceled
		l.report(obs)
		return
	}
	if errors.Is(obs.Err, bucket.ErrCostTooHigh) {
		obs.Outcome = OutcomeInvalidCost
		l.report(obs)
		if l.shadow {
			l.next.ServeHTTP(w, r)
			return
		}
		writeError(w, http.StatusBadRequest, "request cost exceeds the rate limit capacity")
		return
	}

	obs.Outcome = OutcomeError
	l.report(obs)
	if l.shadow || l.policy == FailOpen {
		l.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set(HeaderRetryAfter, "1")
	writeError(w, http.StatusServiceUnavailable, "rate limiter unavailable")
}

func (l *limiter) report(obs Observation) {
	if l.observe != nil {
		l.observe(obs)
	}
}
