package outbound

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/openclaw/ratelimit/bucket"
)

// Quota is one limit that every request must pass, such as a provider's
// requests per minute or tokens per minute. Each key has its own bucket for
// each quota.
type Quota struct {
	// Name tells the quota's bucket apart from the other quotas of the same
	// key, and names the quota in errors and events. The names of a
	// Transport's quotas must differ.
	Name string

	// Limit is the bucket's capacity and refill rate.
	Limit bucket.Limit

	// Cost returns the tokens a request takes before it goes. Nil costs one
	// token. A cost of zero exempts the request from the quota; a negative
	// cost fails the request.
	Cost func(*http.Request) int64

	// Usage returns what a request actually cost, once its response is
	// known, for example from a header in which the provider reports the
	// tokens it spent. What it returns above the Cost taken before is
	// debited from the bucket. Nil, or a result of zero, debits nothing.
	Usage func(*http.Response) int64
}

// cost returns the up-front cost of req under q.
func (q Quota) cost(req *http.Request) int64 {
	if q.Cost == nil {
		return 1
	}
	return q.Cost(req)
}

// bucketKey returns the key of q's bucket for the requests of key.
func (q Quota) bucketKey(key string) string {
	if q.Name == "" {
		return key
	}
	return key + "#" + q.Name
}

// HeaderUsage returns a Usage function that reads a whole number of tokens
// from the response header name, for example the total tokens a provider
// says a call spent. A missing or malformed header counts as zero.
func HeaderUsage(name string) func(*http.Response) int64 {
	return func(resp *http.Response) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(resp.Header.Get(name)), 10, 64)
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
}

// Refunder is a Store that can give back tokens taken for a request that
// then did not go. Refund adds n tokens to the bucket of key, never above
// the capacity. A Transport whose store implements Refunder uses it, so
// that no bucket is charged for a request that did not go; with any other
// store, such tokens stay spent and an EventWasted reports them.
type Refunder interface {
	Refund(ctx context.Context, key string, limit bucket.Limit, n int64) (bucket.Result, error)
}
