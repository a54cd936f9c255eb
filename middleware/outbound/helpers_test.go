package outbound

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/fakeclock"
)

// fixed is a limit that never refills, so that tests count tokens exactly.
func fixed(capacity int64) bucket.Limit {
	return bucket.Limit{Capacity: capacity}
}

// wantLeft checks that the bucket of key holds want whole tokens. It
// takes them all when the bucket is full, so a test calls it last.
func wantLeft(t *testing.T, store bucket.Store, key string, limit bucket.Limit, want int64) {
	t.Helper()
	res, err := store.Take(context.Background(), key, limit, limit.Capacity)
	if err != nil {
		t.Fatalf("take %s: %v", key, err)
	}
	got := res.Remaining
	if res.Allowed {
		got = limit.Capacity
	}
	if got != want {
		t.Errorf("%s: %d tokens left, want %d", key, got, want)
	}
}

// provider is a fake provider that answers each request with the next
// handler of a script, and with ok once the script is done.
type provider struct {
	*httptest.Server
	calls atomic.Int64

	mu     sync.Mutex
	script []http.HandlerFunc
	bodies []string
}

func newProvider(t *testing.T, script ...http.HandlerFunc) *provider {
	t.Helper()
	p := &provider{script: script}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	body := make([]byte, 1024)
	n, _ := r.Body.Read(body)

	p.mu.Lock()
	p.bodies = append(p.bodies, string(body[:n]))
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	if len(p.script) > 0 {
		next, p.script = p.script[0], p.script[1:]
	}
	p.mu.Unlock()

	next(w, r)
}

// tooMany answers 429 with the given headers, in pairs of name and value.
func tooMany(header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte("slow down"))
	}
}

// events records the events of a transport.
type events struct {
	mu   sync.Mutex
	list []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) of(kind EventKind) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.list {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// newClock returns a clock that tests move by hand.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// ledger is a memory store that counts the takes and refunds of each key,
// runs afterTake, when set, after each take, and fails every refund with
// refundErr, when set.
type ledger struct {
	*bucket.Memory

	mu        sync.Mutex
	takes     map[string]int
	refunds   map[string]int
	afterTake func(key string, res bucket.Result)
	refundErr error
}

func newLedger(opts ...bucket.Option) *ledger {
	return &ledger{
		Memory:  bucket.NewMemory(opts...),
		takes:   make(map[string]int),
		refunds: make(map[string]int),
	}
}

func (l *ledger) Take(ctx context.Context, key string, limit bucket.Limit,
	n int64) (bucket.Result, error) {
	res, err := l.Memory.Take(ctx, key, limit, n)

	l.mu.Lock()
	l.takes[key]++
	hook := l.afterTake
	l.mu.Unlock()

	if hook != nil && err == nil {
		hook(key, res)
	}
	return res, err
}

func (l *ledger) Refund(ctx context.Context, key string, limit bucket.Limit,
	n int64) (bucket.Result, error) {
	l.mu.Lock()
	l.refunds[key]++
	err := l.refundErr
	l.mu.Unlock()

	if err != nil {
		return bucket.Result{}, err
	}
	return l.Memory.Refund(ctx, key, limit, n)
}

// counts returns the takes and refunds of key so far.
func (l *ledger) counts(key string) (takes, refunds int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.takes[key], l.refunds[key]
}
