package outbound

import (
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
	// debited from the bucket, and what it returns below is given back to
	// it. Nil, or a result of zero, leaves the Cost as it was taken: zero
	// is what a missing header reads as.
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
