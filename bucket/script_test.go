package bucket

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/internal/redistest"
)

// step is one decision of a scripted batch.
type step struct {
	key   string
	limit Limit
	req   request
}

// sendTogether makes the decisions of steps in one script call and returns
// each call with its reply or error.
func sendTogether(ctx context.Context, store *Redis, steps []step) []*call {
	batch := make([]*call, len(steps))
	for i, s := range steps {
		batch[i] = &call{ctx: ctx, key: store.KeyName(s.key), args: s.req.args(s.limit)}
	}
	store.batch.send(batch)
	return batch
}

// oneRun is a sequence on two buckets without refill, in runs of decisions
// on one key: a take that empties the bucket, a refusal, a refund that
// fills it (and deletes it), a take from the full bucket, a debit down to
// the floor, and a drain.
func oneRun() []step {
	ten := Limit{Capacity: 10, Rate: 0}
	five := Limit{Capacity: 5, Rate: 0}
	return []step{
		{"a", ten, request{kind: take, n: 10}},
		{"a", ten, request{kind: take, n: 1}},
		{"a", ten, request{kind: refund, n: 10}},
		{"a", ten, request{kind: take, n: 4}},
		{"b", five, request{kind: take, n: 2}},
		{"b", five, request{kind: take, n: 2}},
		{"b", five, request{kind: take, n: 2}},
		{"a", ten, request{kind: take, n: 3}},
		{"a", ten, request{kind: debit, n: 30}},
		{"a", ten, request{kind: take, n: 1}},
		{"b", five, request{kind: refund, n: 1}},
		{"b", five, request{kind: drain, hold: time.Second}},
		{"b", five, request{kind: take, n: 1}},
	}
}

func TestScriptRunOnOneKeyMatchesDecisionsOneByOne(t *testing.T) {
	ctx := context.Background()
	client := redistest.Start(t).Client(t)
	together := NewRedis(client, WithPrefix("together"))
	alone := NewRedis(client, WithPrefix("alone"))
	steps := oneRun()

	got := sendTogether(ctx, together, steps)
	for i, s := range steps {
		want := sendTogether(ctx, alone, []step{s})[0]
		if got[i].err != nil || want.err != nil {
			t.Fatalf("step %d: errors %v and %v", i, got[i].err, want.err)
		}
		together, alone := got[i].reply, want.reply
		if together.allowed != alone.allowed || together.state.tokens != alone.state.tokens {
			t.Errorf("step %d (kind %d, %d on %s): together %+v, one by one %+v",
				i, s.req.kind, s.req.n, s.key, got[i].reply, want.reply)
		}
		if got[i].reply.state.micros != got[0].reply.state.micros {
			t.Errorf("step %d: time %d, step 0 had %d: one call has one instant",
				i, got[i].reply.state.micros, got[0].reply.state.micros)
		}
	}

	for _, key := range []string{"a", "b"} {
		for _, store := range []*Redis{together, alone} {
			state, err := client.HGetAll(ctx, store.KeyName(key)).Result()
			if err != nil {
				t.Fatalf("HGETALL: %v", err)
			}
			if state["tokens"] == "" {
				t.Fatalf("%s of %s: no bucket left in Redis", key, store.prefix)
			}
			if ttl := client.TTL(ctx, store.KeyName(key)).Val(); ttl != -1 {
				t.Errorf("%s of %s: TTL %v, want none for a bucket that never refills",
					key, store.prefix, ttl)
			}
		}
		want := client.HGet(ctx, alone.KeyName(key), "tokens").Val()
		if got := client.HGet(ctx, together.KeyName(key), "tokens").Val(); got != want {
			t.Errorf("bucket %s holds %s tokens after one call, %s one by one", key, got, want)
		}
	}
}

func TestScriptExpiresARunsBucketWhenItWouldBeFull(t *testing.T) {
	ctx := context.Background()
	client := redistest.Start(t).Client(t)
	store := NewRedis(client)
	limit := Limit{Capacity: 100, Rate: 1} // a token a second

	steps := []step{
		{"k", limit, request{kind: take, n: 30}},
		{"k", limit, request{kind: take, n: 20}},
	}
	for _, cl := range sendTogether(ctx, store, steps) {
		if cl.err != nil || !cl.reply.allowed {
			t.Fatalf("take: %+v, %v", cl.reply, cl.err)
		}
	}

	// 50 tokens are missing: the bucket is full again in 50 s, not 20 s
	// (the expiry of the first take of the run alone).
	ttl := client.PTTL(ctx, store.KeyName("k")).Val()
	if ttl < 49*time.Second || ttl > 51*time.Second {
		t.Fatalf("PTTL %v after taking 50 of 100 at 1/s, want about 50s", ttl)
	}
}

func TestScriptFailsTheRunWhoseWriteFails(t *testing.T) {
	ctx := context.Background()
	client := redistest.Start(t).Client(t)
	store := NewRedis(client)
	limit := Limit{Capacity: 10, Rate: 0}

	drain := []step{{"full", limit, request{kind: take, n: 10}}}
	if got := sendTogether(ctx, store, drain); got[0].err != nil {
		t.Fatalf("take: %v", got[0].err)
	}
	// Over maxmemory every write fails; reads still work.
	if err := client.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatalf("CONFIG SET: %v", err)
	}
	steps := []step{
		{"k", limit, request{kind: take, n: 1}},
		{"k", limit, request{kind: take, n: 20}}, // refused, but its run wrote
		{"full", limit, request{kind: take, n: 1}},
	}
	got := sendTogether(ctx, store, steps)
	if err := client.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatalf("CONFIG SET: %v", err)
	}

	for i := range 2 {
		if got[i].err == nil || !strings.Contains(got[i].err.Error(), "OOM") {
			t.Errorf("step %d in a run whose write failed: %+v, %v; want an OOM error",
				i, got[i].reply, got[i].err)
		}
	}
	if got[2].err != nil || got[2].reply.allowed {
		t.Errorf("refusal on a drained bucket, which writes nothing: %+v, %v",
			got[2].reply, got[2].err)
	}
	if n := client.Exists(ctx, store.KeyName("k")).Val(); n != 0 {
		t.Errorf("the failed run left a bucket in Redis")
	}
}

func TestScriptRefusesBadArgumentsOfOneDecisionOnly(t *testing.T) {
	ctx := context.Background()
	client := redistest.Start(t).Client(t)
	store := NewRedis(client)
	limit := Limit{Capacity: 10, Rate: 0}

	steps := []step{
		{"k", limit, request{kind: take, n: 3}},
		{"k", limit, request{kind: take, n: 1}},
		{"k", limit, request{kind: take, n: 2}},
	}
	batch := make([]*call, len(steps))
	for i, s := range steps {
		batch[i] = &call{ctx: ctx, key: store.KeyName(s.key), args: s.req.args(s.limit)}
	}
	batch[1].args[2] = 7      // no such operation
	batch[2].args[3] = "many" // not a number
	store.batch.send(batch)

	if batch[0].err != nil || !batch[0].reply.allowed || batch[0].reply.state.tokens != 7 {
		t.Errorf("valid take: %+v, %v; want allowed with 7 left", batch[0].reply, batch[0].err)
	}
	if batch[1].err == nil || !strings.Contains(batch[1].err.Error(), "unknown operation 7") {
		t.Errorf("operation 7: %v; want an unknown operation error", batch[1].err)
	}
	if batch[2].err == nil || !strings.Contains(batch[2].err.Error(), "must be numbers") {
		t.Errorf("amount %q: %v; want an error about numbers", "many", batch[2].err)
	}
	tokens, err := client.HGet(ctx, store.KeyName("k"), "tokens").Result()
	if err != nil || tokens != "7" {
		t.Errorf("stored tokens %q, %v; want 7, from the valid take alone", tokens, err)
	}
}
