package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bounds of the warm-up: REDIS_TIMEOUT_MS times warmUpTimeouts, within
// minWarmUp and maxWarmUp.
const (
	warmUpTimeouts = 10
	minWarmUp      = 2 * time.Second
	maxWarmUp      = 30 * time.Second
)

// warmUp connects to Redis before the store makes its first call. Dialing,
// the TLS handshake and AUTH then get a deadline of their own, far longer
// than that of one call, instead of all falling within the first call's,
// which a slow start would miss, opening the breaker. The result is only
// logged: a Redis that does not answer is the fallback store's to handle,
// not a reason to stay down.
func warmUp(ctx context.Context, client redis.UniversalClient, rc *redisConfig,
	logger *slog.Logger) {
	wait := min(max(minWarmUp, warmUpTimeouts*rc.timeout), maxWarmUp)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()

	start := time.Now()
	err := ping(ctx, client)
	took := time.Since(start).Round(time.Millisecond).String()
	if err != nil {
		logger.Warn("redis_not_ready", "redis", rc.addr(), "reason", err.Error(),
			"waited", took, "then", "decisions fall back to memory until Redis answers")
		return
	}
	logger.Info("redis_ready", "redis", rc.addr(), "took", took)
}

// ping asks Redis for PONG once alone and once in a pipeline: go-redis
// keeps the connections of pipelines, which carry the decisions, in a pool
// of their own. On a Cluster it asks every master, which also loads the map
// of the slots.
func ping(ctx context.Context, client redis.UniversalClient) error {
	cluster, ok := client.(*redis.ClusterClient)
	if !ok {
		return pingBoth(ctx, client)
	}
	return cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		return pingBoth(ctx, node)
	})
}

func pingBoth(ctx context.Context, client redis.UniversalClient) error {
	if err := client.Ping(ctx).Err(); err != nil {
		return err
	}
	_, err := client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		return pipe.Ping(ctx).Err()
	})
	return err
}
