package outbound_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/outbound"
)

// An agent's client keeps to a provider's requests and tokens per minute.
// Every process built this way on the same Redis shares the quotas; the
// memory store here stands in for it.
func Example() {
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Usage-Total-Tokens", "1200")
	}))
	defer provider.Close()

	store := bucket.NewMemory() // bucket.NewFallback(redisClient) in production
	client := &http.Client{Transport: outbound.New(store,
		outbound.WithQuota(outbound.Quota{
			Name:  "requests",
			Limit: bucket.PerMinute(500, 500),
		}),
		outbound.WithQuota(outbound.Quota{
			Name:  "tokens",
			Limit: bucket.PerMinute(30_000, 30_000),
			Usage: outbound.HeaderUsage("X-Usage-Total-Tokens"),
		}),
	)}

	resp, err := client.Get(provider.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// Processes that share one Redis share the quota; while Redis is down,
// each keeps to its share of it from memory.
func ExampleNew_redis() {
	store := bucket.NewFallback(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}))
	defer store.Close()

	client := &http.Client{Transport: outbound.New(store,
		outbound.WithQuota(outbound.Quota{Name: "requests", Limit: bucket.PerMinute(60, 60)}),
	)}
	_ = client // client.Post(...) as usual
}
