package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/processtest"
	"github.com/openclaw/ratelimit/internal/redistest"
)

// api is a running ratingapi process that a test started.
type api struct {
	*processtest.Process
	t    testing.TB
	env  map[string]string
	addr string
}

// httpClient is the client of every process test: no keep-alive, so that
// each request is one short connection, and a generous timeout that only
// ends a test that would hang.
var httpClient = &http.Client{
	Timeout:   patience,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// startAPI runs the binary with env on a free loopback port, waits until
// /healthz answers, and kills it when the test ends.
func startAPI(t testing.TB, env map[string]string) *api {
	t.Helper()
	a := &api{t: t, addr: "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))}
	a.env = map[string]string{"LISTEN_ADDR": a.addr}
	maps.Copy(a.env, env)
	a.start()
	return a
}

func (a *api) start() {
	a.t.Helper()
	a.Process = processtest.Start(a.t, binary, a.env)
	a.WaitReady(a.url("/healthz"), patience)
}

// restart stops the process with SIGTERM, as an orchestrator would, and
// starts it again with the same settings. Output and LogLines then read
// the new process.
func (a *api) restart() {
	a.t.Helper()
	a.Stop(patience)
	a.start()
}

func (a *api) url(path string) string {
	return "http://" + a.addr + path
}

// rate posts a rating of item with key and returns the status. Transport
// errors fail the test: the service must always answer.
func (a *api) rate(key, item string) int {
	a.t.Helper()
	body := fmt.Sprintf(`{"item_id":%q,"score":4}`, item)
	req, err := http.NewRequest(http.MethodPost, a.url("/v1/ratings"), strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	res, err := httpClient.Do(req)
	if err != nil {
		a.t.Errorf("POST /v1/ratings: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// rateUntilRefused posts ratings with key until one gets 429 and returns
// how many got 201. Any other status fails the test.
func (a *api) rateUntilRefused(key string, most int) int {
	a.t.Helper()
	for n := 0; n <= most; n++ {
		switch code := a.rate(key, "item"); code {
		case http.StatusCreated:
		case http.StatusTooManyRequests:
			return n
		default:
			a.t.Fatalf("rating %d got %d, want 201 or 429", n, code)
		}
	}
	a.t.Fatalf("no 429 after %d ratings", most)
	return 0
}

// health returns the fallback_active field of /healthz.
func (a *api) fallbackActive() bool {
	a.t.Helper()
	res, err := httpClient.Get(a.url("/healthz"))
	if err != nil {
		a.t.Fatalf("GET /healthz: %v", err)
	}
	defer res.Body.Close()
	var h struct {
		Status         string `json:"status"`
		FallbackActive bool   `json:"fallback_active"`
	}
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil || res.StatusCode != 200 {
		a.t.Fatalf("GET /healthz: %d, %v", res.StatusCode, err)
	}
	return h.FallbackActive
}

// metrics returns the text of /metrics.
func (a *api) metrics() string {
	a.t.Helper()
	res, err := httpClient.Get(a.url("/metrics"))
	if err != nil {
		a.t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// keyName returns the Redis key of the bucket of key under the default
// prefix, as every instance computes it.
func keyName(key string) string {
	return bucket.NewRedis(nil).KeyName(key)
}

// apiEnv returns the environment of a process on Redis at redisURL with a
// bucket of capacity that refills far below one token over a test, and a
// short probe interval.
func apiEnv(redisURL string, capacity int) map[string]string {
	return map[string]string{
		"REDIS_URL":                      redisURL,
		"RATE_LIMIT_BUCKET_CAPACITY":     strconv.Itoa(capacity),
		"RATE_LIMIT_REFILL_RATE_PER_MIN": "0.01",
		"REDIS_RETRY_INTERVAL_MS":        "50",
		"REDIS_TIMEOUT_MS":               "500",
	}
}
