package faults

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/internal/processtest"
)

// binary is the ratingapi binary that TestMain builds for the process
// tests.
var binary string

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := processtest.Run(m, "../cmd/ratingapi", &binary)
	if code == 0 && !settled(before) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "faults: %d goroutines outlived the tests, %d before:\n%s",
			runtime.NumGoroutine(), before, buf)
		code = 1
	}
	os.Exit(code)
}

// settled waits, within a bound, for the goroutines to fall back to n:
// every store, proxy, client and process watcher the tests started must
// have stopped.
func settled(n int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
