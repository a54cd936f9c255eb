package outbound

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
)

// The shared quota tests run agents as real processes: the test binary
// started again in helper mode, each with its own Redis client and its own
// Fallback store, against one Redis and one fake provider in the parent.
//
// The numbers, and the bound the tests hold the code to: the provider
// counts requests in fixed windows of window and answers 429 past
// providerQuota in a window. The agents' bucket has capacity
// agentLimit.Capacity and refills that much per window. A token bucket
// admits at most its capacity plus one window's refill in any interval of
// one window, so 2 x 10 = 20 here, full bucket at the start included, and
// a fixed window of the provider is such an interval. The provider's quota
// leaves 10 above that bound, for the time between a take and the
// provider seeing the request (half a second of it on a loaded machine is
// 5 tokens) and, when Redis dies, for the spending of the last moments
// before the outage that an instance had not yet seen from Redis (which
// Fallback's 1/N share starts from). Four agents that did not share the
// quota would send about 4 x 20 = 80 in a window.
const (
	agents        = 4
	window        = time.Second
	providerQuota = 30
)

var agentLimit = bucket.Limit{Capacity: 10, Rate: 10 / window.Seconds()}

// Environment of the helper processes.
const (
	helperEnv   = "OUTBOUND_SHARED_HELPER"
	providerEnv = "OUTBOUND_PROVIDER_URL"
	redisEnv    = "OUTBOUND_REDIS_ADDR"
	requestsEnv = "OUTBOUND_REQUESTS"
)

// TestSharedQuota: 40 requests, the first 10 from the full bucket and the
// rest at 10 a second, take about 3 seconds.
func TestSharedQuota(t *testing.T) {
	runAgents(t, 10, 0)
}

// TestSharedQuotaRedisKilled kills Redis after a third of the requests, so
// that 40 are left to send from memory: more than the provider's quota, so
// that agents that each took the whole quota once Redis died (4 x 10 a
// second) would push a window past it, while agents that keep to their
// share send them in about 4 seconds.
func TestSharedQuotaRedisKilled(t *testing.T) {
	runAgents(t, 15, 20)
}

// runAgents starts the agents on one Redis, each sending perAgent
// requests, and checks that together they never pushed the provider past
// its quota and that every request succeeded. With killAfter above zero,
// Redis is killed with SIGKILL once that many requests have reached the
// provider.
func runAgents(t *testing.T, perAgent, killAfter int) {
	srv := redistest.Start(t)
	prov := newWindowProvider(t)
	total := agents * perAgent
	kill := killAfter > 0

	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, agents)
	errs := make([]error, agents)
	for i := range agents {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSharedHelper$", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"=1",
			providerEnv+"="+prov.URL, redisEnv+"="+srv.Addr(),
			requestsEnv+"="+strconv.Itoa(perAgent))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
		wg.Go(func() {
			errs[i] = cmd.Wait()
			timer.Stop()
		})
	}

	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()

	killedAt := 0
	if kill {
		for prov.stats().arrived < killAfter && !waittest.Closed(finished) {
			time.Sleep(5 * time.Millisecond)
		}
		srv.Kill()
		killedAt = prov.stats().arrived
	}
	<-finished

	for i, err := range errs {
		if err != nil {
			t.Errorf("agent %d: %v\n%s", i, err, outs[i].String())
			continue
		}
		want := fmt.Sprintf("agent done: %d ok, fallback %v", perAgent, kill)
		if !strings.Contains(outs[i].String(), want) {
			t.Errorf("agent %d did not report %q:\n%s", i, want, outs[i].String())
		}
	}

	s := prov.stats()
	t.Logf("provider: %d requests, %d refused, at most %d in a window of %v (quota %d)",
		s.arrived, s.refused, s.most, window, providerQuota)
	if kill {
		t.Logf("Redis killed after %d requests", killedAt)
	}
	if s.refused != 0 || s.most > providerQuota {
		t.Errorf("the agents pushed the provider past its quota: %d in one window, %d refused",
			s.most, s.refused)
	}
	if s.arrived != total {
		t.Errorf("provider saw %d requests, want %d", s.arrived, total)
	}
	if kill && killedAt >= total {
		t.Errorf("every request had gone before Redis was killed")
	}
}

// TestMain leaves TestSharedHelper out of ordinary runs: it is one agent,
// and runs only in the processes that the shared quota tests start with
// helperEnv set.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(helperEnv) == "" {
		skip := "^TestSharedHelper$"
		if given := flag.Lookup("test.skip").Value.String(); given != "" {
			skip = given + "|" + skip
		}
		if err := flag.Set("test.skip", skip); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// TestSharedHelper is one agent of the shared quota tests.
func TestSharedHelper(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: os.Getenv(redisEnv), MaxRetries: -1})
	defer client.Close()
	store := bucket.NewFallback(client, bucket.WithProbeInterval(300*time.Millisecond))
	defer store.Close()

	// Every agent counts the others before any starts, so that each keeps
	// to its share of the quota if Redis dies.
	ctx := context.Background()
	waittest.Until(t, "every agent to count the others", func() bool {
		return store.Instances() >= agents
	})
	if err := client.Incr(ctx, "outbound:test:ready").Err(); err != nil {
		t.Fatal(err)
	}
	waittest.Until(t, "every agent to be ready", func() bool {
		n, err := client.Get(ctx, "outbound:test:ready").Int()
		return err == nil && n >= agents
	})

	httpClient := &http.Client{Transport: New(store,
		WithQuota(Quota{Name: "requests", Limit: agentLimit}),
		WithMaxWait(30*time.Second),
		WithRetries(5),
	)}
	perAgent, err := strconv.Atoi(os.Getenv(requestsEnv))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu sync.Mutex
		ok int
		wg sync.WaitGroup
	)
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < perAgent; i += 2 {
				resp, err := httpClient.Get(os.Getenv(providerEnv))
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("request %d: status %d", i, resp.StatusCode)
					continue
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Printf("agent done: %d ok, fallback %v\n", ok, store.Active())
}

// windowProvider is a fake provider that counts requests in fixed windows
// and answers 429, with Retry-After until the window ends, past its quota.
type windowProvider struct {
	*httptest.Server
	start time.Time

	mu     sync.Mutex
	counts map[int64]int
	total  windowStats
}

type windowStats struct {
	arrived int
	refused int
	most    int // most requests that arrived in one window
}

func newWindowProvider(t *testing.T) *windowProvider {
	p := &windowProvider{start: time.Now(), counts: make(map[int64]int)}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *windowProvider) serve(w http.ResponseWriter, _ *http.Request) {
	elapsed := time.Since(p.start)
	n := int64(elapsed / window)

	p.mu.Lock()
	p.counts[n]++
	count := p.counts[n]
	p.total.arrived++
	p.total.most = max(p.total.most, count)
	if count > providerQuota {
		p.total.refused++
	}
	p.mu.Unlock()

	if count > providerQuota {
		left := time.Duration(n+1)*window - elapsed
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds()))))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func (p *windowProvider) stats() windowStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}
