package bucket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a store that keeps buckets in Redis, so that every process that
// uses the same Redis shares them. A Lua script makes each decision: it
// reads, refills, takes and writes the bucket atomically, timed by the Redis
// clock, so that processes with skewed clocks agree and two processes never
// spend the same token.
//
// Decisions that wait at the same moment travel together: one pipelined
// write, and one script call for all the decisions on one node (on a
// Cluster, in one hash slot, so that every call stays legal there), which
// makes them in turn, each still atomic. A decision that finds nothing
// else waiting is sent at once.
//
// The zero value is not usable; call NewRedis. It is safe for concurrent
// use.
type Redis struct {
	client redis.UniversalClient
	prefix string
	batch  *coalescer
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on client, which may be a single node, a
// Sentinel or a Cluster client. It uses WithPrefix. It does no I/O.
func NewRedis(client redis.UniversalClient, opts ...Option) *Redis {
	o := buildOptions(opts)
	return &Redis{client: client, prefix: o.prefix, batch: newCoalescer(client)}
}

// Take implements Store.
func (r *Redis) Take(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	res, _, err := r.do(ctx, key, limit, request{kind: take, n: n})
	return res, err
}

// Debit implements Store.
func (r *Redis) Debit(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	res, _, err := r.do(ctx, key, limit, request{kind: debit, n: n})
	return res, err
}

// Refund implements Store.
func (r *Redis) Refund(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	res, _, err := r.do(ctx, key, limit, request{kind: refund, n: n})
	return res, err
}

// Drain implements Store.
func (r *Redis) Drain(
	ctx context.Context, key string, limit Limit, d time.Duration,
) (Result, error) {
	res, _, err := r.do(ctx, key, limit, request{kind: drain, hold: d})
	return res, err
}

// KeyName returns the Redis key that holds the bucket of key: the prefix
// and the first 32 hex digits of the SHA-256 of key. Keys are often
// credentials, so they never appear in Redis themselves.
func (r *Redis) KeyName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return r.prefix + ":" + hex.EncodeToString(sum[:16])
}

// redisState is what a script call reports of a bucket.
type redisState struct {
	tokens float64 // tokens after the decision
	micros int64   // Redis time of the decision, in microseconds
}

func (r *Redis) do(
	ctx context.Context, key string, limit Limit, req request,
) (Result, redisState, error) {
	return r.doBy(ctx, time.Time{}, key, limit, req)
}

// doBy makes the decision, giving up at deadline unless it is zero.
func (r *Redis) doBy(
	ctx context.Context, deadline time.Time, key string, limit Limit, req request,
) (Result, redisState, error) {
	if err := limit.check(req); err != nil {
		return Result{}, redisState{}, err
	}

	reply, err := r.batch.run(ctx, deadline, r.KeyName(key), req.args(limit))
	if err != nil {
		return Result{}, redisState{}, fmt.Errorf("bucket: redis: %w", err)
	}
	return limit.resultOf(req, reply.allowed, reply.state.tokens, BackendRedis), reply.state, nil
}

// args returns the script arguments of req under limit.
func (req request) args(limit Limit) []any {
	amount := req.n
	if req.kind == drain {
		amount = req.hold.Microseconds()
	}
	return []any{
		limit.Capacity,
		strconv.FormatFloat(limit.Rate, 'g', -1, 64),
		int(req.kind),
		amount,
	}
}
