package main

import (
	"context"
	"errors"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// subBuckets is how many latency buckets each power of two is split into,
// which bounds the error of a percentile to about 6%.
const subBuckets = 16

// latencyEvery is how often a call is timed: reading the clock costs about
// as much as a decision in memory, so timing every call would hide the
// differences between the fast limiters. Which calls are timed does not
// depend on how long they take, so the percentiles stay unbiased.
const latencyEvery = 8

// histogram counts latencies in buckets of about equal relative width.
type histogram [64 * subBuckets]uint64

func bucketOf(ns int64) int {
	if ns < subBuckets {
		return int(max(ns, 0))
	}
	u := uint64(ns)
	exp := bits.Len64(u) - 1 // u lies in [2^exp, 2^(exp+1))
	sub := (u >> (exp - 4)) & (subBuckets - 1)
	return exp*subBuckets + int(sub)
}

// lower returns the smallest latency in bucket i.
func lower(i int) time.Duration {
	if i < 4*subBuckets {
		return time.Duration(i)
	}
	exp, sub := i/subBuckets, uint64(i%subBuckets)
	return time.Duration((1 << exp) | sub<<(exp-4))
}

func (h *histogram) add(o *histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// quantile returns the midpoint of the bucket that holds quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	var seen uint64
	for i, n := range h {
		seen += n
		if seen > rank {
			return (lower(i) + lower(i+1)) / 2
		}
	}
	return lower(len(h) - 1)
}

// sample is what one measurement of one contender found.
type sample struct {
	ops      int64
	allowed  int64
	errors   int64 // decisions that returned an error, for peers that may
	elapsed  time.Duration
	p50, p99 time.Duration
	allocs   float64       // heap allocations per decision
	sent     float64       // commands sent to Redis per decision
	served   float64       // commands Redis ran per decision, script calls included
	ownCPU   time.Duration // CPU time of this process per decision
	redisCPU time.Duration // CPU time of redis-server per decision
	err      error
}

func (s sample) opsPerSec() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}

// load is how a measurement calls a limiter.
type load struct {
	callers  int
	warmup   time.Duration
	period   time.Duration
	key      func(caller, i int) string
	tolerate bool
}

// counter counts the commands clients send, pipelined ones included.
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// measure runs callers goroutines that call lim as fast as they can, first
// for the warm-up, then for the period, and reports the period.
func measure(lim Limiter, ld load, sent *counter, admin *redis.Client) sample {
	ctx := context.Background()
	var s sample
	if err := run(ctx, lim, ld, ld.warmup, nil); err != nil {
		s.err = err
		return s
	}

	servedBefore, err := serverCommands(ctx, admin)
	if err != nil {
		s.err = err
		return s
	}
	redisBefore, err := serverCPU(ctx, admin)
	if err != nil {
		s.err = err
		return s
	}
	ownBefore := processCPU()
	sentBefore := sent.n.Load()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	mallocs := mem.Mallocs

	var res result
	start := time.Now()
	err = run(ctx, lim, ld, ld.period, &res)
	s.elapsed = time.Since(start)

	ownAfter := processCPU()
	runtime.ReadMemStats(&mem)
	sentAfter := sent.n.Load()
	servedAfter, err2 := serverCommands(ctx, admin)
	redisAfter, err3 := serverCPU(ctx, admin)
	err = errors.Join(err, err2, err3)
	s.err = err
	s.ops, s.allowed, s.errors = res.ops, res.allowed, res.errors
	if s.ops > 0 {
		n := float64(s.ops)
		s.allocs = float64(mem.Mallocs-mallocs) / n
		s.sent = float64(sentAfter-sentBefore) / n
		s.served = float64(servedAfter-servedBefore) / n
		s.ownCPU = (ownAfter - ownBefore) / time.Duration(s.ops)
		s.redisCPU = (redisAfter - redisBefore) / time.Duration(s.ops)
	}
	s.p50, s.p99 = res.hist.quantile(0.50), res.hist.quantile(0.99)
	return s
}

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// result gathers what the callers of one run saw.
type result struct {
	mu      sync.Mutex
	ops     int64
	allowed int64
	errors  int64
	hist    histogram
}

// run calls lim from ld.callers goroutines for d, recording into res when
// it is not nil. It stops at the first error unless ld.tolerate is set;
// then it counts errors, and fails only when no call succeeded.
func run(ctx context.Context, lim Limiter, ld load, d time.Duration, res *result) error {
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		failure atomic.Value
	)
	start := make(chan struct{})
	for c := range ld.callers {
		wg.Go(func() {
			hist := new(histogram)
			var ops, allowed, errs int64
			<-start
			for i := 0; !stop.Load(); i++ {
				key := ld.key(c, i)
				var (
					ok  bool
					err error
				)
				if i%latencyEvery == 0 {
					t0 := time.Now()
					ok, err = lim.Allow(ctx, key)
					hist[bucketOf(int64(time.Since(t0)))]++
				} else {
					ok, err = lim.Allow(ctx, key)
				}
				if err != nil {
					failure.CompareAndSwap(nil, err)
					if !ld.tolerate {
						stop.Store(true)
						break
					}
					errs++
					continue
				}
				ops++
				if ok {
					allowed++
				}
			}
			if res != nil {
				res.mu.Lock()
				res.ops += ops
				res.allowed += allowed
				res.errors += errs
				res.hist.add(hist)
				res.mu.Unlock()
			}
		})
	}
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	close(start)
	wg.Wait()
	timer.Stop()
	err, _ := failure.Load().(error)
	if err != nil && ld.tolerate && (res == nil || res.ops > 0) {
		return nil
	}
	return err
}
