package ratelimit

import (
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

// Outcome is what the middleware did with a request.
type Outcome string

// The outcomes an Observation reports.
const (
	// OutcomeAllowed: the tokens were taken and the request went on.
	OutcomeAllowed Outcome = "allowed"

	// OutcomeDenied: the limit refused the request.
	OutcomeDenied Outcome = "denied"

	// OutcomeShadowDenied: the limit would have refused the request, and
	// shadow mode let it through.
	OutcomeShadowDenied Outcome = "shadow_denied"

	// OutcomeError: the store failed, and the error policy (or shadow mode)
	// decided what happened to the request.
	OutcomeError Outcome = "error"

	// OutcomeUnauthorized: the key function found no usable key.
	OutcomeUnauthorized Outcome = "unauthorized"

	// OutcomeCanceled: the request ended, for example because the client
	// went away, before the decision was made. Nothing is written.
	OutcomeCanceled Outcome = "canceled"

	// OutcomeInvalidCost: the cost function failed, or the cost exceeds the
	// capacity of the bucket.
	OutcomeInvalidCost Outcome = "invalid_cost"
)

// Observation describes one decision. It never holds the key.
type Observation struct {
	Outcome Outcome

	// Backend is the kind of store that decided, empty when none did.
	Backend bucket.Backend

	// Latency is the time spent asking the store, waits in wait mode
	// included; zero when the store was not asked.
	Latency time.Duration

	// Waited reports that the request waited for its tokens in wait mode.
	Waited bool

	// Cost is the tokens the request asked for, zero when unknown.
	Cost int64

	// Err is the store error, for OutcomeError and for OutcomeInvalidCost
	// when the cost exceeds the capacity. It is meant for logs, never for
	// clients.
	Err error
}
