// Package outbound limits the requests an HTTP client sends to a provider,
// so that many processes whose transports share one bucket.Store share the
// provider's quota instead of each spending all of it.
//
// A Transport wraps a base http.RoundTripper. Before each request it takes
// the request's cost from every quota's bucket, waiting for the tokens as
// long as the request's context and the maximum wait allow. A request goes
// only when every bucket has paid, and buckets are always taken in the
// order the quotas were given, so that two requests never hold each
// other's tokens. After the response, spending that only the response
// reveals (token usage reported by the provider) is debited from the same
// buckets.
//
// The provider's own answer wins: a 429 with Retry-After, or with one of
// the reset headers providers send, drains the key's buckets until then,
// which every process sharing the store sees, and the request is sent
// again when its body can be replayed.
//
// With a bucket.Fallback store, the quotas hold while Redis is down: each
// process enforces its share of every limit from memory.
package outbound
