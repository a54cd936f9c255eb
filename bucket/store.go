package bucket

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrWaitTooLong is returned by Wait when the tokens cannot be there before
// the context's deadline, so waiting would only waste the caller's time.
var ErrWaitTooLong = errors.New("bucket: tokens not available before the deadline")

// Store decides, key by key, whether tokens can be taken. Every store in
// this package is safe for concurrent use.
type Store interface {
	// Take takes n tokens from the bucket of key when at least n are there,
	// and refuses otherwise. A refusal is a Result with Allowed false, not
	// an error; errors are for invalid arguments and failed backends.
	Take(ctx context.Context, key string, limit Limit, n int64) (Result, error)

	// Debit removes n tokens from the bucket of key whether or not they are
	// there, for spending that is known only after the fact. The bucket may
	// go into debt, by one capacity at most, which later refill pays off.
	Debit(ctx context.Context, key string, limit Limit, n int64) (Result, error)

	// Drain empties the bucket of key so that no token is there for d,
	// for example because a server upstream said to come back after d. A
	// bucket that is already emptier than that is left as it is.
	Drain(ctx context.Context, key string, limit Limit, d time.Duration) (Result, error)

	// Refund gives back n tokens that a Take took for work that then did
	// not happen, for example a request that a second limit refused. The
	// bucket never holds more than its capacity.
	Refund(ctx context.Context, key string, limit Limit, n int64) (Result, error)
}

// Wait takes n tokens from the bucket of key, waiting for them as long as
// ctx allows. It returns ErrWaitTooLong at once, with the refusal, when the
// tokens cannot be there before the deadline of ctx, and ctx.Err() when
// ctx ends while it waits.
func Wait(ctx context.Context, store Store, key string, limit Limit, n int64) (Result, error) {
	for {
		res, err := store.Take(ctx, key, limit, n)
		if err != nil || res.Allowed {
			return res, err
		}

		if res.RetryAfter == Forever {
			return res, fmt.Errorf("%w: the bucket never refills", ErrWaitTooLong)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < res.RetryAfter {
			return res, fmt.Errorf("%w: retry after %v", ErrWaitTooLong, res.RetryAfter)
		}

		// Others may take the tokens first, so the loop asks again.
		timer := time.NewTimer(res.RetryAfter)
		select {
		case <-ctx.Done():
			timer.Stop()
			return res, ctx.Err()
		case <-timer.C:
		}
	}
}

// request is one operation on a bucket.
type request struct {
	kind requestKind
	n    int64         // tokens, for take, debit and refund
	hold time.Duration // for drain
}

type requestKind int

const (
	take requestKind = iota
	debit
	drain
	refund
)

// debtFloor is how far into debt a debit may put a bucket, in capacities.
const debtFloor = 1

// apply runs req on a bucket holding tokens (already refilled) and returns
// whether it went through and the tokens after it.
func (l Limit) apply(req request, tokens float64) (bool, float64) {
	switch req.kind {
	case debit:
		floor := -float64(l.Capacity) * debtFloor
		return true, max(tokens-float64(req.n), floor)
	case drain:
		return true, min(tokens, -req.hold.Seconds()*l.Rate)
	case refund:
		return true, min(tokens+float64(req.n), float64(l.Capacity))
	default:
		if tokens+slack < float64(req.n) {
			return false, tokens
		}
		return true, tokens - float64(req.n)
	}
}

// check validates the limit and the arguments of req.
func (l Limit) check(req request) error {
	switch req.kind {
	case take:
		return l.checkCost(req.n)
	case debit, refund:
		if err := l.Validate(); err != nil {
			return err
		}
		if req.n < 1 {
			return fmt.Errorf("%w: got %d", ErrInvalidCost, req.n)
		}
	case drain:
		if err := l.Validate(); err != nil {
			return err
		}
		if req.hold < 0 {
			return fmt.Errorf("bucket: drain for a negative duration %v", req.hold)
		}
	}
	return nil
}

// resultOf builds the Result of req on a bucket left holding tokens.
func (l Limit) resultOf(req request, allowed bool, tokens float64, backend Backend) Result {
	n := req.n
	if req.kind != take {
		n = 1
	}
	return l.result(allowed, tokens, n, backend)
}
