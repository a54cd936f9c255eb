package bucket

import (
	"context"
	_ "embed"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed heartbeat.lua
var heartbeatSource string

var heartbeatScript = redis.NewScript(heartbeatSource)

// heartbeatLife is how many probe intervals a heartbeat counts for.
const heartbeatLife = 3

// watch runs in the background until Close: while Redis is healthy it
// sends the heartbeat, which also notices a Redis that died while no
// request came; during an outage it probes Redis and returns to it after
// enough good probes in a row.
func (f *Fallback) watch() {
	defer close(f.stopped)

	good := 0
	wait := time.Duration(0) // the first heartbeat goes out at once
	timer := time.NewTimer(wait)
	defer timer.Stop()

	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.wake:
			// The breaker just opened: probe one interval from now.
			good = 0
			timer.Reset(jitter(f.opts.probeInterval))
			continue
		case <-timer.C:
		}

		err := f.heartbeat()
		switch {
		case !f.open.Load():
			if err != nil && f.ctx.Err() == nil {
				f.trip(err)
			}
			good = 0
		case err != nil:
			good = 0
		default:
			good++
			if good >= f.opts.probesToClose {
				f.reconcile()
				good = 0
			}
		}

		// Once a probe succeeds, the confirming probes come sooner, so that
		// a recovered Redis is used again about one interval after it
		// returns.
		next := f.opts.probeInterval
		if good > 0 {
			next /= time.Duration(2 * f.opts.probesToClose)
		}
		timer.Reset(jitter(next))
	}
}

// jitter returns d moved at random by up to a fifth either way.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// heartbeat records this instance in Redis and learns how many share it.
// On a Cluster it also pings every master, so that the breaker stays open
// while any part of the key space is unreachable.
func (f *Fallback) heartbeat() error {
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.timeout)
	defer cancel()

	err := f.ping(ctx)
	if err == nil {
		var n int64
		n, err = f.sendHeartbeat(ctx)
		if err == nil {
			f.instances.Store(max(1, n))
			return nil
		}
	}
	if f.ctx.Err() == nil {
		f.emit(Event{Kind: EventRedisError, Err: err})
	}
	return err
}

// sendHeartbeat runs the heartbeat script through a pipeline, as decisions
// go, so that the connections decisions use stay open through quiet spells
// and a decision after one does not pay for a new connection within its
// deadline. A pipeline cannot fall back from EVALSHA, so the small script
// goes whole.
func (f *Fallback) sendHeartbeat(ctx context.Context) (int64, error) {
	life := max(heartbeatLife*f.opts.probeInterval.Milliseconds(), 1)
	pipe := f.redis.client.Pipeline()
	cmd := heartbeatScript.Eval(ctx, pipe, []string{f.instancesKey()}, f.id, life)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	return cmd.Int64()
}

// TODO: the breaker is one for the whole client. On a Cluster with a master
// down, keys on the healthy masters are decided from memory too, until the
// master returns; a breaker per node would keep them on Redis, at the cost
// of routing each decision through the cluster's slot map here.
func (f *Fallback) ping(ctx context.Context) error {
	cluster, ok := f.redis.client.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	return cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		return node.Ping(ctx).Err()
	})
}

func (f *Fallback) instancesKey() string {
	return f.redis.prefix + ":instances"
}
