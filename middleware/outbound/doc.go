// Package outbound limits the requests an HTTP client sends to a provider,
// so that many processes whose transports share one bucket.Store share the
// provider's quota instead of each spending all of it.
//
// A Transport wraps a base http.RoundTripper. Before each request it takes
// the request's cost from every quota's bucket, in the order the quotas
// were given, and the request goes only when every bucket has paid. When a
// bucket refuses, the tokens already taken from the others are given back
// with Store.Refund before the request waits, so that a waiting request
// holds nothing and no two requests hold each other's tokens. The same
// happens when the store fails, the context ends or the wait would be too
// long: a request that does not go leaves no bucket charged. The one
// exception is a refund that the store fails, which an EventWasted reports.
//
// After the response, a quota's Usage settles the cost: spending above the
// up-front cost (the tokens the provider reports a call used) is debited
// from the bucket, and the part of the estimate not used is given back.
//
// The provider's own answer wins: a 429 with Retry-After, or with one of
// the reset headers providers send, drains the key's buckets until then,
// which every process sharing the store sees, and the request is sent
// again when its body can be replayed.
//
// With a bucket.Fallback store, the quotas hold while Redis is down: each
// process enforces its share of every limit from memory. A refund made
// during the outage gives back at most what this process spent from
// memory in it; tokens taken from Redis before the outage stay spent.
package outbound
