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
	wantLeft(t, store, host+"#requests", requests, 8)
	wantLeft(t, store, host+"#tokens", tokens, 400)
}

// A request refused by a later quota leaves the earlier ones exactly as
// they were: the first such request gives back the token it took, and the
// next ones, knowing that the later bucket cannot pay in time, take
// nothing at all.
func TestRefusalByLaterQuotaChargesNothing(t *testing.T) {
	p := newProvider(t)
	store := newLedger()
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

	host := hostOf(p)
	if got := p.calls.Load(); got != 1 {
		t.Errorf("provider saw %d requests, want 1", got)
	}
	if n := len(seen.of(EventWasted)); n != 0 {
		t.Errorf("%d wasted events, want none", n)
	}
	if takes, refunds := store.counts(host + "#requests"); takes != 2 || refunds != 1 {
		t.Errorf("requests bucket: %d takes, %d refunds; want 2 and 1", takes, refunds)
	}
	if takes, _ := store.counts(host + "#tokens"); takes != 2 {
		t.Errorf("tokens bucket: %d takes, want 2 (none once it is known short)", takes)
	}
	// Only the request that went keeps its token.
	wantLeft(t, store, host+"#requests", requests, 9)
}

// A request refused by a later quota gives the earlier tokens back, waits
// for the later bucket, and then takes every bucket once.
func TestRefusalByLaterQuotaWaitsHoldingNothing(t *testing.T) {
	p := newProvider(t)
	host := hostOf(p)
	clk := newClock()
	store := newLedger(bucket.WithClock(clk))
	requests := fixed(10)
	tokens := bucket.Limit{Capacity: 100, Rate: 1000} // 30 tokens in 30ms
	if _, err := store.Take(context.Background(), host+"#tokens", tokens, 100); err != nil {
		t.Fatal(err)
	}

	// The store's time passes while the transport sleeps.
	store.afterTake = func(key string, res bucket.Result) {
		if key == host+"#tokens" && !res.Allowed {
			clk.Advance(res.RetryAfter)
		}
	}
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
	store.afterTake = nil

	if takes, refunds := store.counts(host + "#requests"); takes != 2 || refunds != 1 {
		t.Errorf("requests bucket: %d takes, %d refunds; want 2 and 1", takes, refunds)
	}
	if n := len(seen.of(EventWaited)); n != 1 {
		t.Errorf("%d waited events, want 1", n)
	}
	if n := len(seen.of(EventWasted)); n != 0 {
		t.Errorf("%d wasted events, want none", n)
	}
	if got := p.calls.Load(); got != 1 {
		t.Errorf("provider saw %d requests, want 1", got)
	}
	wantLeft(t, store, host+"#requests", requests, 9)
	wantLeft(t, store, host+"#tokens", tokens, 0)
}

// A store error on a later quota leaves the earlier ones as they were.
func TestStoreErrorChargesNothing(t *testing.T) {
	p := newProvider(t)
	store := bucket.NewMemory()
	requests := fixed(10)
	tr := New(store,
		WithQuota(Quota{Name: "requests", Limit: requests}),
		WithQuota(Quota{Name: "tokens", Limit: fixed(100),
			Cost: func(*http.Request) int64 { return 200 }}),
	)

	_, err := (&http.Client{Transport: tr}).Get(p.URL)
	if !errors.Is(err, bucket.ErrCostTooHigh) {
		t.Fatalf("err = %v, want ErrCostTooHigh", err)
	}
	if got := p.calls.Load(); got != 0 {
		t.Errorf("provider saw %d requests, want 0", got)
	}
	wantLeft(t, store, hostOf(p)+"#requests", requests, 10)
}

// A context that ends while the buckets are being taken leaves none
// charged, whichever bucket was taken last.
func TestContextEndedWhileTakingChargesNothing(t *testing.T) {
	for _, last := range []string{"requests", "tokens"} {
		t.Run("ends at "+last, func(t *testing.T) {
			p := newProvider(t)
			host := hostOf(p)
			store := newLedger()
			requests, tokens := fixed(10), fixed(100)
			tr := New(store,
				WithQuota(Quota{Name: "requests", Limit: requests}),
				WithQuota(Quota{Name: "tokens", Limit: tokens,
					Cost: func(*http.Request) int64 { return 30 }}),
			)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store.afterTake = func(key string, _ bucket.Result) {
				if key == host+"#"+last {
					cancel()
				}
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
			if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			store.afterTake = nil

			if got := p.calls.Load(); got != 0 {
				t.Errorf("provider saw %d requests, want 0", got)
			}
			// Once the context has ended, no further bucket is taken.
			if takes, _ := store.counts(host + "#tokens"); last == "requests" && takes != 0 {
				t.Errorf("tokens bucket taken %d times after the context ended", takes)
			}
			wantLeft(t, store, host+"#requests", requests, 10)
			wantLeft(t, store, host+"#tokens", tokens, 100)
		})
	}
}

// A refund that the store fails leaves the tokens spent and says so.
func TestFailedRefundIsWasted(t *testing.T) {
	p := newProvider(t)
	host := hostOf(p)
	store := newLedger()
	store.refundErr = errors.New("store down")
	requests, tokens := fixed(10), fixed(100)
	if _, err := store.Take(context.Background(), host+"#tokens", tokens, 100); err != nil {
		t.Fatal(err)
	}
	var seen events
	tr := New(store,
		WithQuota(Quota{Name: "requests", Limit: requests}),
		WithQuota(Quota{Name: "tokens", Limit: tokens}),
		WithEvents(seen.add),
	)

	if _, err := (&http.Client{Transport: tr}).Get(p.URL); !errors.Is(err, ErrWaitTooLong) {
		t.Fatalf("err = %v, want ErrWaitTooLong", err)
	}
	wasted := seen.of(EventWasted)
	if len(wasted) != 1 || wasted[0].Quota != "requests" || wasted[0].Tokens != 1 ||
		!errors.Is(wasted[0].Err, store.refundErr) {
		t.Errorf("wasted events = %+v, want one of 1 requests token with the error", wasted)
	}
	wantLeft(t, store, host+"#requests", requests, 9)
}

// Usage above the up-front cost is debited, usage below it is given back,
// and usage known only later is charged.
func TestUsageIsSettled(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Usage-Tokens", "350")
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Usage-Tokens", "40") // below the estimate
	}, func(http.ResponseWriter, *http.Request) {
		// No usage reported: the estimate stands.
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
	for range 3 {
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

	// 350, 40 and 100 used, 50 charged.
	wantLeft(t, store, hostOf(p)+"#tokens", tokens, 460)
}

// A refund made by this process lifts what it knew of a refusal: a request
// refused for 20 minutes does not hold back the next one once a request in
// flight gives back the estimate it did not use.
func TestRefundLiftsKnownRefusal(t *testing.T) {
	unblock := make(chan struct{})
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request) {
		<-unblock
		w.Header().Set("X-Usage-Tokens", "10")
	})
	tokens := bucket.PerMinute(100, 1) // refills one token a minute
	tr := New(bucket.NewMemory(), WithQuota(Quota{
		Name:  "tokens",
		Limit: tokens,
		Cost:  func(*http.Request) int64 { return 60 },
		Usage: HeaderUsage("X-Usage-Tokens"),
	}), WithMaxWait(time.Second))
	client := &http.Client{Transport: tr}

	first := make(chan error, 1)
	go func() {
		resp, err := client.Get(p.URL)
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for p.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	if _, err := client.Get(p.URL); !errors.Is(err, ErrWaitTooLong) {
		t.Fatalf("while 60 of 100 are out: err = %v, want ErrWaitTooLong", err)
	}
	close(unblock)
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	resp, err := client.Get(p.URL)
	if err != nil {
		t.Fatalf("after the refund of 50: %v", err)
	}
	resp.Body.Close()
	if got := p.calls.Load(); got != 2 {
		t.Errorf("provider saw %d requests, want 2", got)
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
