// Package bucket implements token buckets that count tokens exactly, in
// memory and in Redis, and a fallback store that keeps enforcing limits
// from memory while Redis cannot be reached.
//
// A bucket holds at most Limit.Capacity tokens and gains Limit.Rate tokens
// a second, fractions included. A decision takes n tokens from the bucket
// of a key, or refuses when fewer than n are there. Every store answers
// with a Result that says how many whole tokens remain, how long until n
// tokens will be there, and how long until the bucket is full again.
//
// Three stores implement the Store interface:
//
//   - Memory keeps buckets in this process, bounded by a maximum number of
//     keys. It is the right choice for a single instance.
//   - Redis keeps buckets in Redis, so that every instance of a service
//     shares them. Each decision is one atomic Lua script call timed by
//     the Redis clock.
//   - Fallback asks Redis first and answers from memory when Redis fails,
//     without failing the caller, then writes the spending of the outage
//     back to Redis when it returns.
//
// No store logs. Fallback reports its state changes through an event hook.
package bucket
