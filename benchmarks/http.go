package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

// baselineName names the HTTP row without a limiter, and headersName the
// row without a limiter that writes the five rate limit headers anyway.
const (
	baselineName = "no limiter (baseline)"
	headersName  = "no limiter, the five headers only"
)

// headersOnly returns a middleware that writes the rate limit headers of
// the middleware's first allowed answer under s, as constants, and limits
// nothing.
func headersOnly(s spec) func(http.Handler) http.Handler {
	window := strconv.Itoa(int(math.Ceil(s.window.Seconds())))
	quota := strconv.Itoa(s.capacity)
	remaining := strconv.Itoa(s.capacity - 1)
	values := map[string][]string{
		ratelimit.HeaderLimit:     {quota},
		ratelimit.HeaderRemaining: {remaining},
		ratelimit.HeaderReset:     {strconv.FormatInt(time.Now().Unix()+1, 10)},
		ratelimit.HeaderPolicy:    {`"default";q=` + quota + ";w=" + window},
		ratelimit.HeaderRateLimit: {`"default";r=` + remaining + ";t=0"},
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for name, v := range values {
				h[name] = v
			}
			next.ServeHTTP(w, r)
		})
	}
}

// httpCase sends requests with one API key through a chi router on a real
// loopback server.
var httpCase = benchCase{
	name: "through chi over loopback HTTP, one hot key, allowed",
	spec: spec{capacity: 1_000_000_000, window: time.Second},
	key:  func(int, int) string { return "hot" },
}

// middlewareSetup builds the middleware of one HTTP contender.
type middlewareSetup func(env, spec) (func(http.Handler) http.Handler, func(), error)

func httpContenders() []contender {
	ours := func(store func(env) (bucket.Store, func())) middlewareSetup {
		return func(e env, s spec) (func(http.Handler) http.Handler, func(), error) {
			st, done := store(e)
			return ratelimit.New(st, s.bucket()), done, nil
		}
	}
	rows := []struct {
		name, store string
		isOurs      bool
		mw          middlewareSetup
	}{
		{baselineName, "none", false, func(env, spec) (func(http.Handler) http.Handler, func(), error) {
			return func(h http.Handler) http.Handler { return h }, nothing, nil
		}},
		{headersName, "none", false, func(
			_ env, s spec,
		) (func(http.Handler) http.Handler, func(), error) {
			return headersOnly(s), nothing, nil
		}},
		{"ours: ratelimit on bucket.Memory", "memory", true, ours(func(env) (bucket.Store, func()) {
			return bucket.NewMemory(), nothing
		})},
		{"ours: ratelimit on bucket.Redis", "redis", true, ours(func(e env) (bucket.Store, func()) {
			c := e.client()
			return bucket.NewRedis(c, bucket.WithPrefix(e.prefix+"ours")), func() { c.Close() }
		})},
		{"ours: ratelimit on bucket.Fallback", "redis", true, ours(func(e env) (bucket.Store, func()) {
			c := e.client()
			f := bucket.NewFallback(c, bucket.WithPrefix(e.prefix+"ours"))
			return f, func() { f.Close(); c.Close() }
		})},
		{"go-chi/httprate", "memory", false, func(
			_ env, s spec,
		) (func(http.Handler) http.Handler, func(), error) {
			byKey := func(r *http.Request) (string, error) { return r.Header.Get("X-API-Key"), nil }
			return httprate.Limit(s.capacity, s.window, httprate.WithKeyFuncs(byKey)), nothing, nil
		}},
	}

	var out []contender
	for _, r := range rows {
		out = append(out, contender{
			name: r.name, store: r.store, ours: r.isOurs,
			setup: func(e env, s spec) (Limiter, func(), error) {
				mw, done, err := r.mw(e, s)
				if err != nil {
					return nil, nil, err
				}
				return serveHTTP(mw, done)
			},
		})
	}
	return out
}

// serveHTTP starts a chi router with mw on a loopback port and returns a
// Limiter that sends one request per decision: 200 is allowed, 429 is
// refused.
func serveHTTP(mw func(http.Handler) http.Handler, done func()) (Limiter, func(), error) {
	r := chi.NewRouter()
	r.Use(mw)
	r.Get("/v1/ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		done()
		return nil, nil, err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	transport := &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/v1/ping"

	lim := limiterFunc(func(ctx context.Context, key string) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return true, nil
		case http.StatusTooManyRequests:
			return false, nil
		}
		return false, fmt.Errorf("unexpected status %d", resp.StatusCode)
	})
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		transport.CloseIdleConnections()
		done()
	}
	return lim, stop, nil
}

// httpPairs is how many times a run measures each row of httpPaired
// against the baseline.
const httpPairs = 3

// httpPaired are the HTTP rows measured against the baseline just before
// and just after them, in this order, so that their comparison, a few per
// cent, is not lost in the drift of a shared machine: the middleware on
// bucket.Memory, and a handler that only writes the five rate limit
// headers, which shows what the headers alone cost.
var httpPaired = []string{httpMemory, httpHeaders}

// runHTTP measures every HTTP contender for each number of callers: first
// the baseline and the paired rows in turn, baseline, first paired row,
// baseline, second paired row, baseline, httpPairs times; then the others.
func (b *bench) runHTTP(ctx context.Context) {
	for _, n := range b.cfg.callers {
		byLabel := make(map[string]contender)
		for _, c := range b.selectedHTTP() {
			byLabel[c.label()] = c
		}
		base, paired := byLabel[httpBase]
		for _, label := range httpPaired {
			_, ok := byLabel[label]
			paired = paired && ok
		}
		if paired {
			for range httpPairs {
				b.measureOne(ctx, httpCase, n, base)
				for _, label := range httpPaired {
					b.measureOne(ctx, httpCase, n, byLabel[label])
					b.measureOne(ctx, httpCase, n, base)
				}
			}
		}
		for _, c := range b.selectedHTTP() {
			if !paired || c.label() != httpBase && !slices.Contains(httpPaired, c.label()) {
				b.measureOne(ctx, httpCase, n, c)
			}
		}
	}
}

// httpCost returns the share of the baseline's throughput, and of its CPU
// time per request, that the row httpPaired[which] costs at n callers: the
// median, over every measurement of the row, of its figure against the
// mean of the two baseline figures around it.
func (b *bench) httpCost(n, which int) (throughput, cpu float64, pairs int, ok bool) {
	base := b.samples[rowKey{table: httpCase.name, callers: n, contender: httpBase}]
	row := b.samples[rowKey{table: httpCase.name, callers: n, contender: httpPaired[which]}]
	step := len(httpPaired)
	var ops, cpus []float64
	for i, m := range row {
		at := step*i + which
		if at+1 >= len(base) {
			break
		}
		before, after := base[at], base[at+1]
		if m.err != nil || before.err != nil || after.err != nil {
			continue
		}
		baseOps := (before.opsPerSec() + after.opsPerSec()) / 2
		baseCPU := float64(before.ownCPU+after.ownCPU) / 2
		if baseOps <= 0 || baseCPU <= 0 {
			continue
		}
		ops = append(ops, m.opsPerSec()/baseOps)
		cpus = append(cpus, float64(m.ownCPU)/baseCPU)
	}
	if len(ops) == 0 {
		return 0, 0, 0, false
	}
	pairs = len(ops)
	throughput, cpu = 1-median(ops), median(cpus)-1
	return throughput, cpu, pairs, true
}

func (b *bench) selectedHTTP() []contender {
	var out []contender
	for _, c := range httpContenders() {
		if b.cfg.only == nil || b.cfg.only.MatchString(c.label()) || c.store == "none" {
			out = append(out, c)
		}
	}
	return out
}

func (b *bench) httpTables() []table {
	return []table{{
		name: httpCase.name, callers: b.cfg.callers, rows: b.selectedHTTP(),
		ref: contender{name: baselineName, store: "none"}.label(),
	}}
}
