// Package waittest waits in tests for a state that code reaches in its own
// time, by polling, so that a test asserts the state and never how long it
// took.
package waittest

import (
	"testing"
	"time"
)

// Patience bounds every wait: generous, since the machine is shared, and
// never a claim about speed. Only a test that would hang reaches it.
const Patience = 20 * time.Second

// step is the pause between two polls.
const step = 5 * time.Millisecond

// Until polls cond until it holds, and fails t, naming what it waited
// for, once Patience has passed. It must be called from the goroutine
// running the test.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", Patience, what)
		}
		time.Sleep(step)
	}
}

// Closed reports whether c is closed, without waiting.
func Closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
