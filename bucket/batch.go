package bucket

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// bucketSource makes the decisions of one script call: one for each key,
// each atomic, all at one reading of the Redis clock. A failed decision
// does not fail the others, but the decisions in a row on one key share
// one read and one write of the bucket, and fail together when these do.
//
//go:embed bucket.lua
var bucketSource string

// bucketScript is the only script the stores run.
var bucketScript = redis.NewScript(bucketSource)

// groupKey names the decisions that may share one script call.
type groupKey struct {
	slot  int
	key   string
	arity int // script arguments of each decision
}

// groups splits batch into the groups that may share a script call, each
// at most maxGroup long, keeping the order of the calls within a group.
func (c *coalescer) groups(batch []*call) [][]*call {
	var out [][]*call
	index := make(map[groupKey]int)
	for _, cl := range batch {
		g := c.group(cl.key)
		g.arity = len(cl.args)
		i, ok := index[g]
		if !ok || len(out[i]) == maxGroup {
			i = len(out)
			index[g] = i
			out = append(out, make([]*call, 0, min(len(batch), maxGroup)))
		}
		out[i] = append(out[i], cl)
	}
	return out
}

// exec sends one script call for each group in one pipeline and hands
// each call its reply or error. It returns the groups refused with
// NOSCRIPT, whose calls hold that error.
func (c *coalescer) exec(ctx context.Context, groups [][]*call) [][]*call {
	pipe := c.client.Pipeline()
	cmds := make([]*redis.Cmd, len(groups))
	for i, g := range groups {
		argv := make([]any, 3, 3+len(g)*(1+len(g[0].args)))
		argv[0], argv[1], argv[2] = "evalsha", bucketScript.Hash(), len(g)
		for _, cl := range g {
			argv = append(argv, cl.key)
		}
		for _, cl := range g {
			argv = append(argv, cl.args...)
		}
		cmds[i] = redis.NewCmd(ctx, argv...)
		_ = pipe.Process(ctx, cmds[i])
	}
	// Every command carries its own error; the first is returned here too.
	// A failure to set up the connection (a wrong password) may reach only
	// the error of Exec, leaving the commands with neither reply nor error.
	_, execErr := pipe.Exec(ctx)

	var missing [][]*call
	for i, g := range groups {
		err := cmds[i].Err()
		if err == nil && cmds[i].Val() == nil && execErr != nil {
			err = execErr
		}
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			missing = append(missing, g)
		}
		deliver(g, cmds[i].Val(), err)
	}
	return missing
}

// scriptReply is what the bucket script answers for one decision.
type scriptReply struct {
	allowed bool
	state   redisState
}

// deliver hands each call of a group its part of the reply: two fields for
// each decision, allowed (or -1) and the tokens after (or the error text),
// and last the Redis time of them all.
func deliver(g []*call, reply any, err error) {
	fields, ok := reply.([]any)
	if err == nil && (!ok || len(fields) != 2*len(g)+1) {
		err = fmt.Errorf("unexpected reply %v", reply)
	}
	var micros int64
	if err == nil {
		if micros, ok = fields[len(fields)-1].(int64); !ok {
			err = fmt.Errorf("unexpected time %v", fields[len(fields)-1])
		}
	}
	for i, cl := range g {
		if err != nil {
			cl.reply, cl.err = scriptReply{}, err
			continue
		}
		code, ok1 := fields[2*i].(int64)
		text, ok2 := fields[2*i+1].(string)
		switch {
		case !ok1 || !ok2:
			cl.reply, cl.err = scriptReply{}, fmt.Errorf("unexpected reply %v", fields[2*i:2*i+2])
		case code < 0:
			cl.reply, cl.err = scriptReply{}, errors.New(text)
		default:
			tokens, err := strconv.ParseFloat(text, 64)
			if err != nil {
				cl.reply, cl.err = scriptReply{}, fmt.Errorf("tokens %q: %w", text, err)
				continue
			}
			cl.reply = scriptReply{allowed: code == 1, state: redisState{tokens: tokens, micros: micros}}
			cl.err = nil
		}
	}
}

// slotOf returns the Redis Cluster hash slot of key: the CRC16 of its hash
// tag, the part between the first { and the next }, when that part is not
// empty, and of the whole key otherwise.
func slotOf(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return int(crc16(key) % 16384)
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
