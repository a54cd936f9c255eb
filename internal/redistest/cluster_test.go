package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestClusterCoversEveryMaster(t *testing.T) {
	c := StartCluster(t, 3)
	client := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	seen := make(map[*Server]bool)
	for i := 0; len(seen) < len(c.Masters) && i < 100; i++ {
		key := fmt.Sprintf("k%d", i)
		if err := client.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		owner, err := c.MasterOf(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		direct := owner.Client(t)
		if got, err := direct.Get(ctx, key).Result(); err != nil || got != "v" {
			t.Fatalf("GET %s on its master %s = %q, %v", key, owner.Addr(), got, err)
		}
		seen[owner] = true
	}
	if len(seen) != len(c.Masters) {
		t.Fatalf("keys landed on %d masters, want %d", len(seen), len(c.Masters))
	}
}
