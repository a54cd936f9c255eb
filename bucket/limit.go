package bucket

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Forever is the RetryAfter and ResetAfter of a bucket that never refills.
const Forever = time.Duration(math.MaxInt64)

// slack absorbs the rounding of float arithmetic, so that a bucket that has
// refilled to 0.9999999999 tokens by rounding still pays out one token. It
// is far too small to admit a request that the exact count would refuse.
const slack = 1e-9

// ErrInvalidLimit is returned for a limit whose capacity is below one token
// or whose rate is negative or not a number.
var ErrInvalidLimit = errors.New("bucket: invalid limit")

// ErrCostTooHigh is returned when a request asks for more tokens than the
// bucket can ever hold: waiting would not help, so it is an error and not a
// refusal.
var ErrCostTooHigh = errors.New("bucket: cost exceeds capacity")

// ErrInvalidCost is returned for a cost below one token.
var ErrInvalidCost = errors.New("bucket: cost must be at least 1")

// Limit describes one token bucket. The zero value is not a valid limit.
type Limit struct {
	// Capacity is the most tokens the bucket holds: the largest burst.
	Capacity int64

	// Rate is how many tokens the bucket gains each second. Fractions are
	// kept. Zero means the bucket never refills.
	Rate float64
}

// PerMinute returns a limit of capacity tokens that refills perMinute
// tokens a minute.
func PerMinute(capacity int64, perMinute float64) Limit {
	return Limit{Capacity: capacity, Rate: perMinute / 60}
}

// Validate reports whether the limit can be used, with ErrInvalidLimit.
func (l Limit) Validate() error {
	if l.Capacity < 1 {
		return fmt.Errorf("%w: capacity %d is below 1", ErrInvalidLimit, l.Capacity)
	}
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("%w: rate %v is not a finite number >= 0", ErrInvalidLimit, l.Rate)
	}
	return nil
}

// FillTime is how long an empty bucket takes to fill, or Forever when it
// never refills.
func (l Limit) FillTime() time.Duration {
	return l.durationFor(float64(l.Capacity))
}

// checkCost validates the limit and a cost of n tokens.
func (l Limit) checkCost(n int64) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("%w: got %d", ErrInvalidCost, n)
	}
	if n > l.Capacity {
		return fmt.Errorf("%w: cost %d, capacity %d", ErrCostTooHigh, n, l.Capacity)
	}
	return nil
}

// durationFor is how long the bucket takes to gain the given tokens,
// rounded up to the microsecond so that a caller who waits that long finds
// them there.
func (l Limit) durationFor(tokens float64) time.Duration {
	if tokens <= slack {
		return 0
	}
	if l.Rate == 0 {
		return Forever
	}
	micros := math.Ceil(tokens / l.Rate * 1e6)
	if micros >= float64(Forever/time.Microsecond) {
		return Forever
	}
	return time.Duration(micros) * time.Microsecond
}

// refill returns the tokens a bucket holding tokens has after elapsed,
// never more than the capacity. A negative elapsed (a clock that stepped
// back) adds nothing. A bucket over a capacity that was lowered is cut down.
func (l Limit) refill(tokens float64, elapsed time.Duration) float64 {
	if elapsed > 0 {
		tokens += elapsed.Seconds() * l.Rate
	}
	return min(float64(l.Capacity), tokens)
}

// Backend names the kind of store that answered a decision.
type Backend string

// The backends a Result can name.
const (
	BackendMemory Backend = "memory"
	BackendRedis  Backend = "redis"
)

// Result is the answer to one decision.
type Result struct {
	// Allowed reports whether the tokens were taken.
	Allowed bool

	// Limit is the limit the decision was made under.
	Limit Limit

	// Remaining is the whole number of tokens left after the decision.
	Remaining int64

	// RetryAfter is how long until the requested tokens will be there: zero
	// when Allowed, Forever when the bucket never refills.
	RetryAfter time.Duration

	// Next is how long until a request of the same cost could be allowed
	// after this decision: zero while enough tokens remain, Forever when the
	// bucket never refills. For a refusal it equals RetryAfter.
	Next time.Duration

	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration

	// Backend is the kind of store that made the decision.
	Backend Backend

	// Cached reports that a Fallback refused from what Redis last said of
	// the key, without asking Redis again.
	Cached bool
}

// result builds the Result of a bucket that holds tokens after a decision
// for n tokens.
func (l Limit) result(allowed bool, tokens float64, n int64, backend Backend) Result {
	res := Result{
		Allowed:    allowed,
		Limit:      l,
		ResetAfter: l.durationFor(float64(l.Capacity) - tokens),
		Backend:    backend,
	}
	if tokens > 0 {
		res.Remaining = int64(math.Floor(tokens + slack))
	}
	res.Next = l.durationFor(float64(n) - tokens)
	if !allowed {
		res.RetryAfter = res.Next
	}
	return res
}
