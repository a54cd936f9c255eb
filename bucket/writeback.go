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
// reports, in order, or the first error.
func (r *Redis) debitAll(ctx context.Context, debts []debt) ([]redisState, error) {
	batch := make([]*call, len(debts))
	for i, d := range debts {
		req := request{kind: debit, n: d.tokens}
		batch[i] = &call{ctx: ctx, key: r.KeyName(d.key), args: req.args(d.limit)}
	}
	r.batch.send(batch)

	states := make([]redisState, len(debts))
	for i, cl := range batch {
		if cl.err != nil {
			return nil, fmt.Errorf("bucket: write back: %w", cl.err)
		}
		states[i] = cl.reply.state
	}
	return states, nil
}
