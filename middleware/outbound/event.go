package outbound

import (
	"net/http"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event.
const (
	// EventWaited: the request waited for tokens before it went.
	EventWaited EventKind = iota + 1

	// EventThrottled: the provider answered 429, and the key's buckets were
	// drained for Wait.
	EventThrottled

	// EventRetry: the request is sent again after a 429.
	EventRetry

	// EventWasted: the store failed to give back Tokens to the bucket of
	// Quota, taken for a request that then did not go or that used less
	// than its cost; they stay spent. Err is the store's error.
	EventWasted

	// EventStoreError: a debit or a drain made after the decision failed;
	// the request itself was not affected. A failed refund is an
	// EventWasted.
	EventStoreError
)

// String returns the name of the kind as it appears in logs.
func (k EventKind) String() string {
	switch k {
	case EventWaited:
		return "waited"
	case EventThrottled:
		return "throttled"
	case EventRetry:
		return "retry"
	case EventWasted:
		return "wasted"
	case EventStoreError:
		return "store_error"
	}
	return "unknown"
}

// Event reports something a Transport did on behalf of a request.
type Event struct {
	Kind EventKind

	// Request is the request the event is about. Hooks must not modify it.
	Request *http.Request

	// Quota names the quota concerned, for EventWasted and EventStoreError.
	Quota string

	// Tokens is the number of tokens concerned, for EventWasted.
	Tokens int64

	// Wait is how long the request waited, for EventWaited, or how long the
	// buckets were drained, for EventThrottled.
	Wait time.Duration

	// Attempt counts the sends of the request, from 1, for EventThrottled
	// and EventRetry.
	Attempt int

	// Err is the error of the store, for EventStoreError and EventWasted.
	Err error
}
