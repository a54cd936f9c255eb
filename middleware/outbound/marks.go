package outbound

import (
	"sync"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

// maxMarks bounds the marks a transport keeps, whatever keys it sees.
const maxMarks = 4096

// marks remembers, bucket by bucket, a time before which the bucket cannot
// pay, so that a request waits for it before taking any token: it then
// takes no earlier bucket only to give the tokens back, and fails at once,
// without a store call, when the wait is longer than it may wait.
//
// Apart from refunds, tokens in a bucket only grow with time, at its rate,
// and others only take them away; so a bucket that refused n tokens for d
// cannot pay n or more before d has passed, and a bucket drained for d
// cannot pay anything before then. A refund, or a Fallback that returns to
// Redis, can add tokens sooner: a mark may then be too late, which delays a
// request by no more than the refusal said, and never lets one through
// early. A refund made by this process drops the refusal mark of its
// bucket. It is safe for concurrent use.
type marks struct {
	mu sync.Mutex
	m  map[string]mark
}

type mark struct {
	until time.Time
	never bool  // the bucket never refills: until is meaningless
	cost  int64 // the mark holds for costs of at least this; 0 for all
}

func newMarks() *marks {
	return &marks{m: make(map[string]mark)}
}

// refused marks that the bucket of key, asked at the time asked, refused n
// tokens for d.
func (ms *marks) refused(key string, n int64, asked time.Time, d time.Duration) {
	if d == bucket.Forever {
		ms.put(key, mark{never: true, cost: n})
		return
	}
	ms.put(key, mark{until: asked.Add(d), cost: n})
}

// drained marks that the bucket of key cannot pay anything before until.
func (ms *marks) drained(key string, until time.Time) {
	ms.put(key, mark{until: until})
}

// refunded drops the refusal mark of key, since tokens were given back to
// its bucket. A drain mark stays: the provider asked for the pause.
func (ms *marks) refunded(key string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()

	if m, ok := ms.m[key]; ok && m.cost > 0 {
		delete(ms.m, key)
	}
}

func (ms *marks) put(key string, m mark) {
	ms.mu.Lock()
	defer ms.mu.Unlock()

	old, ok := ms.m[key]
	if ok && old.cost <= m.cost && (old.never || old.until.After(m.until)) && !m.never {
		return // the old mark says more
	}
	if !ok && len(ms.m) >= maxMarks {
		ms.sweep(time.Now())
		if len(ms.m) >= maxMarks {
			return
		}
	}
	ms.m[key] = m
}

// wait returns how long the bucket of key is known to be unable to pay n
// tokens from now.
func (ms *marks) wait(key string, n int64, now time.Time) time.Duration {
	ms.mu.Lock()
	defer ms.mu.Unlock()

	m, ok := ms.m[key]
	switch {
	case !ok || n < m.cost:
		return 0
	case m.never:
		return bucket.Forever
	case !m.until.After(now):
		delete(ms.m, key)
		return 0
	}
	return m.until.Sub(now)
}

// sweep drops the marks that have passed. The lock must be held.
func (ms *marks) sweep(now time.Time) {
	for key, m := range ms.m {
		if !m.never && !m.until.After(now) {
			delete(ms.m, key)
		}
	}
}
