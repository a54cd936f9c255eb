package bucket

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// batchSource runs the bucket script once for each key it is given, every
// decision in its own protected call, so that one failed decision fails
// alone. The bucket script is kept word for word as the body of a
// function, whose KEYS and ARGV are those of one decision.
//
// ARGV holds the arguments of each decision in turn, the same number for
// each. The reply holds three fields for each decision: the reply of the
// bucket script, or -1 and the error text.
var batchSource = "local function decide(KEYS, ARGV)\n" + bucketSource + "\nend\n" + `
local per = #ARGV / #KEYS
local out = {}
for i = 1, #KEYS do
  local args = {}
  for j = 1, per do
    args[j] = ARGV[per * (i - 1) + j]
  end
  local ok, r = pcall(decide, {KEYS[i]}, args)
  if ok then
    out[#out + 1], out[#out + 2], out[#out + 3] = r[1], r[2], r[3]
  else
    if type(r) == 'table' then r = r.err end
    out[#out + 1], out[#out + 2], out[#out + 3] = -1, tostring(r), 0
  end
end
return out
`

var batchScript = redis.NewScript(batchSource)

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
		argv[0], argv[1], argv[2] = "evalsha", batchScript.Hash(), len(g)
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

// deliver hands each call of a group its part of the reply.
func deliver(g []*call, reply any, err error) {
	fields, ok := reply.([]any)
	if err == nil && (!ok || len(fields) != 3*len(g)) {
		err = fmt.Errorf("unexpected reply %v", reply)
	}
	for i, cl := range g {
		if err != nil {
			cl.reply, cl.err = nil, err
			continue
		}
		part := fields[3*i : 3*i+3 : 3*i+3]
		if code, _ := part[0].(int64); code < 0 {
			text, _ := part[1].(string)
			cl.reply, cl.err = nil, errors.New(text)
			continue
		}
		cl.reply, cl.err = part, nil
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
