package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterNodeTimeout is how long a cluster waits before it declares a
// silent master failed, in milliseconds. It is short so that a test that
// kills a master sees the cluster react within seconds.
const clusterNodeTimeout = 1000

// Cluster is a Redis Cluster of masters without replicas, each a Server
// that a test started.
type Cluster struct {
	// Masters are the servers, in the order their slot ranges come: the
	// first holds the lowest slots.
	Masters []*Server
}

// StartCluster starts masters redis-server processes in cluster mode on
// loopback ports, joins them with redis-cli into a cluster without
// replicas, waits until every node reports cluster_state:ok, and stops them
// when the test ends.
func StartCluster(t testing.TB, masters int, opts ...Option) *Cluster {
	t.Helper()
	cli := cliBinary(t)
	c := &Cluster{}
	for range masters {
		args := []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(clusterNodeTimeout),
			// The bus port is chosen too: port+10000 may be taken or
			// past the last port.
			"--cluster-port", strconv.Itoa(FreePort(t)),
		}
		node := Start(t, append([]Option{WithArgs(args...)}, opts...)...)
		c.Masters = append(c.Masters, node)
	}

	create := []string{"--cluster", "create"}
	create = append(create, c.Addrs()...)
	create = append(create, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), readyWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, create...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitState(ctx, "ok", c.Masters...); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return c
}

func cliBinary(t testing.TB) string {
	t.Helper()
	Binary(t)
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found next to redis-server: %v", err)
	}
	return bin
}

// Addrs returns host:port of every master.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Masters))
	for i, s := range c.Masters {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Client returns a cluster client seeded with every master, which the test
// closes when it ends. Extra settings can be made in configure.
func (c *Cluster) Client(t testing.TB,
	configure ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	t.Helper()
	o := &redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second}
	for _, fn := range configure {
		fn(o)
	}
	client := redis.NewClusterClient(o)
	t.Cleanup(func() { client.Close() })
	return client
}

// MasterOf returns the master that holds the slot of the Redis key name,
// asking the cluster with CLUSTER KEYSLOT and CLUSTER SHARDS.
func (c *Cluster) MasterOf(ctx context.Context, name string) (*Server, error) {
	node := redis.NewClient(&redis.Options{Addr: c.Masters[0].Addr()})
	defer node.Close()

	slot, err := node.ClusterKeySlot(ctx, name).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster keyslot: %w", err)
	}
	shards, err := node.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster shards: %w", err)
	}
	for _, shard := range shards {
		if !holds(shard.Slots, slot) {
			continue
		}
		for _, n := range shard.Nodes {
			if n.Role != "master" {
				continue
			}
			for _, s := range c.Masters {
				if s.Port() == int(n.Port) {
					return s, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no master of this cluster holds slot %d", slot)
}

func holds(ranges []redis.SlotRange, slot int64) bool {
	for _, r := range ranges {
		if slot >= r.Start && slot <= r.End {
			return true
		}
	}
	return false
}

// WaitState waits until every given node reports cluster_state as want
// ("ok" or "fail"), or ctx ends.
func (c *Cluster) WaitState(ctx context.Context, want string, nodes ...*Server) error {
	for _, s := range nodes {
		node := redis.NewClient(&redis.Options{Addr: s.Addr()})
		err := waitClusterState(ctx, node, want)
		node.Close()
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Addr(), err)
		}
	}
	return nil
}

func waitClusterState(ctx context.Context, node *redis.Client, want string) error {
	last := ""
	for {
		info, err := node.ClusterInfo(ctx).Result()
		if err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
					last = v
				}
			}
			if last == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster_state is %q, want %q: %w", last, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
