package main

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/internal/processtest"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// binary is the path of the ratingapi binary that TestMain builds.
var binary string

func TestMain(m *testing.M) {
	os.Exit(processtest.Run(m, ".", &binary))
}

// process is a running ratingapi binary.
type process struct {
	*processtest.Process
	t    *testing.T
	base string
}

// readyWait bounds how long the binary may take to answer /healthz, or to
// exit after SIGTERM.
const readyWait = 20 * time.Second

// start runs the binary with env on a free loopback port and waits until
// /healthz answers. The test kills it at the end if it still runs.
func start(t *testing.T, env map[string]string) *process {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	all := map[string]string{"LISTEN_ADDR": addr}
	maps.Copy(all, env)
	p := &process{Process: processtest.Start(t, binary, all), t: t, base: "http://" + addr}
	p.WaitReady(p.base+"/healthz", readyWait)
	return p
}

// post rates item with key and returns the response, body read.
func (p *process) post(key, item string) (*http.Response, string) {
	p.t.Helper()
	body := `{"item_id": "` + item + `", "score": 4}`
	req, err := http.NewRequest(http.MethodPost, p.base+"/v1/ratings", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	return p.do(req)
}

func (p *process) get(path string) (*http.Response, string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.base+path, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.do(req)
}

func (p *process) do(req *http.Request) (*http.Response, string) {
	p.t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", req.Method, req.URL.Path, err, p.Output())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// health returns the decoded /healthz answer.
func (p *process) health() map[string]any {
	p.t.Helper()
	_, body := p.get("/healthz")
	var h map[string]any
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		p.t.Fatalf("healthz %q: %v", body, err)
	}
	return h
}

// drain spends the bucket of key, checking that Remaining falls by one
// each time, and then that the next request is refused.
func (p *process) drain(key string, capacity int) {
	p.t.Helper()
	for want := capacity - 1; want >= 0; want-- {
		resp, body := p.post(key, "film-1")
		if resp.StatusCode != http.StatusCreated {
			p.t.Fatalf("status %d %s, want 201", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(want) {
			p.t.Fatalf("X-RateLimit-Remaining %q, want %d", got, want)
		}
	}
	resp, body := p.post(key, "film-1")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		p.t.Fatalf("status %d with Retry-After %q (%s), want 429", resp.StatusCode,
			resp.Header.Get("Retry-After"), body)
	}
}

const (
	secretKey      = "sk-live-4f9c2a7e1b"
	secretPassword = "pw-7d1e0b9a55"
)

func TestBinaryOnMemory(t *testing.T) {
	p := start(t, map[string]string{
		"RATE_LIMIT_BUCKET_CAPACITY":     "3",
		"RATE_LIMIT_REFILL_RATE_PER_MIN": "1",
		"API_KEYS":                       secretKey + ",other-key",
	})
	if h := p.health(); h["store"] != "memory" || h["fallback_active"] != false {
		t.Errorf("healthz %v", h)
	}
	p.drain(secretKey, 3)

	if resp, _ := p.post("unknown-key", "film-1"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown key: status %d, want 401", resp.StatusCode)
	}
	if resp, _ := p.post("other-key", "film-1"); resp.StatusCode != http.StatusCreated {
		t.Errorf("other key: status %d, want 201", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, p.base+"/v1/items/film-1/rating", nil)
	req.Header.Set("X-API-Key", "other-key")
	if resp, body := p.do(req); !strings.Contains(body, `"count":4`) {
		t.Errorf("rating: %d %s, want a count of 4", resp.StatusCode, body)
	}
	_, metrics := p.get("/metrics")
	for _, want := range []string{
		`ratelimit_decisions_total{backend="memory",result="allowed"} 5`,
		`ratelimit_decisions_total{backend="memory",result="denied"} 1`,
		`ratelimit_fallback_active 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	if code := healthcheckStatus(p); code != 0 {
		t.Errorf("healthcheck of a running instance: exit status %d, want 0", code)
	}

	if code := p.Stop(readyWait); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, p.Output())
	}
	if code := healthcheckStatus(p); code != 1 {
		t.Errorf("healthcheck of a stopped instance: exit status %d, want 1", code)
	}
	logs := p.Output()
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no stopped line in the logs:\n%s", logs)
	}
	if strings.Contains(logs, secretKey) {
		t.Errorf("an API key is in the logs:\n%s", logs)
	}
}

// healthcheckStatus runs "ratingapi healthcheck" against p.
func healthcheckStatus(p *process) int {
	env := map[string]string{"LISTEN_ADDR": strings.TrimPrefix(p.base, "http://")}
	return processtest.Start(p.t, binary, env, "healthcheck").Wait(readyWait)
}

func TestBinaryOnRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--requirepass", secretPassword))
	env := map[string]string{
		"RATE_LIMIT_BUCKET_CAPACITY":     "3",
		"RATE_LIMIT_REFILL_RATE_PER_MIN": "1",
		"REDIS_HOST":                     "127.0.0.1",
		"REDIS_PORT":                     strconv.Itoa(srv.Port()),
		"REDIS_PASSWORD":                 secretPassword,
		"REDIS_RETRY_INTERVAL_MS":        "100",
		"LOG_LEVEL":                      "debug",
	}
	a, b := start(t, env), start(t, env)
	if h := a.health(); h["store"] != "redis" || h["fallback_active"] != false {
		t.Errorf("healthz %v", h)
	}
	if logLine(a, "redis_ready") == nil {
		t.Errorf("no redis_ready line at start:\n%s", a.Output())
	}

	// Two instances share the bucket in Redis.
	a.post(secretKey, "film-1")
	b.post(secretKey, "film-1")
	resp, _ := a.post(secretKey, "film-1")
	if got := resp.Header.Get("X-RateLimit-Remaining"); got != "0" {
		t.Errorf("remaining %q after three requests on two instances, want 0", got)
	}
	if resp, _ := b.post(secretKey, "film-1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", resp.StatusCode)
	}
	a.drain("second-key", 3)

	// The bucket lives in Redis under a hash of the key.
	client := srv.Client(t, func(o *redis.Options) { o.Password = secretPassword })
	names, err := client.Keys(context.Background(), "openclaw:bucket:*").Result()
	if err != nil || len(names) < 2 {
		t.Fatalf("bucket keys %v, %v", names, err)
	}
	for _, name := range names {
		if strings.Contains(name, "sk-live") {
			t.Errorf("Redis key %q holds the API key", name)
		}
	}

	// Redis dies: the instances keep deciding from memory.
	srv.Kill()
	waittest.Until(t, "fallback", func() bool {
		resp, _ := a.post("third-key", "film-2")
		return resp.StatusCode < 500 && a.health()["fallback_active"] == true
	})
	if resp, _ := a.post(secretKey, "film-1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("drained key during the outage: status %d, want 429", resp.StatusCode)
	}

	// Redis returns: the instances go back to it.
	srv.Restart()
	waittest.Until(t, "recovery", func() bool { return a.health()["fallback_active"] == false })
	_, metrics := a.get("/metrics")
	for _, want := range []string{
		`ratelimit_fallback_transitions_total{state="on"} 1`,
		`ratelimit_fallback_transitions_total{state="off"} 1`,
		`ratelimit_decisions_total{backend="redis",result="allowed"}`,
		`ratelimit_decisions_total{backend="memory",result="allowed"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	for _, p := range []*process{a, b} {
		if code := p.Stop(readyWait); code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, p.Output())
		}
	}
	logs := a.Output()
	for _, want := range []string{`"msg":"rate_limit_fallback","state":"on"`,
		`"msg":"rate_limit_fallback","state":"off"`, `"keys_written_back":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{secretKey, secretPassword} {
		if strings.Contains(logs+b.Output(), secret) {
			t.Errorf("a secret is in the logs:\n%s", logs)
		}
	}
}

func TestBinaryWithRedisDownAtStart(t *testing.T) {
	port := redistest.FreePort(t) // nothing listens there
	p := start(t, map[string]string{
		"RATE_LIMIT_BUCKET_CAPACITY": "2",
		"REDIS_HOST":                 "127.0.0.1",
		"REDIS_PORT":                 strconv.Itoa(port),
		"RATE_LIMIT_BACKEND":         "redis",
	})
	line := logLine(p, "redis_not_ready")
	if reason, _ := line["reason"].(string); line["level"] != "WARN" ||
		!strings.Contains(reason, "refused") {
		t.Errorf("redis_not_ready line %v, want a warning that says why:\n%s", line, p.Output())
	}
	p.drain(secretKey, 2)
	if h := p.health(); h["store"] != "redis" || h["fallback_active"] != true {
		t.Errorf("healthz %v, want redis with the fallback active", h)
	}
	if code := p.Stop(readyWait); code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, p.Output())
	}
}

func TestBinaryRefusesBadEnvironment(t *testing.T) {
	cases := map[string]string{
		"RATE_LIMIT_BUCKET_CAPACITY": "many",
		"RATE_LIMIT_BACKEND":         "redis",
		"REDIS_URL":                  "redis://user:" + secretPassword + "@cache:1/x",
		"LOG_FORMAT":                 "yaml",
		"REDIS_TLS_CA_FILE":          "/nonexistent/ca.pem",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			p := processtest.Start(t, binary, map[string]string{name: value})
			if code := p.Wait(readyWait); code != 2 {
				t.Fatalf("exit status %d, want 2:\n%s", code, p.Output())
			}
			if !strings.Contains(p.Output(), name) {
				t.Errorf("message does not name %s: %s", name, p.Output())
			}
			if strings.Contains(p.Output(), secretPassword) {
				t.Errorf("message repeats the password: %s", p.Output())
			}
		})
	}
}

func TestBinaryDrainsWaitingRequestsOnSIGTERM(t *testing.T) {
	p := start(t, map[string]string{
		"RATE_LIMIT_BUCKET_CAPACITY":     "1",
		"RATE_LIMIT_REFILL_RATE_PER_MIN": "30", // a token every 2 s
		"RATE_LIMIT_MAX_WAIT_MS":         "10000",
	})
	p.post(secretKey, "film-1")

	// The second request waits about 2 s for its token.
	wrote := make(chan struct{})
	type answer struct {
		status int
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		body := strings.NewReader(`{"item_id": "film-1", "score": 2}`)
		req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/ratings", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", secretKey)
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
			close(wrote)
		}}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := (&http.Client{Timeout: readyWait}).Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		resp.Body.Close()
		answers <- answer{status: resp.StatusCode}
	}()
	<-wrote
	// Give the server a moment to read the request it was sent; the
	// request then waits far longer than this for its token.
	time.Sleep(300 * time.Millisecond)

	p.Signal(syscall.SIGTERM)
	a := <-answers
	if a.err != nil || a.status != http.StatusCreated {
		t.Errorf("in-flight request: status %d, error %v; want 201", a.status, a.err)
	}
	if code := p.Wait(readyWait); code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, p.Output())
	}
}
