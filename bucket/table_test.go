package bucket

import (
	"runtime"
	"strings"
	"testing"

	"github.com/openclaw/ratelimit/internal/waittest"
)

// TestTableLooksAgainForADroppedEntry holds a decision that found an entry
// just before it was dropped to looking the key up again, so that it never
// writes to an entry the table no longer holds.
func TestTableLooksAgainForADroppedEntry(t *testing.T) {
	tb := newTable(1000)
	first := bucketState{tokens: 1}
	old := tb.acquire("k", &first, 0)

	found := make(chan *entry)
	go func() {
		second := bucketState{tokens: 2}
		e := tb.acquire("k", &second, 0)
		e.mu.Unlock()
		found <- e
	}()
	waittest.Until(t, "the second acquire waits for the first entry's lock", func() bool {
		return waitsForEntryLock()
	})

	s := tb.shardOf("k")
	s.mu.Lock()
	s.drop("k", old)
	s.mu.Unlock()
	old.mu.Unlock()

	e := <-found
	if e == old || e.tokens != 2 {
		t.Fatalf("acquire returned the dropped entry (%v) or one with %v tokens, want a new one with 2",
			e == old, e.tokens)
	}
	if got := stateOf(t, tb, "k"); got.tokens != 2 {
		t.Fatalf("the table holds %v tokens for the key, want the new entry's 2", got.tokens)
	}
}

// waitsForEntryLock reports whether some goroutine waits for a mutex inside
// table.acquire.
func waitsForEntryLock() bool {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "(*table).acquire") && strings.Contains(g, "sync.(*Mutex).Lock") {
			return true
		}
	}
	return false
}
