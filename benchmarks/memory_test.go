package main

import (
	"context"
	"testing"
	"time"
)

// BenchmarkMemoryStores compares the memory limiters on one key and on
// many, without the harness around them: go test -bench MemoryStores.
func BenchmarkMemoryStores(b *testing.B) {
	high := spec{capacity: 1_000_000_000, window: time.Second}
	for _, c := range contenders() {
		// The dead Fallback needs a server to kill: the main program has it.
		if c.store != "memory" || c.missing != "" || c.name == "ours: Fallback, Redis dead" {
			continue
		}
		for _, many := range []bool{false, true} {
			name := c.label() + "/hot key"
			if many {
				name = c.label() + "/10000 keys"
			}
			b.Run(name, func(b *testing.B) {
				lim, done, err := c.setup(env{}, high)
				if err != nil {
					b.Fatal(err)
				}
				defer done()
				ctx := context.Background()
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						key := "hot"
						if many {
							key = manyKeys[i%keyCount]
							i++
						}
						// Peers may fail under contention (throttled's CAS
						// gives up); only this project's must not.
						if _, err := lim.Allow(ctx, key); err != nil && c.ours {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
