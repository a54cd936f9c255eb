package bucket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fallback is a store that decides with Redis while Redis answers, and from
// memory while it does not, without ever failing a caller because Redis
// did.
//
// Every Redis call has a deadline (WithTimeout). The first failure opens a
// breaker: decisions come from memory at once, and only a background probe
// talks to Redis, every probe interval with jitter, until several probes in
// a row succeed (WithProbesToClose). The store then writes the outage's
// spending back to Redis as a debit on each key, and decides with Redis
// again.
//
// While Redis is healthy, the store remembers the last state Redis reported
// for each key, within the bound set by WithMaxKeys. That memory serves two
// ends. A key whose remembered tokens, refilled since, are fewer than a
// request asks for is refused without asking Redis, since its Redis bucket
// can only hold fewer. And when Redis fails, a key starts from its
// remembered state, so a drained key stays drained.
//
// The store also keeps a heartbeat in Redis, from which it learns how many
// instances share the limits. During an outage, an instance that saw N
// instances enforces 1/N of every limit: it starts each key with 1/N of the
// tokens it remembers (1/N of the capacity for a key it has no state for),
// refills at 1/N of the rate, and holds at most 1/N of the capacity. N
// instances cut off together therefore admit at most one capacity plus one
// rate's refill over the outage, as a single healthy Redis would, and never
// burst past one capacity together.
//
// The zero value is not usable; call NewFallback, and Close when done. It is
// safe for concurrent use.
type Fallback struct {
	redis *Redis
	table *table
	clock Clock
	epoch time.Time
	opts  options
	id    string

	open      atomic.Bool
	instances atomic.Int64

	switching sync.Mutex                  // held while the breaker switches
	current   atomic.Pointer[outageState] // the current or last outage, nil before one

	wake      chan struct{}
	ctx       context.Context // ends on Close
	stop      context.CancelFunc
	stopped   chan struct{}
	closeOnce sync.Once
}

var _ Store = (*Fallback)(nil)

// NewFallback returns a store that uses client and falls back to memory. It
// uses every option. It does no I/O itself; a background goroutine, which
// Close stops, sends the heartbeat and probes.
//
// The client should have ContextTimeoutEnabled set, so that go-redis
// applies each call's deadline to the connection: otherwise a decision
// abandoned at its deadline may still be sent once Redis answers again, and
// its tokens are then spent twice, in Redis and in memory.
func NewFallback(client redis.UniversalClient, opts ...Option) *Fallback {
	o := buildOptions(opts)
	ctx, stop := context.WithCancel(context.Background())
	f := &Fallback{
		redis:   NewRedis(client, opts...),
		table:   newTable(o.maxKeys),
		clock:   o.clock,
		epoch:   o.clock.Now(),
		opts:    o,
		id:      newInstanceID(),
		wake:    make(chan struct{}, 1),
		ctx:     ctx,
		stop:    stop,
		stopped: make(chan struct{}),
	}
	f.instances.Store(1)
	go f.watch()
	return f
}

// Take implements Store.
func (f *Fallback) Take(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	return f.do(ctx, key, limit, request{kind: take, n: n})
}

// Debit implements Store.
func (f *Fallback) Debit(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	return f.do(ctx, key, limit, request{kind: debit, n: n})
}

// Refund implements Store. During an outage it gives back no more than this
// instance took from memory in the outage: tokens taken from Redis before
// it are spent where the other instances can see them.
func (f *Fallback) Refund(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	return f.do(ctx, key, limit, request{kind: refund, n: n})
}

// Drain implements Store. During an outage it drains the memory bucket of
// this instance, and when Redis returns, the Redis bucket for what is left
// of d, so that every instance holds off.
func (f *Fallback) Drain(
	ctx context.Context, key string, limit Limit, d time.Duration,
) (Result, error) {
	return f.do(ctx, key, limit, request{kind: drain, hold: d})
}

// Active reports whether decisions come from memory because Redis failed.
func (f *Fallback) Active() bool {
	return f.open.Load()
}

// Instances returns how many instances the last heartbeat counted, this
// one included.
func (f *Fallback) Instances() int {
	return int(f.instances.Load())
}

// Redis returns the Redis store that f asks first.
func (f *Fallback) Redis() *Redis {
	return f.redis
}

// Close stops the background goroutine and removes this instance from the
// heartbeat, so that the others stop counting it. It does not close the
// Redis client. Decisions made after Close still work.
func (f *Fallback) Close() error {
	f.closeOnce.Do(func() {
		f.stop()
		<-f.stopped

		ctx, cancel := context.WithTimeout(context.Background(), f.opts.timeout)
		defer cancel()
		f.redis.client.ZRem(ctx, f.instancesKey(), f.id)
	})
	return nil
}

func (f *Fallback) do(ctx context.Context, key string, limit Limit, req request) (Result, error) {
	if err := limit.check(req); err != nil {
		return Result{}, err
	}

	for {
		if !f.open.Load() {
			if req.kind == take {
				if res, ok := f.refusedBefore(key, limit, req.n); ok {
					return res, nil
				}
			}
			res, err := f.ask(ctx, key, limit, req)
			if err == nil {
				return res, nil
			}
			if ctx.Err() != nil {
				// The caller gave up: that says nothing about Redis.
				return Result{}, ctx.Err()
			}
			f.trip(err)
		}

		// The breaker may have closed since it was read; then ask Redis.
		if res, ok := f.decideInMemory(key, limit, req); ok {
			return res, nil
		}
	}
}

// now returns the time of the memory buckets.
func (f *Fallback) now() int64 {
	return elapsed(f.clock, f.epoch)
}

// ask makes the decision with Redis, within the deadline of one call, and
// remembers what Redis said.
func (f *Fallback) ask(ctx context.Context, key string, limit Limit, req request) (Result, error) {
	deadline := time.Now().Add(f.opts.timeout)

	// The state Redis reports is dated to before the call, so that the time
	// the answer spent on the wire is never counted as refill.
	start := f.now()
	res, state, err := f.redis.doBy(ctx, deadline, key, limit, req)
	if err != nil {
		f.emit(Event{Kind: EventRedisError, Err: err})
		return res, err
	}
	f.remember(key, limit, req.kind, state, start)
	return res, nil
}

// remember records what Redis said of key, in answer to a request of kind,
// at table time at.
func (f *Fallback) remember(key string, limit Limit, kind requestKind, state redisState, at int64) {
	if f.open.Load() {
		return
	}

	// A full bucket is what a key without state starts with anyway.
	var start *bucketState
	if state.tokens < float64(limit.Capacity) {
		start = &bucketState{limit: limit, tokens: state.tokens, at: at, redisAt: state.micros}
	}
	e := f.table.acquire(key, start, at)
	if e == nil {
		return
	}
	defer e.mu.Unlock()

	if e.supersedes(state, kind) {
		return // an answer that overtook this one on the way back is newer
	}
	e.limit, e.tokens, e.at, e.redisAt, e.outage = limit, state.tokens, at, state.micros, 0
}

// supersedes reports whether the Redis answer e remembers is newer than
// state, the answer to a request of kind. Answers of one Redis instant come
// from one script call, in which each decision started from the one before:
// a refund can only have raised the tokens, anything else only lowered them.
func (e *bucketState) supersedes(state redisState, kind requestKind) bool {
	switch {
	case e.outage != 0:
		return false
	case e.redisAt != state.micros:
		return e.redisAt > state.micros
	case kind == refund:
		return state.tokens < e.tokens
	default:
		return state.tokens > e.tokens
	}
}

// refusedBefore answers a refusal without asking Redis when the remembered
// state of key shows that Redis must refuse: tokens in Redis only grow with
// time, by at most the rate, and other instances only take them away.
func (f *Fallback) refusedBefore(key string, limit Limit, n int64) (Result, bool) {
	now := f.now()

	e := f.table.acquire(key, nil, now)
	if e == nil {
		return Result{}, false
	}
	defer e.mu.Unlock()

	if e.outage != 0 || e.limit != limit {
		return Result{}, false
	}
	tokens := e.tokensAt(limit, now)
	if tokens+slack >= float64(n) {
		return Result{}, false
	}
	res := limit.result(false, tokens, n, BackendRedis)
	res.Cached = true
	return res, true
}

// outageState describes one outage; a new one replaces it at each trip.
type outageState struct {
	number   uint64  // counts the outages of this store, from 1
	openedAt int64   // table time when the outage began
	share    float64 // the share of each limit enforced during the outage
}

// decideInMemory makes the decision from memory, at this instance's share
// of the limit. It reports false when the breaker has closed meanwhile.
func (f *Fallback) decideInMemory(key string, limit Limit, req request) (Result, bool) {
	for {
		if !f.open.Load() {
			return Result{}, false
		}
		o := f.current.Load()
		now := f.now()
		shared := o.shareOf(limit, req)
		start := bucketState{
			limit: limit, tokens: float64(limit.Capacity) * o.share, at: now, outage: o.number,
		}
		e := f.table.acquire(key, &start, now)

		// Checked again under the entry's lock: the switch back to Redis
		// clears open before it collects each entry's spending under that
		// lock, so no spending recorded here can slip past it.
		if !f.open.Load() || f.current.Load() != o {
			e.mu.Unlock()
			continue
		}
		if e.outage != o.number {
			// The first decision on key in this outage starts from what
			// Redis last said, refilled up to the failure, and keeps this
			// instance's share of it.
			tokens := e.tokensAt(limit, o.openedAt) * o.share
			e.tokens, e.at, e.outage = tokens, o.openedAt, o.number
		}
		if req.kind == refund {
			req.n = min(req.n, e.spent)
		}
		allowed, tokens := shared.apply(req, e.tokensAt(shared, now))
		e.record(limit, allowed, tokens, now)
		switch {
		case req.kind == refund:
			e.spent -= req.n
		case req.kind == drain:
			e.drainedUntil = max(e.drainedUntil, now+req.hold.Nanoseconds())
		case allowed:
			e.spent += req.n
		}
		e.mu.Unlock()

		res := shared.resultOf(req, allowed, tokens, BackendMemory)
		res.Limit = limit
		return res, true
	}
}

// shareOf returns the part of limit that this instance enforces during the
// outage: its share of the rate, and of the capacity too, so that instances
// that saved up through a long outage cannot burst together past one
// capacity. A request that costs more than the share can still pass once
// the instance holds its cost.
func (o *outageState) shareOf(limit Limit, req request) Limit {
	capacity := int64(math.Ceil(float64(limit.Capacity) * o.share))
	if req.kind == take {
		capacity = max(capacity, req.n)
	}
	return Limit{Capacity: capacity, Rate: limit.Rate * o.share}
}

// trip opens the breaker after err, once per outage.
func (f *Fallback) trip(err error) {
	f.switching.Lock()
	if f.open.Load() {
		f.switching.Unlock()
		return
	}
	instances := max(1, f.instances.Load())
	next := &outageState{number: 1, openedAt: f.now(), share: 1 / float64(instances)}
	if last := f.current.Load(); last != nil {
		next.number = last.number + 1
	}
	f.current.Store(next)
	f.open.Store(true)
	f.switching.Unlock()

	f.emit(Event{Kind: EventFallbackOn, Err: err, Instances: int(instances)})
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *Fallback) emit(e Event) {
	if f.opts.onEvent != nil {
		f.opts.onEvent(e)
	}
}

func newInstanceID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
