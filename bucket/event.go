package bucket

import "time"

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event.
const (
	// EventFallbackOn: Redis failed and decisions come from memory.
	EventFallbackOn EventKind = iota + 1

	// EventFallbackOff: Redis answers again and decisions come from it.
	EventFallbackOff

	// EventRedisError: one Redis call failed, on a caller's behalf or in a
	// background probe.
	EventRedisError
)

// String returns the name of the kind as it appears in logs.
func (k EventKind) String() string {
	switch k {
	case EventFallbackOn:
		return "fallback_on"
	case EventFallbackOff:
		return "fallback_off"
	case EventRedisError:
		return "redis_error"
	}
	return "unknown"
}

// Event reports a change of state of a Fallback store, or a Redis failure.
type Event struct {
	Kind EventKind

	// Err is the Redis error, for EventFallbackOn and EventRedisError.
	Err error

	// Instances is how many instances the store believed shared the limits
	// when the fallback turned on; each enforces its share of every limit.
	Instances int

	// Outage is how long the fallback lasted, for EventFallbackOff.
	Outage time.Duration

	// WrittenBack is how many keys had the spending of the outage written
	// back to Redis, for EventFallbackOff.
	WrittenBack int

	// Dropped is how many keys had spending that could not be written back
	// in time, for EventFallbackOff.
	Dropped int
}
