package outbound

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

func TestRetryAfterTooManyRequests(t *testing.T) {
	p := newProvider(t,
		tooMany("X-Ratelimit-Reset-Requests", "20ms"),
		tooMany("Retry-After", "0", "X-Ratelimit-Reset-Tokens", "30ms"),
	)
	store := bucket.NewMemory()
	var seen events
	tr := New(store, WithQuota(Quota{Name: "requests", Limit: bucket.PerMinute(10, 600)}),
		WithEvents(seen.add))

	body := []byte(`{"prompt":"hi"}`)
	resp, err := (&http.Client{Transport: tr}).Post(p.URL, "application/json",
		bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
	if got := p.calls.Load(); got != 3 {
		t.Errorf("provider saw %d requests, want 3", got)
	}
	for i, b := range p.bodies {
		if b != string(body) {
			t.Errorf("body of attempt %d = %q, want %q", i+1, b, body)
		}
	}
	throttled := seen.of(EventThrottled)
	if len(throttled) != 2 || throttled[0].Wait != 20*time.Millisecond ||
		throttled[1].Wait != 30*time.Millisecond {
		t.Errorf("throttled events = %+v, want waits of 20ms and 30ms", throttled)
	}
	if n := len(seen.of(EventRetry)); n != 2 {
		t.Errorf("%d retry events, want 2", n)
	}
}

func TestRetryLimit(t *testing.T) {
	answer := tooMany("X-Ratelimit-Reset-Requests", "5ms")
	p := newProvider(t, answer, answer, answer, answer, answer)
	tr := New(bucket.NewMemory(), WithQuota(Quota{Limit: bucket.PerMinute(10, 6000)}),
		WithRetries(2))

	resp, err := (&http.Client{Transport: tr}).Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	// The last refusal reaches the caller whole.
	if resp.StatusCode != http.StatusTooManyRequests || string(b) != "slow down" {
		t.Errorf("got %d %q, want 429 %q", resp.StatusCode, b, "slow down")
	}
	if got := p.calls.Load(); got != 3 {
		t.Errorf("provider saw %d requests, want 3 (one and two retries)", got)
	}
}

func TestNoRetryOfBodyThatCannotBeReplayed(t *testing.T) {
	p := newProvider(t, tooMany("X-Ratelimit-Reset-Requests", "5ms"))
	tr := New(bucket.NewMemory(), WithQuota(Quota{Limit: bucket.PerMinute(10, 6000)}))

	req, _ := http.NewRequest(http.MethodPost, p.URL, io.NopCloser(strings.NewReader("once")))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || p.calls.Load() != 1 {
		t.Errorf("got %d after %d requests, want 429 after 1", resp.StatusCode, p.calls.Load())
	}
}

// A 429 drains the bucket for every transport that shares the store: the
// next request, from another transport, does not reach the provider.
func TestTooManyRequestsDrainsSharedBucket(t *testing.T) {
	p := newProvider(t, tooMany("Retry-After", "60"))
	store := bucket.NewMemory()
	quota := WithQuota(Quota{Name: "requests", Limit: bucket.PerMinute(100, 100)})
	first := New(store, quota, WithRetries(0))
	second := New(store, quota, WithMaxWait(time.Second))

	resp, err := (&http.Client{Transport: first}).Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429", resp.StatusCode)
	}

	_, err = (&http.Client{Transport: second}).Get(p.URL)
	var we *WaitError
	if !errors.As(err, &we) || we.RetryAfter < 59*time.Second {
		t.Errorf("err = %v, want a *WaitError of about a minute", err)
	}
	if got := p.calls.Load(); got != 1 {
		t.Errorf("provider saw %d requests, want 1", got)
	}
}

// A 429 that holds longer than the maximum wait goes back to the caller at
// once.
func TestTooManyRequestsLongerThanMaxWait(t *testing.T) {
	p := newProvider(t, tooMany("X-Ratelimit-Reset-Tokens", "6m0s"))
	var seen events
	tr := New(bucket.NewMemory(), WithQuota(Quota{Limit: bucket.PerMinute(10, 600)}),
		WithMaxWait(time.Minute), WithEvents(seen.add))

	resp, err := (&http.Client{Transport: tr}).Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || p.calls.Load() != 1 {
		t.Errorf("got %d after %d requests, want 429 after 1", resp.StatusCode, p.calls.Load())
	}
	if n := len(seen.of(EventRetry)); n != 0 {
		t.Errorf("%d retries, want none", n)
	}
}

// A 429 that does not say when to come back holds for noHintHold.
func TestTooManyRequestsWithoutHint(t *testing.T) {
	p := newProvider(t, tooMany())
	var seen events
	tr := New(bucket.NewMemory(), WithQuota(Quota{Limit: bucket.PerMinute(10, 600)}),
		WithRetries(0), WithEvents(seen.add))

	resp, err := (&http.Client{Transport: tr}).Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	throttled := seen.of(EventThrottled)
	if len(throttled) != 1 || throttled[0].Wait != noHintHold {
		t.Errorf("throttled events = %+v, want one of %v", throttled, noHintHold)
	}
}

func TestMaxWait(t *testing.T) {
	p := newProvider(t)
	limit := bucket.PerMinute(1, 1)
	tr := New(bucket.NewMemory(), WithQuota(Quota{Name: "requests", Limit: limit}),
		WithMaxWait(time.Second))
	client := &http.Client{Transport: tr}

	resp, err := client.Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	body := &closeCheck{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, p.URL, body)
	_, err = client.Do(req)
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, bucket.ErrWaitTooLong) {
		t.Fatalf("err = %v, want a *WaitError", err)
	}
	if we.Quota != "requests" || we.RetryAfter <= time.Second {
		t.Errorf("wait error = %+v, want quota requests and more than a second", we)
	}
	if !body.closed {
		t.Error("the body of the refused request was not closed")
	}
	if got := p.calls.Load(); got != 1 {
		t.Errorf("provider saw %d requests, want 1", got)
	}
}

// The wait also ends with the request's context, whose deadline counts as
// a maximum wait.
func TestContextEndsWait(t *testing.T) {
	p := newProvider(t)
	store := bucket.NewMemory()
	limit := bucket.PerMinute(1, 1)
	tr := New(store, WithQuota(Quota{Limit: limit}), WithMaxWait(time.Hour))
	client := &http.Client{Transport: tr}
	if _, err := store.Take(context.Background(), hostOf(p), limit, 1); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if _, err := client.Do(req); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if _, err := client.Do(req); !errors.Is(err, ErrWaitTooLong) {
		t.Errorf("deadline before the tokens: err = %v, want ErrWaitTooLong", err)
	}
	if got := p.calls.Load(); got != 0 {
		t.Errorf("provider saw %d requests, want 0", got)
	}
}

type closeCheck struct {
	io.Reader
	closed bool
}

func (c *closeCheck) Close() error {
	c.closed = true
	return nil
}
