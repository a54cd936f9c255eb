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
)

// fixed is a limit that never refills, so that tests count tokens exactly.
func fixed(capacity int64) bucket.Limit {
	return bucket.Limit{Capacity: capacity}
}

// left returns the whole tokens in the bucket of key. It takes them all
// when the bucket is full, so a test calls it last.
func left(t *testing.T, store bucket.Store, key string, limit bucket.Limit) int64 {
	t.Helper()
	res, err := store.Take(context.Background(), key, limit, limit.Capacity)
	if err != nil {
		t.Fatalf("take %s: %v", key, err)
	}
	if res.Allowed {
		return limit.Capacity
	}
	return res.Remaining
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

// refunding is a store whose buckets never refill and that can give tokens
// back. It refuses the first refusals takes on a key, whatever the bucket
// holds, with a retry-after of wait.
type refunding struct {
	mu       sync.Mutex
	tokens   map[string]int64
	refusals map[string]int
	wait     time.Duration
}

var _ Refunder = (*refunding)(nil)

func newRefunding() *refunding {
	return &refunding{tokens: make(map[string]int64), refusals: make(map[string]int)}
}

func (s *refunding) bucket(key string, limit bucket.Limit) int64 {
	if _, ok := s.tokens[key]; !ok {
		s.tokens[key] = limit.Capacity
	}
	return s.tokens[key]
}

func (s *refunding) Take(_ context.Context, key string, limit bucket.Limit,
	n int64) (bucket.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	have := s.bucket(key, limit)
	if s.refusals[key] > 0 {
		s.refusals[key]--
		return bucket.Result{Limit: limit, Remaining: have, RetryAfter: s.wait}, nil
	}
	if have < n {
		return bucket.Result{Limit: limit, Remaining: have, RetryAfter: bucket.Forever}, nil
	}
	s.tokens[key] = have - n
	return bucket.Result{Allowed: true, Limit: limit, Remaining: have - n}, nil
}

func (s *refunding) Debit(_ context.Context, key string, limit bucket.Limit,
	n int64) (bucket.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[key] = s.bucket(key, limit) - n
	return bucket.Result{Allowed: true, Limit: limit}, nil
}

func (s *refunding) Drain(_ context.Context, key string, limit bucket.Limit,
	_ time.Duration) (bucket.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[key] = min(s.bucket(key, limit), 0)
	return bucket.Result{Allowed: true, Limit: limit}, nil
}

func (s *refunding) Refund(_ context.Context, key string, limit bucket.Limit,
	n int64) (bucket.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[key] = min(s.bucket(key, limit)+n, limit.Capacity)
	return bucket.Result{Allowed: true, Limit: limit}, nil
}

func (s *refunding) left(key string, limit bucket.Limit) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bucket(key, limit)
}
