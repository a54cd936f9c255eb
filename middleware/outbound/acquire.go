package outbound

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

// ErrWaitTooLong is matched, with errors.Is, by every *WaitError. It is
// bucket.ErrWaitTooLong, so a caller may match either.
var ErrWaitTooLong = bucket.ErrWaitTooLong

// WaitError is returned when the tokens of a quota cannot be there within
// the maximum wait, or before the request's context ends. Nothing is left
// charged for the request when the transport knew this before it took any
// token, or when the store is a Refunder.
type WaitError struct {
	// Quota names the quota whose tokens are missing.
	Quota string

	// RetryAfter is how long until the tokens could be there, as far as the
	// transport knows; bucket.Forever when the bucket never refills.
	RetryAfter time.Duration
}

// Error implements error.
func (e *WaitError) Error() string {
	if e.RetryAfter == bucket.Forever {
		return fmt.Sprintf("outbound: quota %q: the bucket never refills", e.Quota)
	}
	return fmt.Sprintf("outbound: quota %q: tokens not there for %v, longer than the wait allowed",
		e.Quota, e.RetryAfter)
}

// Unwrap returns ErrWaitTooLong.
func (e *WaitError) Unwrap() error {
	return ErrWaitTooLong
}

// acquire takes the cost of every quota for one send of req, waiting for
// the tokens until the maximum wait or the context's deadline, whichever
// comes first.
func (t *Transport) acquire(req *http.Request, key string, costs []int64) error {
	ctx := req.Context()
	start := time.Now()
	deadline := start.Add(t.maxWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	var slept bool
	defer func() {
		if slept {
			t.emit(Event{Kind: EventWaited, Request: req, Wait: time.Since(start)})
		}
	}()

	for {
		// Tokens known to be missing are waited for before any is taken, so
		// that a wait known to be too long fails with nothing charged.
		if err := t.waitMarks(ctx, key, costs, deadline, &slept); err != nil {
			return err
		}

		done, err := t.takeAll(req, key, costs, deadline, &slept)
		if err != nil || done {
			return err
		}
	}
}

// takeAll takes the cost of each quota, in the order of the quotas, and
// reports whether all were taken. When a bucket refuses, a Refunder gives
// back the tokens already taken, waits for the refusing bucket and reports
// false, so that the caller starts again. Any other store keeps the tokens
// taken and waits for the refusing bucket: since every request takes the
// buckets in the same order, no two requests each hold what the other
// waits for.
func (t *Transport) takeAll(req *http.Request, key string, costs []int64,
	deadline time.Time, slept *bool) (bool, error) {
	ctx := req.Context()
	for i, q := range t.quotas {
		n := costs[i]
		if n == 0 {
			continue
		}
		bkey := q.bucketKey(key)

		asked := time.Now()
		res, err := t.store.Take(ctx, bkey, q.Limit, n)
		if err != nil {
			t.release(req, key, costs[:i])
			return false, fmt.Errorf("outbound: quota %q: %w", q.Name, err)
		}
		if res.Allowed {
			continue
		}
		t.marks.refused(bkey, n, asked, res.RetryAfter)

		if t.refunder != nil {
			t.release(req, key, costs[:i])
			return false, sleep(ctx, q.Name, res.RetryAfter, deadline, slept)
		}
		if err := t.waitFor(ctx, q, bkey, n, res, deadline, slept); err != nil {
			t.release(req, key, costs[:i])
			return false, err
		}
	}
	return true, nil
}

// waitFor waits until the bucket of q that refused res pays n tokens.
func (t *Transport) waitFor(ctx context.Context, q Quota, bkey string, n int64,
	res bucket.Result, deadline time.Time, slept *bool) error {
	for !res.Allowed {
		if err := sleep(ctx, q.Name, res.RetryAfter, deadline, slept); err != nil {
			return err
		}

		// Others may have taken the tokens first, so the bucket is asked
		// again.
		asked := time.Now()
		var err error
		res, err = t.store.Take(ctx, bkey, q.Limit, n)
		if err != nil {
			return fmt.Errorf("outbound: quota %q: %w", q.Name, err)
		}
		if !res.Allowed {
			t.marks.refused(bkey, n, asked, res.RetryAfter)
		}
	}
	return nil
}

// waitMarks waits until no mark says that a bucket of key cannot pay.
func (t *Transport) waitMarks(ctx context.Context, key string, costs []int64,
	deadline time.Time, slept *bool) error {
	var (
		longest time.Duration
		quota   string
		now     = time.Now()
	)
	for i, q := range t.quotas {
		if costs[i] == 0 {
			continue
		}
		if d := t.marks.wait(q.bucketKey(key), costs[i], now); d > longest {
			longest, quota = d, q.Name
		}
	}
	return sleep(ctx, quota, longest, deadline, slept)
}

// release gives back the costs taken from the first quotas for a request
// that will not go, or, when the store cannot give tokens back, reports
// them as wasted.
//
// TODO: no store of package bucket implements Refunder yet, so with them
// such tokens stay spent; the marks keep this to requests refused by a
// bucket this process had not yet seen refuse, or whose context ended.
func (t *Transport) release(req *http.Request, key string, costs []int64) {
	ctx := context.WithoutCancel(req.Context())
	for i := len(costs) - 1; i >= 0; i-- {
		q, n := t.quotas[i], costs[i]
		if n == 0 {
			continue
		}
		if t.refunder != nil {
			_, err := t.refunder.Refund(ctx, q.bucketKey(key), q.Limit, n)
			if err == nil {
				continue
			}
			t.emit(Event{Kind: EventStoreError, Request: req, Quota: q.Name, Err: err})
		}
		t.emit(Event{Kind: EventWasted, Request: req, Quota: q.Name, Tokens: n})
	}
}

// sleep waits d for the tokens of quota, or fails with a *WaitError when
// they would come after deadline, or with the context's error when it
// ends first.
func sleep(ctx context.Context, quota string, d time.Duration, deadline time.Time,
	slept *bool) error {
	if d <= 0 {
		return nil
	}
	if d == bucket.Forever || d > time.Until(deadline) {
		return &WaitError{Quota: quota, RetryAfter: d}
	}

	*slept = true
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("outbound: wait for quota %q: %w", quota, context.Cause(ctx))
	case <-timer.C:
		return nil
	}
}
