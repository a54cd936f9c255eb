package bucket

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxFlights is how many pipelines a coalescer keeps in flight at once.
// Callers that arrive while all of them fly wait and leave together in the
// next one.
const maxFlights = 2

// maxBatch bounds the calls sent in one pipeline, so that one batch does not
// hold a connection for long.
const maxBatch = 512

// coalescer sends the script calls that wait at the same moment as one
// pipelined write. A call that finds a flight free starts one at once, so
// an idle call pays no delay but the start of a goroutine. Calls that
// arrive while every flight is in the air queue up, and the first flight
// to land takes the whole queue with it on its next trip. A flight's
// goroutine ends when it lands to an empty queue, so none runs between
// calls. Callers wait on their own contexts, never on the wire.
//
// On a Cluster client go-redis splits each pipeline by node. A NOSCRIPT
// reply, which a pipeline cannot answer with EVAL, loads the script (on
// every master) and sends the refused calls again.
type coalescer struct {
	client redis.UniversalClient
	script *redis.Script

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

// call is one script call and the reply it gets.
type call struct {
	ctx   context.Context
	state callState
	argv  [8]any
	cmd   *redis.Cmd
	done  chan struct{} // signalled once, when the reply is there
}

var callPool = sync.Pool{
	New: func() any { return &call{done: make(chan struct{}, 1)} },
}

func newCoalescer(client redis.UniversalClient, script *redis.Script) *coalescer {
	return &coalescer{client: client, script: script}
}

// run calls the script on key with args and returns its reply. It returns
// early with ctx.Err() when ctx ends first; the call may still run in Redis
// then, as any command whose reply nobody waits for.
func (c *coalescer) run(ctx context.Context, key string, args []any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cl := callPool.Get().(*call)
	cl.ctx, cl.state, cl.cmd = ctx, queued, nil
	cl.argv = [8]any{"evalsha", c.script.Hash(), 1, key}
	copy(cl.argv[4:], args)

	c.mu.Lock()
	c.queue = append(c.queue, cl)
	if c.flying < maxFlights {
		c.flying++
		go c.fly()
	}
	c.mu.Unlock()

	select {
	case <-cl.done:
	case <-ctx.Done():
		c.mu.Lock()
		if cl.state == queued {
			cl.state = abandoned
		}
		c.mu.Unlock()
		// The call is left to the garbage collector: a flight may still
		// write to it.
		return nil, ctx.Err()
	}

	reply, err := cl.cmd.Val(), cl.cmd.Err()
	cl.ctx, cl.cmd, cl.argv = nil, nil, [8]any{}
	callPool.Put(cl)
	return reply, err
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

// send runs batch as one pipeline, and once more for the calls that Redis
// refused with NOSCRIPT, after loading the script.
func (c *coalescer) send(batch []*call) {
	ctx, cancel := batchContext(batch)
	defer cancel()

	c.exec(ctx, batch)

	var again []*call
	for _, cl := range batch {
		if redis.HasErrorPrefix(cl.cmd.Err(), "NOSCRIPT") {
			again = append(again, cl)
		}
	}
	if len(again) == 0 {
		return
	}
	if err := c.script.Load(ctx, c.client).Err(); err != nil {
		for _, cl := range again {
			cl.cmd.SetErr(err)
		}
		return
	}
	c.exec(ctx, again)
}

// exec sends the calls in one pipeline; each call's command holds its
// reply or error afterwards.
func (c *coalescer) exec(ctx context.Context, calls []*call) {
	pipe := c.client.Pipeline()
	for _, cl := range calls {
		cl.cmd = redis.NewCmd(cl.ctx, cl.argv[:]...)
		_ = pipe.Process(ctx, cl.cmd)
	}
	// Every command carries its own error; the first is returned here too.
	_, _ = pipe.Exec(ctx)
}

// batchContext returns the context a pipeline runs under: no single
// caller's cancellation ends it, since it carries the calls of others, but
// when every caller has a deadline it ends at the latest of them.
func batchContext(batch []*call) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(batch[0].ctx)

	var latest time.Time
	for _, cl := range batch {
		d, ok := cl.ctx.Deadline()
		if !ok {
			return base, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(base, latest)
}
