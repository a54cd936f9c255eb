package bucket

import (
	"hash/maphash"
	"sync"
	"time"
)

// shardCount spreads keys over independent locks, so that decisions on
// different keys rarely wait for each other.
const shardCount = 64

// evictSample is how many entries a full shard looks at to choose one to
// drop.
const evictSample = 16

// entry is one bucket held in memory. Its lock guards its state; the
// shard's lock guards only the map that finds it, so that decisions on one
// key wait for each other at the entry, not at the whole shard. The shard
// is always locked first.
type entry struct {
	mu sync.Mutex
	// dropped is set when the entry leaves its shard; a decision that found
	// it before then looks the key up again.
	dropped bool
	bucketState
}

// bucketState is what an entry knows of its bucket.
type bucketState struct {
	limit  Limit
	tokens float64 // tokens at the instant at
	at     int64   // nanoseconds since the table's epoch

	// The fields below are used by Fallback only.

	// redisAt is the Redis clock, in microseconds, of the Redis answer this
	// entry mirrors.
	redisAt int64

	// outage is zero while the entry mirrors Redis, and the number of the
	// outage during which memory decides for the key otherwise.
	outage uint64

	// spent counts the tokens taken from memory during an outage and not
	// yet written back to Redis.
	spent int64

	// drainedUntil is the table time until which a drain made from memory
	// during an outage holds the bucket empty, or zero; like spent, it is
	// written back to Redis when Redis returns.
	drainedUntil int64
}

// tokensAt returns the tokens of e at now, refilled under limit.
func (e *bucketState) tokensAt(limit Limit, now int64) float64 {
	return limit.refill(e.tokens, time.Duration(now-e.at))
}

// record keeps the outcome of a decision under limit at now. A refusal
// leaves the bucket as it was, as the Redis script does: the stored state
// refills to the same tokens, and an entry that a flood of refusals only
// reads is not moved from core to core by their writes.
func (e *bucketState) record(limit Limit, allowed bool, tokens float64, now int64) {
	if allowed {
		e.tokens, e.at = tokens, now
	}
	if e.limit != limit {
		e.limit = limit
	}
}

// idle reports whether e holds nothing worth keeping at now: a full bucket
// with no spending to write back.
func (e *bucketState) idle(now int64) bool {
	return e.spent == 0 && e.tokensAt(e.limit, now) >= float64(e.limit.Capacity)
}

// table is a bounded, sharded map from keys to bucket states.
type table struct {
	seed     maphash.Seed
	perShard int
	shards   [shardCount]shard
}

type shard struct {
	mu      sync.Mutex
	entries map[string]*entry
	_       [40]byte // keeps neighbouring locks off one cache line
}

// newTable returns a table that holds about maxKeys entries and never more.
func newTable(maxKeys int) *table {
	t := &table{seed: maphash.MakeSeed(), perShard: max(1, maxKeys/shardCount)}
	for i := range t.shards {
		t.shards[i].entries = make(map[string]*entry)
	}
	return t
}

// shardOf returns the shard that holds key.
func (t *table) shardOf(key string) *shard {
	return &t.shards[maphash.String(t.seed, key)%shardCount]
}

// acquire returns the entry of key, locked, or nil when the table holds
// none and start is nil; with start, it first adds an entry in that state.
// The caller unlocks the entry's mu.
func (t *table) acquire(key string, start *bucketState, now int64) *entry {
	s := t.shardOf(key)
	for {
		s.mu.Lock()
		e := s.entries[key]
		if e == nil && start != nil {
			e = s.add(key, *start, t.perShard, now)
		}
		s.mu.Unlock()
		if e == nil {
			return nil
		}

		e.mu.Lock()
		if !e.dropped {
			return e
		}
		e.mu.Unlock()
	}
}

// len returns the number of entries held.
func (t *table) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

// each calls fn for every entry, shard by shard, under the locks of the
// shard and of the entry. fn returns false to drop the entry.
func (t *table) each(fn func(key string, e *bucketState) (keep bool)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for key, e := range s.entries {
			e.mu.Lock()
			if !fn(key, &e.bucketState) {
				s.drop(key, e)
			}
			e.mu.Unlock()
		}
		s.mu.Unlock()
	}
}

// add stores an entry in state st under key, first making room when the
// shard is full. The shard must be locked.
func (s *shard) add(key string, st bucketState, perShard int, now int64) *entry {
	if len(s.entries) >= perShard {
		s.evict(now)
	}
	e := &entry{bucketState: st}
	s.entries[key] = e
	return e
}

// drop takes e, the entry of key, out of the shard. The shard and the
// entry must be locked.
func (s *shard) drop(key string, e *entry) {
	e.dropped = true
	delete(s.entries, key)
}

// evict drops the idle entries among a sample of the shard, or when none
// is idle, the one of the sample that holds the least: the fullest bucket,
// preferring one with no spending to write back. The shard must be locked.
func (s *shard) evict(now int64) {
	var (
		victim   *entry
		name     string
		best     float64
		dropped  bool
		examined int
	)
	for key, e := range s.entries {
		if examined == evictSample {
			break
		}
		examined++

		e.mu.Lock()
		if e.idle(now) {
			s.drop(key, e)
			dropped = true
			e.mu.Unlock()
			continue
		}
		score := e.tokensAt(e.limit, now) / float64(e.limit.Capacity)
		if e.spent > 0 {
			score -= 2 // below any bucket without spending
		}
		e.mu.Unlock()
		if victim == nil || score > best {
			victim, name, best = e, key, score
		}
	}
	if !dropped && victim != nil {
		victim.mu.Lock()
		s.drop(name, victim)
		victim.mu.Unlock()
	}
}
