package bucket

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxFlights is how many pipelines a coalescer keeps in flight at once.
// Callers that arrive while all of them fly wait and leave together in the
// next one. Fewer flights make bigger batches, which spare Redis and the
// client work per decision; more flights make a caller wait less for one
// to land. On two cores with a loopback Redis, two, three and four flights
// made as many decisions as each other within the noise, at 8 callers and
// at 64, and a flight for each caller made fewer.
const maxFlights = 4

// maxBatch bounds the calls sent in one pipeline, and maxGroup the
// decisions in one script call, so that neither holds Redis for long.
const (
	maxBatch = 512
	maxGroup = 128
)

// coalescer sends the decisions that wait at the same moment as one
// pipelined write. A call that finds a flight free makes the trip itself at
// once, so an idle call pays no delay. Calls that
// arrive while every flight is in the air queue up, and the first flight
// to land takes the whole queue with it on its next trip. A flight's
// goroutine ends when it lands to an empty queue, so none runs between
// calls. Callers wait on their own contexts, never on the wire.
//
// Within a flight, decisions whose keys live on the same node go to Redis
// in one script call, which makes them in turn at one reading of the Redis
// clock: Redis pays the fixed cost of a script call once for all of them.
// On a single node that is every key; on a Cluster, every key of one hash
// slot, so that the call stays legal there; on other clients, such as a
// Ring, only calls on the very same key share a script call. go-redis
// splits each Cluster pipeline by node.
//
// A NOSCRIPT reply, which a pipeline cannot answer with EVAL, loads the
// script (on every master) and sends the refused calls again.
type coalescer struct {
	client redis.UniversalClient
	group  func(key string) groupKey

	mu     sync.Mutex
	queue  []*call
	flying int
}

// callState is where a call is on its way; the coalescer's mutex guards it.
type callState int

const (
	queued    callState = iota // waits in the queue
	sent                       // is in a flight
	abandoned                  // its caller left before it was sent
)

// call is one decision and the reply it gets.
type call struct {
	ctx      context.Context
	deadline time.Time // zero for none but the context's
	state    callState
	key      string
	args     []any
	reply    scriptReply
	err      error
	done     chan struct{} // signalled once, when the reply is there
	timer    *time.Timer   // kept with the call in the pool, for its deadline
}

var callPool = sync.Pool{
	New: func() any { return &call{done: make(chan struct{}, 1)} },
}

// startTimer returns a channel that receives once d has passed. The timer
// is the call's own and goes back to the pool with it; a stopped or reset
// timer delivers no stale tick.
func (cl *call) startTimer(d time.Duration) <-chan time.Time {
	if cl.timer == nil {
		cl.timer = time.NewTimer(d)
	} else {
		cl.timer.Reset(d)
	}
	return cl.timer.C
}

func newCoalescer(client redis.UniversalClient) *coalescer {
	c := &coalescer{client: client}
	switch client.(type) {
	case *redis.Client:
		c.group = func(string) groupKey { return groupKey{} }
	case *redis.ClusterClient:
		c.group = func(key string) groupKey { return groupKey{slot: slotOf(key)} }
	default:
		c.group = func(key string) groupKey { return groupKey{key: key} }
	}
	return c
}

// run makes the decision of the bucket script on key with args and
// returns its reply. It returns early with ctx.Err() when ctx ends first,
// and with context.DeadlineExceeded when deadline, unless it is zero,
// passes first; the decision may still be made in Redis then, as any
// command whose reply nobody waits for. A deadline costs a timer, where a
// context with a timeout would cost several allocations and a lock of the
// parent context; and the timer is reused.
func (c *coalescer) run(
	ctx context.Context, deadline time.Time, key string, args []any,
) (scriptReply, error) {
	if err := ctx.Err(); err != nil {
		return scriptReply{}, err
	}
	if len(args) != 4 {
		return scriptReply{}, fmt.Errorf("%d script arguments, want 4", len(args))
	}
	cl := callPool.Get().(*call)
	cl.ctx, cl.deadline, cl.state, cl.key, cl.args = ctx, deadline, queued, key, args

	c.mu.Lock()
	c.queue = append(c.queue, cl)
	lead := c.flying < maxFlights
	if lead {
		c.flying++
	}
	c.mu.Unlock()

	if lead {
		c.lead()
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		expired = cl.startTimer(time.Until(deadline))
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		c.abandon(cl)
		return scriptReply{}, ctx.Err()
	case <-expired:
		c.abandon(cl)
		return scriptReply{}, context.DeadlineExceeded
	}

	reply, err := cl.reply, cl.err
	if cl.timer != nil {
		cl.timer.Stop()
	}
	*cl = call{done: cl.done, timer: cl.timer}
	callPool.Put(cl)
	if err != nil {
		if gone := gaveUp(ctx, deadline); gone != nil {
			// The socket deadline was the caller's own: say so.
			return scriptReply{}, gone
		}
		return scriptReply{}, err
	}
	return reply, nil
}

// gaveUp returns the error of a caller whose context has ended or whose
// deadline has passed, or nil. The socket deadline of a flight may fire a
// moment before the context's own timer does.
func gaveUp(ctx context.Context, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	if d, ok := ctx.Deadline(); ok && !now.Before(d) {
		return context.DeadlineExceeded
	}
	if !deadline.IsZero() && !now.Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// abandon leaves cl to its flight, or drops it from the queue. The call is
// left to the garbage collector: a flight may still write to it.
func (c *coalescer) abandon(cl *call) {
	c.mu.Lock()
	if cl.state == queued {
		cl.state = abandoned
	}
	c.mu.Unlock()
}

// lead makes one trip in the caller's goroutine, which saves the start of
// a goroutine and a wake-up on the path of a call that finds a flight free,
// and passes the flight on to a goroutine when more calls wait. The caller
// cannot leave early while it flies: it returns when the trip ends, which
// a client with ContextTimeoutEnabled bounds by the callers' deadlines.
func (c *coalescer) lead() {
	c.mu.Lock()
	batch := c.take()
	if len(batch) == 0 {
		c.flying--
	}
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}

	c.send(batch)

	c.mu.Lock()
	more := len(c.queue) > 0
	if !more {
		c.flying--
	}
	c.mu.Unlock()
	if more {
		go c.fly()
	}
	for _, cl := range batch {
		cl.done <- struct{}{}
	}
}

// fly sends the queue, trip after trip, until it finds the queue empty.
// The callers of one trip are woken after the next trip is taken from the
// queue, so that no call waits for them.
func (c *coalescer) fly() {
	var landed []*call
	for {
		c.mu.Lock()
		batch := c.take()
		if len(batch) == 0 {
			c.flying--
		}
		c.mu.Unlock()

		for _, cl := range landed {
			cl.done <- struct{}{}
		}
		if len(batch) == 0 {
			return
		}
		c.send(batch)
		landed = batch
	}
}

// take removes up to maxBatch live calls from the queue and marks them
// sent. The mutex must be held.
func (c *coalescer) take() []*call {
	if len(c.queue) == 0 {
		return nil
	}
	batch := make([]*call, 0, min(len(c.queue), maxBatch))
	n := 0
	for _, cl := range c.queue {
		if len(batch) == maxBatch {
			break
		}
		n++
		if cl.state == abandoned {
			continue
		}
		cl.state = sent
		batch = append(batch, cl)
	}
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return batch
}

// send makes the decisions of batch, a script call for each group of them,
// in one pipeline; and once more for the groups that Redis refused with
// NOSCRIPT, after loading the script.
func (c *coalescer) send(batch []*call) {
	ctx, cancel := batchContext(batch)
	defer cancel()

	again := c.exec(ctx, c.groups(batch))
	if len(again) == 0 {
		return
	}
	if err := bucketScript.Load(ctx, c.client).Err(); err != nil {
		for _, g := range again {
			for _, cl := range g {
				cl.err = err
			}
		}
		return
	}
	for _, g := range c.exec(ctx, again) {
		for _, cl := range g {
			cl.err = fmt.Errorf("script still missing after loading it: %w", cl.err)
		}
	}
}

// batchContext returns the context a pipeline runs under: no single
// caller's cancellation ends it, since it carries the calls of others, but
// when every caller has a deadline it ends at the latest of them.
func batchContext(batch []*call) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(batch[0].ctx)

	var latest time.Time
	for _, cl := range batch {
		d, ok := cl.ctx.Deadline()
		if !cl.deadline.IsZero() && (!ok || cl.deadline.Before(d)) {
			d, ok = cl.deadline, true
		}
		if !ok {
			return base, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(base, latest)
}
