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
// the maximum wait, or before the request's context ends. No bucket is left
// charged for the request: the tokens taken from other quotas are given
// back, and an EventWasted reports a refund that the store failed.
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

// detachTimeout bounds the store calls made for a request outside its own
// context, which may have ended: refunds, debits and drains.
const detachTimeout = 2 * time.Second

// detach returns a context for such calls: it keeps the values of ctx but
// not its end, and has a short deadline of its own.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
}

// acquire takes the cost of every quota for one send of req, waiting for
// the tokens until the maximum wait or the context's deadline, whichever
// comes first. When it fails, it leaves no token taken.
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
		// that a wait known to be too long fails without a store call, and
		// no bucket is taken only to be refunded.
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
// reports whether all were taken. When a bucket refuses, it gives back the
// tokens already taken, waits for the refusing bucket and reports false, so
// that the caller starts again: a request never holds tokens while it
// waits. It gives them back too when the store fails or the context ends.
func (t *Transport) takeAll(req *http.Request, key string, costs []int64,
	deadline time.Time, slept *bool) (bool, error) {
	ctx := req.Context()
	for i, q := range t.quotas {
		n := costs[i]
		if n == 0 {
			continue
		}
		if ctx.Err() != nil {
			t.release(req, key, costs[:i])
			return false, fmt.Errorf("outbound: quota %q: %w", q.Name, context.Cause(ctx))
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
		t.release(req, key, costs[:i])
		return false, sleep(ctx, q.Name, res.RetryAfter, deadline, slept)
	}

	// A request whose context ended would not be sent.
	if ctx.Err() != nil {
		t.release(req, key, costs)
		return false, fmt.Errorf("outbound: %w", context.Cause(ctx))
	}
	return true, nil
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
// that will not go.
func (t *Transport) release(req *http.Request, key string, costs []int64) {
	ctx, cancel := detach(req.Context())
	defer cancel()

	for i, n := range costs {
		if n > 0 {
			t.refund(ctx, req, t.quotas[i], key, n)
		}
	}
}

// refund gives n tokens back to the bucket of q for key. Tokens that the
// store fails to give back stay spent, and an EventWasted reports them.
func (t *Transport) refund(ctx context.Context, req *http.Request, q Quota, key string,
	n int64) {
	bkey := q.bucketKey(key)
	if _, err := t.store.Refund(ctx, bkey, q.Limit, n); err != nil {
		t.emit(Event{Kind: EventWasted, Request: req, Quota: q.Name, Tokens: n, Err: err})
		return
	}
	t.marks.refunded(bkey)
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
