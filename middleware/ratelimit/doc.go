// Package ratelimit is HTTP middleware that limits requests with the token
// buckets of package bucket.
//
// New wraps any http.Handler, so it works with plain net/http and with
// routers such as chi:
//
//	store := bucket.NewMemory()
//	handler := ratelimit.New(store, bucket.PerMinute(500, 500))(mux)
//
// By default each request is counted against the bucket of its X-API-Key
// header, costs one token, and is refused with 429 and a JSON body once
// the bucket is empty. Every limited response carries the X-RateLimit-*
// headers and the RateLimit-Policy and RateLimit fields of the IETF
// draft on rate limit headers. Options change the key, give keys their
// own limits, give requests their own costs, replace the denied response,
// choose what a store error does, only report (shadow mode), wait for
// tokens instead of refusing, and observe each decision.
//
// The package never logs. Observers see the outcome of each decision but
// never the key, since keys are often credentials.
package ratelimit
