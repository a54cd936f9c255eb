package bucket

import (
	"context"
	"time"
)

// Memory is a store that keeps buckets in this process. It holds at most
// the number of keys set by WithMaxKeys, and drops full buckets first when
// it needs room. The zero value is not usable; call NewMemory. It is safe
// for concurrent use.
type Memory struct {
	table *table
	clock Clock
	epoch time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns a memory store. It uses WithMaxKeys and WithClock.
func NewMemory(opts ...Option) *Memory {
	o := buildOptions(opts)
	return &Memory{table: newTable(o.maxKeys), clock: o.clock, epoch: o.clock.Now()}
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string, limit Limit, n int64) (Result, error) {
	return m.do(key, limit, request{kind: take, n: n})
}

// Debit implements Store.
func (m *Memory) Debit(_ context.Context, key string, limit Limit, n int64) (Result, error) {
	return m.do(key, limit, request{kind: debit, n: n})
}

// Refund implements Store.
func (m *Memory) Refund(_ context.Context, key string, limit Limit, n int64) (Result, error) {
	return m.do(key, limit, request{kind: refund, n: n})
}

// Drain implements Store.
func (m *Memory) Drain(
	_ context.Context, key string, limit Limit, d time.Duration,
) (Result, error) {
	return m.do(key, limit, request{kind: drain, hold: d})
}

// Len returns the number of keys held.
func (m *Memory) Len() int {
	return m.table.len()
}

func (m *Memory) do(key string, limit Limit, req request) (Result, error) {
	if err := limit.check(req); err != nil {
		return Result{}, err
	}
	now := elapsed(m.clock, m.epoch)

	start := bucketState{limit: limit, tokens: float64(limit.Capacity), at: now}
	e := m.table.acquire(key, &start, now)
	allowed, tokens := limit.apply(req, e.tokensAt(limit, now))
	e.record(limit, allowed, tokens, now)
	e.mu.Unlock()

	return limit.resultOf(req, allowed, tokens, BackendMemory), nil
}
