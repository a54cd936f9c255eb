package outbound

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

func hostOf(p *provider) string {
	u, _ := url.Parse(p.URL)
	return u.Host
}

func TestEveryQuotaIsCharged(t *testing.T) {
	p := newProvider(t)
	store := bucket.NewMemory()
	requests, tokens := fixed(10), fixed(1000)
	tr := New(store,
		WithQuota(Quota{Name: "requests", Limit: requests}),
		WithQuota(Quota{Name: "tokens", Limit: tokens,
			Cost: func(*http.Request) int64 { return 300 }}),
	)
	client := &http.Client{Transport: tr}

	for range 2 {
		resp, err := client.Get(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	host := hostOf(p)
	if got := left(t, store, host+"#requests", requests); got != 8 {
		t.Errorf("requests left = %d, want 8", got)
	}
	if got := left(t, store, host+"#tokens", tokens); got != 400 {
		t.Errorf("tokens left = %d, want 400", got)
	}
}

// With a store that cannot give tokens back, the first request refused by
// a later bucket leaves its tokens in the earlier ones (reported as
// wasted); the next request knows the later bucket cannot pay and takes
// nothing.
func TestRefusalByLaterQuotaWithoutRefund(t *testing.T) {
	p := newProvider(t)
	store := bucket.NewMemory()
	requests := fixed(10)
	tokens := bucket.PerMinute(100, 1) // refills one token a minute
	var seen events
	tr := New(store,
		WithQuota(Quota{Name: "requests", Limit: requests}),
		WithQuota(Quota{Name: "tokens", Limit: tokens,
			Cost: func(*http.Request) int64 { return 60 }}),
		WithMaxWait(time.Second),
		WithEvents(seen.add),
	)
	client := &http.Client{Transport: tr}

	resp, err := client.Get(p.URL) // takes 60 of the 100 tokens
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	for i := range 3 {
		_, err := client.Get(p.URL)
		var we *WaitError
		if !errors.As(err, &we) || !errors.Is(err, ErrWaitTooLong) {
			t.Fatalf("request %d: err = %v, want a *WaitError", i, err)
		}
		if we.Quota != "tokens" || we.RetryAfter < 10*time.Minute {
			t.Errorf("request %d: %+v, want quota tokens and about 20 minutes", i, we)
		}
	}

	if got := p.calls.Load(); got != 1 {
		t.Errorf("provider saw %d requests, want 1", got)
	}
	wasted := seen.of(EventWasted)
	if len(wasted) != 1 || wasted[0].Quota != "requests" || wasted[0].Tokens != 1 {
		t.Errorf("wasted events = %+v, want one of 1 requests token", wasted)
	}
	if got := left(t, store, hostOf(p)+"#requests", requests); got != 8 {
		t.Errorf("requests left = %d, want 8 (1 sent, 1 wasted, then none)", got)
	}
}

// With a Refunder, a bucket that refuses gets the earlier buckets' tokens
// given back; the request waits and then takes every bucket once.
func TestRefusalByLaterQuotaIsRefunded(t *testing.T) {
	p := newProvider(t)
	store := newRefunding()
	store.wait = 5 * time.Millisecond
	host := hostOf(p)
	store.refusals[host+"#tokens"] = 2
	requests, tokens := fixed(10), fixed(100)
	var seen events
	tr := New(store,
		WithQuota(Quota{Name: "requests", Limit: requests}),
		WithQuota(Quota{Name: "tokens", Limit: tokens,
			Cost: func(*http.Request) int64 { return 30 }}),
		WithEvents(seen.add),
	)

	resp, err := (&http.Client{Transport: tr}).Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if got := store.left(host+"#requests", requests); got != 9 {
		t.Errorf("requests left = %d, want 9", got)
	}
	if got := store.left(host+"#tokens", tokens); got != 70 {
		t.Errorf("tokens left = %d, want 70", got)
	}
	if n := len(seen.of(EventWasted)); n != 0 {
		t.Errorf("%d wasted events, want none", n)
	}
	if n := len(seen.of(EventWaited)); n != 1 {
		t.Errorf("%d waited events, want 1", n)
	}
}

// A request refused for too long by a Refunder's later bucket leaves no
// bucket charged.
func TestRefundedWhenWaitTooLong(t *testing.T) {
	p := newProvider(t)
	store := newRefunding()
	store.wait = time.Hour
	host := hostOf(p)
	store.refusals[host+"#tokens"] = 1
	requests, tokens := fixed(10), fixed(100)
	tr := New(store,
		WithQuota(Quota{Name: "requests", Limit: requests}),
		WithQuota(Quota{Name: "tokens", Limit: tokens}),
	)

	_, err := (&http.Client{Transport: tr}).Get(p.URL)
	if !errors.Is(err, ErrWaitTooLong) {
		t.Fatalf("err = %v, want ErrWaitTooLong", err)
	}
	if got := store.left(host+"#requests", requests); got != 10 {
		t.Errorf("requests left = %d, want 10", got)
	}
	if got := p.calls.Load(); got != 0 {
		t.Errorf("provider saw %d requests, want 0", got)
	}
}

func TestUsageIsDebited(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Usage-Tokens", "350")
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Usage-Tokens", "40") // below the estimate
	})
	store := bucket.NewMemory()
	tokens := fixed(1000)
	tr := New(store, WithQuota(Quota{
		Name:  "tokens",
		Limit: tokens,
		Cost:  func(*http.Request) int64 { return 100 },
		Usage: HeaderUsage("X-Usage-Tokens"),
	}))
	client := &http.Client{Transport: tr}

	var last *http.Response
	for range 2 {
		resp, err := client.Get(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp
	}
	// Usage known only after the body was read, for example at the end of
	// a stream.
	if err := tr.Charge(context.Background(), last.Request, "tokens", 50); err != nil {
		t.Fatal(err)
	}
	if err := tr.Charge(context.Background(), last.Request, "nope", 1); err == nil {
		t.Error("charge of an unknown quota: no error")
	}

	// 350 for the first, 100 (the estimate; Memory cannot refund) for the
	// second, 50 charged.
	if got := left(t, store, hostOf(p)+"#tokens", tokens); got != 500 {
		t.Errorf("tokens left = %d, want 500", got)
	}
}

func TestUsageBelowCostIsRefunded(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Usage-Tokens", "40")
	})
	store := newRefunding()
	tokens := fixed(1000)
	tr := New(store, WithQuota(Quota{
		Name:  "tokens",
		Limit: tokens,
		Cost:  func(*http.Request) int64 { return 100 },
		Usage: HeaderUsage("X-Usage-Tokens"),
	}))

	resp, err := (&http.Client{Transport: tr}).Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := store.left(hostOf(p)+"#tokens", tokens); got != 960 {
		t.Errorf("tokens left = %d, want 960", got)
	}
}

func TestCosts(t *testing.T) {
	p := newProvider(t)
	store := bucket.NewMemory()
	cost := int64(0)
	tr := New(store, WithQuota(Quota{Name: "tokens", Limit: fixed(5),
		Cost: func(*http.Request) int64 { return cost }}))
	client := &http.Client{Transport: tr}

	// A cost of zero exempts the request.
	for range 10 {
		resp, err := client.Get(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	cost = -1
	if _, err := client.Get(p.URL); err == nil {
		t.Error("negative cost: no error")
	}
	cost = 6
	if _, err := client.Get(p.URL); !errors.Is(err, bucket.ErrCostTooHigh) {
		t.Errorf("cost above capacity: err = %v, want ErrCostTooHigh", err)
	}
	if got := p.calls.Load(); got != 10 {
		t.Errorf("provider saw %d requests, want 10", got)
	}
}

func TestKeyIsHost(t *testing.T) {
	a, b := newProvider(t), newProvider(t)
	tr := New(bucket.NewMemory(), WithQuota(Quota{Limit: fixed(1)}), WithMaxWait(0))
	client := &http.Client{Transport: tr}

	for _, p := range []*provider{a, b} {
		resp, err := client.Get(p.URL)
		if err != nil {
			t.Fatalf("first request to %s: %v", p.URL, err)
		}
		resp.Body.Close()
		if _, err := client.Get(p.URL); !errors.Is(err, ErrWaitTooLong) {
			t.Errorf("second request to %s: err = %v, want ErrWaitTooLong", p.URL, err)
		}
	}
}

func TestNewPanicsOnMisuse(t *testing.T) {
	store := bucket.NewMemory()
	cases := map[string][]Option{
		"no quota":      nil,
		"invalid limit": {WithQuota(Quota{Limit: bucket.Limit{}})},
		"same names": {
			WithQuota(Quota{Name: "a", Limit: fixed(1)}),
			WithQuota(Quota{Name: "a", Limit: fixed(2)}),
		},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			New(store, opts...)
		})
	}
}
