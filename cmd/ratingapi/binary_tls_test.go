package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// TestBinaryTrustsOnlyTheCAFile runs the binary on a Redis that speaks
// only TLS, by host and port with REDIS_TLS=true. Trusting the Redis CA
// through REDIS_TLS_CA_FILE, it decides with Redis. Trusting another CA
// there, it refuses the server even though the system roots, which
// SSL_CERT_FILE names, hold the right one: it says why at start and serves
// from memory.
func TestBinaryTrustsOnlyTheCAFile(t *testing.T) {
	ca, other := redistest.NewCA(t), redistest.NewCA(t)
	srv := redistest.Start(t, redistest.WithTLS(ca),
		redistest.WithArgs("--requirepass", secretPassword))
	env := func(caFile string) map[string]string {
		return map[string]string{
			"RATE_LIMIT_BUCKET_CAPACITY": "3",
			"REDIS_HOST":                 "127.0.0.1",
			"REDIS_PORT":                 strconv.Itoa(srv.Port()),
			"REDIS_PASSWORD":             secretPassword,
			"REDIS_TLS":                  "true",
			"REDIS_TLS_CA_FILE":          caFile,
			"SSL_CERT_FILE":              ca.CAFile,
			"REDIS_RETRY_INTERVAL_MS":    "100",
		}
	}

	good := start(t, env(ca.CAFile))
	if line := logLine(good, "redis_ready"); line == nil {
		t.Errorf("no redis_ready line at start:\n%s", good.Output())
	}
	if h := good.health(); h["store"] != "redis" || h["fallback_active"] != false {
		t.Errorf("healthz %v right after start", h)
	}
	good.drain(secretKey, 3)
	_, metrics := good.get("/metrics")
	want := `ratelimit_decisions_total{backend="redis",result="allowed"} 3`
	if !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %s:\n%s", want, metrics)
	}

	wrong := start(t, env(other.CAFile))
	line := logLine(wrong, "redis_not_ready")
	if reason, _ := line["reason"].(string); line["level"] != "WARN" ||
		!strings.Contains(reason, "certificate") {
		t.Errorf("redis_not_ready line %v, want a warning about the certificate:\n%s",
			line, wrong.Output())
	}
	if resp, body := wrong.post(secretKey, "film-1"); resp.StatusCode != http.StatusCreated {
		t.Errorf("status %d %s from memory, want 201", resp.StatusCode, body)
	}
	waittest.Until(t, "the fallback", func() bool {
		return wrong.health()["fallback_active"] == true
	})

	for _, p := range []*process{good, wrong} {
		if code := p.Stop(readyWait); code != 0 {
			t.Errorf("exit status %d, want 0:\n%s", code, p.Output())
		}
		if strings.Contains(p.Output(), secretPassword) {
			t.Errorf("the password is in the logs:\n%s", p.Output())
		}
	}
}

// TestBinaryWarmsRedisBeforeServing puts a proxy in front of a TLS Redis
// that holds every new connection for several call deadlines before it
// forwards it, as a slow network or a loaded machine can. A first call
// that had to connect within its own deadline would fail and open the
// breaker; the binary connects before it serves, so its first heartbeat
// and its first decision find Redis and the fallback never turns on.
func TestBinaryWarmsRedisBeforeServing(t *testing.T) {
	ca := redistest.NewCA(t)
	srv := redistest.Start(t, redistest.WithTLS(ca),
		redistest.WithArgs("--requirepass", secretPassword))
	const callDeadline = 100 * time.Millisecond
	proxy := slowProxy(t, srv.Addr(), 4*callDeadline)
	_, port, _ := net.SplitHostPort(proxy)

	p := start(t, map[string]string{
		"RATE_LIMIT_BUCKET_CAPACITY": "3",
		"REDIS_HOST":                 "127.0.0.1",
		"REDIS_PORT":                 port,
		"REDIS_PASSWORD":             secretPassword,
		"REDIS_TLS":                  "true",
		"REDIS_TLS_CA_FILE":          ca.CAFile,
		"REDIS_TIMEOUT_MS":           strconv.Itoa(int(callDeadline.Milliseconds())),
		// No second heartbeat during the test competes with a decision for
		// a warm connection.
		"REDIS_RETRY_INTERVAL_MS": "60000",
	})
	if h := p.health(); h["fallback_active"] != false {
		t.Errorf("healthz %v right after start", h)
	}

	// Wait for the first heartbeat to register the instance, or to fail.
	client := srv.Client(t, func(o *redis.Options) {
		o.TLSConfig, o.Password = ca.ClientConfig(), secretPassword
	})
	waittest.Until(t, "the first heartbeat", func() bool {
		n, _ := client.ZCard(context.Background(), "openclaw:bucket:instances").Result()
		return n == 1 || logLine(p, "rate_limit_fallback") != nil
	})
	if line := logLine(p, "rate_limit_fallback"); line != nil {
		t.Fatalf("the fallback turned on at start: %v\n%s", line, p.Output())
	}

	p.drain(secretKey, 3)
	_, metrics := p.get("/metrics")
	for _, want := range []string{
		`ratelimit_decisions_total{backend="redis",result="allowed"} 3`,
		`ratelimit_fallback_transitions_total{state="on"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
}

// logLine returns the first JSON log line of p whose msg is msg, or nil.
func logLine(p *process, msg string) map[string]any {
	if lines := p.LogLines(msg); len(lines) > 0 {
		return lines[0]
	}
	return nil
}

// slowProxy forwards each connection it accepts to addr after holding it
// for delay, and returns its own address. It stops when the test ends.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed = make(chan struct{})
	)
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		defer src.Close()
		_, _ = io.Copy(dst, src)
	}

	wg.Go(func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			track(down)
			wg.Go(func() {
				select {
				case <-time.After(delay):
				case <-closed:
					down.Close()
					return
				}
				up, err := net.Dial("tcp", addr)
				if err != nil {
					down.Close()
					return
				}
				track(up)
				wg.Go(func() { pipe(up, down) })
				pipe(down, up)
			})
		}
	})
	t.Cleanup(func() {
		close(closed)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
