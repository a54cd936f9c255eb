package bucket

import (
	"time"
)

// Clock tells the time. Tests replace it to move time without sleeping.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// elapsed returns the nanoseconds from epoch to now on clock. The system
// clock reads only its monotonic part, which is cheaper than a full
// time.Now.
func elapsed(clock Clock, epoch time.Time) int64 {
	if _, ok := clock.(systemClock); ok {
		return int64(time.Since(epoch))
	}
	return int64(clock.Now().Sub(epoch))
}

// Option configures a store. Each option says which stores use it; the
// others ignore it.
type Option func(*options)

type options struct {
	maxKeys        int
	clock          Clock
	prefix         string
	timeout        time.Duration
	probeInterval  time.Duration
	probesToClose  int
	writeBackLimit time.Duration
	onEvent        func(Event)
}

// Defaults of the options.
const (
	DefaultMaxKeys        = 100_000
	DefaultPrefix         = "openclaw:bucket"
	DefaultTimeout        = 100 * time.Millisecond
	DefaultProbeInterval  = time.Second
	DefaultProbesToClose  = 3
	DefaultWriteBackLimit = 5 * time.Second
)

func buildOptions(opts []Option) options {
	o := options{
		maxKeys:        DefaultMaxKeys,
		clock:          systemClock{},
		prefix:         DefaultPrefix,
		timeout:        DefaultTimeout,
		probeInterval:  DefaultProbeInterval,
		probesToClose:  DefaultProbesToClose,
		writeBackLimit: DefaultWriteBackLimit,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithMaxKeys bounds the keys held in memory (Memory, Fallback); the default
// is DefaultMaxKeys. When the bound is reached, full buckets are dropped
// first, since they hold nothing a new bucket would not. Values below one
// are ignored.
func WithMaxKeys(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxKeys = n
		}
	}
}

// WithClock replaces the clock of the memory buckets (Memory, Fallback).
// Redis buckets always use the Redis clock.
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithPrefix sets the prefix of Redis key names (Redis, Fallback); the
// default is DefaultPrefix. A bucket lives at prefix:id, where id is a hash
// of the key, never the key itself.
func WithPrefix(prefix string) Option {
	return func(o *options) {
		if prefix != "" {
			o.prefix = prefix
		}
	}
}

// WithTimeout sets the deadline of each Redis call made on a caller's
// behalf (Fallback); the default is DefaultTimeout. A call that takes longer
// counts as a Redis failure.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithProbeInterval sets how often Fallback checks Redis in the background;
// the default is DefaultProbeInterval. Each wait is jittered by up to a
// fifth either way, so that a fleet does not probe in step.
func WithProbeInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.probeInterval = d
		}
	}
}

// WithProbesToClose sets how many probes in a row must succeed before
// Fallback returns to Redis; the default is DefaultProbesToClose.
func WithProbesToClose(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.probesToClose = n
		}
	}
}

// WithWriteBackLimit bounds the time Fallback spends writing an outage's
// spending back to Redis; the default is DefaultWriteBackLimit. Spending
// not written by then is dropped and counted in the event.
func WithWriteBackLimit(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.writeBackLimit = d
		}
	}
}

// WithEvents sets a function that Fallback calls on every change of state
// and every Redis failure. It is called synchronously, from the goroutine
// that saw the change, and must not block.
func WithEvents(fn func(Event)) Option {
	return func(o *options) {
		o.onEvent = fn
	}
}
