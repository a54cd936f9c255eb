// Package fakeclock is a clock for tests that moves only when told to, so
// that a test of refill or expiry sets the time instead of sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a clock that reads the same time until Advance moves it. It
// fits bucket.Clock and every other interface with a Now method.
//
// The zero value reads the zero time.Time. A Clock is safe for concurrent
// use: a test may move it while the code under test reads it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start until it is moved.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the time of the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d, or back when d is negative.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
