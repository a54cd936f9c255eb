package bucket

import (
	"context"
	_ "embed"
	"fmt"
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

// reconcile writes the outage's spending back to Redis and closes the
// breaker. Most spending is written while memory still decides, so that
// Redis knows it before it decides again; what is spent meanwhile is
// written right after the switch.
func (f *Fallback) reconcile() {
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.writeBackLimit)
	defer cancel()

	debts := f.collectDebts(false)
	written, rest, err := f.writeBack(ctx, debts)
	if err != nil && ctx.Err() == nil {
		// Redis failed again: keep the spending for the next attempt.
		f.restoreDebts(rest)
		return
	}
	dropped := len(rest)

	f.mu.Lock()
	f.open.Store(false)
	outage := time.Duration(f.now() - f.openedAt)
	debts = f.collectDebts(true)
	f.mu.Unlock()

	more, rest, _ := f.writeBack(ctx, debts)
	f.emit(Event{
		Kind:        EventFallbackOff,
		Outage:      outage,
		WrittenBack: written + more,
		Dropped:     dropped + len(rest),
	})
}

// debt is spending from memory that Redis has not seen.
type debt struct {
	key    string
	limit  Limit
	tokens int64
}

// collectDebts takes the unwritten spending out of every entry. With
// forget it also drops the outage's entries: once Redis decides again, only
// what Redis says counts.
func (f *Fallback) collectDebts(forget bool) []debt {
	var debts []debt
	f.table.each(func(key string, e *entry) bool {
		if e.spent > 0 {
			debts = append(debts, debt{key: key, limit: e.limit, tokens: e.spent})
			e.spent = 0
		}
		return !forget || e.outage == 0
	})
	return debts
}

// restoreDebts puts spending that could not be written back into its
// entries again, where they still exist.
func (f *Fallback) restoreDebts(debts []debt) {
	for _, d := range debts {
		s := f.table.lock(d.key)
		if e := s.entries[d.key]; e != nil {
			e.spent += d.tokens
		}
		s.mu.Unlock()
	}
}

// writeBackBatch is how many debits go to Redis in one pipeline.
const writeBackBatch = 256

// writeBack debits each debt from its Redis bucket, a batch per round
// trip. It returns how many keys it wrote, and the debts it did not write
// with the error that stopped it.
func (f *Fallback) writeBack(ctx context.Context, debts []debt) (int, []debt, error) {
	written := 0
	for len(debts) > 0 {
		batch := debts[:min(len(debts), writeBackBatch)]
		start := f.now()
		states, err := f.redis.debitAll(ctx, batch)
		if err != nil {
			return written, debts, err
		}
		for i, d := range batch {
			f.remember(d.key, d.limit, debit, states[i], start)
		}
		written += len(batch)
		debts = debts[len(batch):]
	}
	return written, nil, nil
}

// debitAll debits every debt in one pipeline and returns the states Redis
// reports, in order.
func (r *Redis) debitAll(ctx context.Context, debts []debt) ([]redisState, error) {
	states, err := r.pipelineDebits(ctx, debts)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A pipeline cannot fall back to EVAL command by command.
		if err := bucketScript.Load(ctx, r.client).Err(); err != nil {
			return nil, err
		}
		states, err = r.pipelineDebits(ctx, debts)
	}
	return states, err
}

func (r *Redis) pipelineDebits(ctx context.Context, debts []debt) ([]redisState, error) {
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(debts))
	for i, d := range debts {
		req := request{kind: debit, n: d.tokens}
		cmds[i] = bucketScript.EvalSha(ctx, pipe, []string{r.KeyName(d.key)}, req.args(d.limit)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}

	states := make([]redisState, len(debts))
	for i, cmd := range cmds {
		_, state, err := parseReply(cmd.Val())
		if err != nil {
			return nil, fmt.Errorf("bucket: write back: %w", err)
		}
		states[i] = state
	}
	return states, nil
}
