package outbound

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

// Transport is an http.RoundTripper that takes tokens from a store before
// each request, so that every process sharing the store keeps to the
// provider's quotas together. The zero value is not usable; call New. It is
// safe for concurrent use.
type Transport struct {
	base         http.RoundTripper
	store        bucket.Store
	quotas       []Quota
	key          func(*http.Request) string
	maxWait      time.Duration
	retries      int
	resetHeaders []string
	onEvent      func(Event)
	marks        *marks
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport that draws tokens from store. It panics when no
// quota is given, when a quota's limit is invalid, or when two quotas have
// the same name: these are mistakes in the program, not in a request.
func New(store bucket.Store, opts ...Option) *Transport {
	if store == nil {
		panic("outbound: nil store")
	}
	t := &Transport{
		base:         http.DefaultTransport,
		store:        store,
		key:          hostKey,
		maxWait:      DefaultMaxWait,
		retries:      DefaultRetries,
		resetHeaders: DefaultResetHeaders,
		marks:        newMarks(),
	}
	for _, opt := range opts {
		opt(t)
	}

	if len(t.quotas) == 0 {
		panic("outbound: no quota; pass at least one WithQuota")
	}
	names := make(map[string]bool)
	for _, q := range t.quotas {
		if err := q.Limit.Validate(); err != nil {
			panic(fmt.Sprintf("outbound: quota %q: %v", q.Name, err))
		}
		if names[q.Name] {
			panic(fmt.Sprintf("outbound: two quotas named %q", q.Name))
		}
		names[q.Name] = true
	}
	return t
}

// hostKey is the default key: the host the request goes to.
func hostKey(req *http.Request) string {
	if req.URL != nil && req.URL.Host != "" {
		return req.URL.Host
	}
	return req.Host
}

// RoundTrip implements http.RoundTripper. It waits for the tokens of every
// quota, sends the request, debits what the response reports it spent, and
// on a 429 drains the key's buckets for as long as the provider says and
// sends the request again, up to the retry limit. It fails with a
// *WaitError when the tokens cannot be there in time, and with the
// context's error when the context ends while it waits; either way, no
// bucket is left charged. Tokens taken for an attempt handed to the base
// transport are spent, whatever the provider answered, unless the usage
// that the response reports is lower.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := t.key(req)
	costs, err := t.costs(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}

	out := req
	for attempt := 1; ; attempt++ {
		if err := t.acquire(req, key, costs); err != nil {
			closeBody(out)
			return nil, err
		}

		resp, err := t.base.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		t.settle(req, key, costs, resp)
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp, nil
		}

		hold := t.throttle(req, key, resp, attempt)
		if attempt > t.retries || !t.canWait(req.Context(), hold) {
			return resp, nil
		}
		next, err := replay(req)
		if err != nil {
			return resp, nil
		}
		discard(resp)
		out = next
		t.emit(Event{Kind: EventRetry, Request: req, Attempt: attempt + 1})
	}
}

// costs returns the up-front cost of req under each quota.
func (t *Transport) costs(req *http.Request) ([]int64, error) {
	costs := make([]int64, len(t.quotas))
	for i, q := range t.quotas {
		n := q.cost(req)
		if n < 0 {
			return nil, fmt.Errorf("outbound: quota %q: negative cost %d", q.Name, n)
		}
		costs[i] = n
	}
	return costs, nil
}

// settle debits from each quota what the response says the request spent
// beyond its up-front cost, and gives back what it spent below.
func (t *Transport) settle(req *http.Request, key string, costs []int64, resp *http.Response) {
	ctx, cancel := detach(req.Context())
	defer cancel()

	for i, q := range t.quotas {
		if q.Usage == nil {
			continue
		}
		used := q.Usage(resp)
		if used <= 0 {
			continue
		}

		switch {
		case used > costs[i]:
			_, err := t.store.Debit(ctx, q.bucketKey(key), q.Limit, used-costs[i])
			if err != nil {
				t.emit(Event{Kind: EventStoreError, Request: req, Quota: q.Name, Err: err})
			}
		case used < costs[i]:
			t.refund(ctx, req, q, key, costs[i]-used)
		}
	}
}

// Charge debits n tokens from the bucket of the named quota for req's key,
// for spending known only once the caller has read the response, such as
// the token usage at the end of a streamed body. The bucket may go into
// debt, which later refill pays off.
func (t *Transport) Charge(ctx context.Context, req *http.Request, quota string, n int64) error {
	for _, q := range t.quotas {
		if q.Name != quota {
			continue
		}
		if _, err := t.store.Debit(ctx, q.bucketKey(t.key(req)), q.Limit, n); err != nil {
			return fmt.Errorf("outbound: charge %q: %w", quota, err)
		}
		return nil
	}
	return fmt.Errorf("outbound: charge: no quota named %q", quota)
}

// canWait reports whether a request may wait hold for its next attempt.
func (t *Transport) canWait(ctx context.Context, hold time.Duration) bool {
	if hold > t.maxWait {
		return false
	}
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) >= hold
}

// replay returns a copy of req to send again, with a fresh body, or an
// error when the body cannot be replayed.
func replay(req *http.Request) (*http.Request, error) {
	next := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return next, nil
	}
	if req.GetBody == nil {
		return nil, fmt.Errorf("outbound: the body cannot be replayed")
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("outbound: replay the body: %w", err)
	}
	next.Body = body
	return next, nil
}

// discardLimit bounds what is read of a refused response's body so that
// its connection can be reused.
const discardLimit = 64 << 10

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, discardLimit))
	_ = resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

func (t *Transport) emit(e Event) {
	if t.onEvent != nil {
		t.onEvent(e)
	}
}
