package bucket

import (
	"context"
	"fmt"
	"time"
)

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

	f.switching.Lock()
	f.open.Store(false)
	outage := time.Duration(f.now() - f.current.Load().openedAt)
	debts = f.collectDebts(true)
	f.switching.Unlock()

	more, rest, _ := f.writeBack(ctx, debts)
	f.emit(Event{
		Kind:        EventFallbackOff,
		Outage:      outage,
		WrittenBack: written + more,
		Dropped:     dropped + len(rest),
	})
}

// debt is what memory did to a key during an outage that Redis has not
// seen: tokens spent, and a drain that still holds.
type debt struct {
	key          string
	limit        Limit
	tokens       int64
	drainedUntil int64 // table time, or zero
}

// collectDebts takes the unwritten spending and the drains that still hold
// out of every entry. With forget it also drops the outage's entries: once
// Redis decides again, only what Redis says counts.
func (f *Fallback) collectDebts(forget bool) []debt {
	now := f.now()
	var debts []debt
	f.table.each(func(key string, e *bucketState) bool {
		if e.drainedUntil <= now {
			e.drainedUntil = 0
		}
		if e.spent > 0 || e.drainedUntil != 0 {
			debts = append(debts, debt{
				key: key, limit: e.limit, tokens: max(e.spent, 0), drainedUntil: e.drainedUntil,
			})
			e.spent, e.drainedUntil = 0, 0
		}
		return !forget || e.outage == 0
	})
	return debts
}

// restoreDebts puts spending that could not be written back into its
// entries again, where they still exist.
func (f *Fallback) restoreDebts(debts []debt) {
	for _, d := range debts {
		if e := f.table.acquire(d.key, nil, 0); e != nil {
			e.spent += d.tokens
			e.drainedUntil = max(e.drainedUntil, d.drainedUntil)
			e.mu.Unlock()
		}
	}
}

// writeBackBatch is how many debits go to Redis in one pipeline.
const writeBackBatch = 256

// writeBack debits each debt from its Redis bucket and drains it for what
// is left of its drain, a batch per round trip. It returns how many keys it
// wrote, and the debts it did not write with the error that stopped it.
func (f *Fallback) writeBack(ctx context.Context, debts []debt) (int, []debt, error) {
	written := 0
	for len(debts) > 0 {
		batch := debts[:min(len(debts), writeBackBatch)]
		start := f.now()
		states, err := f.redis.settleAll(ctx, batch, start)
		if err != nil {
			return written, debts, err
		}
		for i, d := range batch {
			if states[i] == nil {
				continue // a drain that ended before it was sent
			}
			f.remember(d.key, d.limit, debit, *states[i], start)
		}
		written += len(batch)
		debts = debts[len(batch):]
	}
	return written, nil, nil
}

// settleAll makes the decisions that settle every debt, at table time now,
// in one pipeline: a debit of its tokens, then a drain for what is left of
// its drain. It returns the state Redis reports after the last decision of
// each debt, in order, nil for a debt left with nothing to settle; or the
// first error.
func (r *Redis) settleAll(ctx context.Context, debts []debt, now int64) ([]*redisState, error) {
	batch := make([]*call, 0, len(debts))
	last := make([]int, len(debts))
	for i, d := range debts {
		name := r.KeyName(d.key)
		last[i] = -1
		if d.tokens > 0 {
			req := request{kind: debit, n: d.tokens}
			batch = append(batch, &call{ctx: ctx, key: name, args: req.args(d.limit)})
		}
		if hold := time.Duration(d.drainedUntil - now); hold > 0 {
			req := request{kind: drain, hold: hold}
			batch = append(batch, &call{ctx: ctx, key: name, args: req.args(d.limit)})
		}
		if len(batch) > 0 && batch[len(batch)-1].key == name {
			last[i] = len(batch) - 1
		}
	}
	if len(batch) == 0 {
		return make([]*redisState, len(debts)), nil
	}
	r.batch.send(batch)

	for _, cl := range batch {
		if cl.err != nil {
			return nil, fmt.Errorf("bucket: write back: %w", cl.err)
		}
	}
	states := make([]*redisState, len(debts))
	for i := range debts {
		if last[i] >= 0 {
			states[i] = &batch[last[i]].reply.state
		}
	}
	return states, nil
}
