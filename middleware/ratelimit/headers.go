package ratelimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

// Header names set on every limited response, in the canonical form of
// http.Header. RateLimit-Policy and RateLimit are the structured fields of
// the IETF draft on rate limit headers; the X-RateLimit-* names are the
// older convention most clients read. Header names are case-insensitive.
const (
	HeaderLimit      = "X-Ratelimit-Limit"
	HeaderRemaining  = "X-Ratelimit-Remaining"
	HeaderReset      = "X-Ratelimit-Reset"
	HeaderPolicy     = "Ratelimit-Policy"
	HeaderRateLimit  = "Ratelimit"
	HeaderRetryAfter = "Retry-After"
)

// policyName names the one policy in RateLimit-Policy and RateLimit.
const policyName = `"default"`

// setHeaders writes the rate limit headers of res, a decision made at now,
// and returns the whole seconds until the next request of the same cost may
// pass, or -1 when it never may.
//
// All values are written into one buffer and cut from one string, and the
// names are already canonical, so that the headers cost two allocations.
func setHeaders(h http.Header, res bucket.Result, now time.Time) int64 {
	next := seconds(res.Next)
	limit := res.Limit
	remaining := max(res.Remaining, 0)

	var (
		arr  [160]byte
		ends [5]int
	)
	buf := strconv.AppendInt(arr[:0], limit.Capacity, 10)
	ends[0] = len(buf)
	buf = strconv.AppendInt(buf, remaining, 10)
	ends[1] = len(buf)
	if res.ResetAfter != bucket.Forever {
		buf = strconv.AppendInt(buf, unixUp(now, res.ResetAfter), 10)
	}
	ends[2] = len(buf)

	buf = append(buf, policyName...)
	buf = append(buf, ";q="...)
	buf = strconv.AppendInt(buf, limit.Capacity, 10)
	if w := seconds(limit.FillTime()); w >= 0 {
		buf = append(buf, ";w="...)
		buf = strconv.AppendInt(buf, w, 10)
	}
	ends[3] = len(buf)

	buf = append(buf, policyName...)
	buf = append(buf, ";r="...)
	buf = strconv.AppendInt(buf, remaining, 10)
	if next >= 0 {
		buf = append(buf, ";t="...)
		buf = strconv.AppendInt(buf, next, 10)
	}
	ends[4] = len(buf)

	s := string(buf)
	values := make([]string, 5)
	names := [5]string{HeaderLimit, HeaderRemaining, HeaderReset, HeaderPolicy, HeaderRateLimit}
	from := 0
	for i, name := range names {
		if ends[i] > from {
			values[i] = s[from:ends[i]]
			h[name] = values[i : i+1 : i+1]
		}
		from = ends[i]
	}
	return next
}

// seconds returns d in whole seconds rounded up, or -1 for bucket.Forever.
func seconds(d time.Duration) int64 {
	if d == bucket.Forever {
		return -1
	}
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// unixUp returns the Unix time of now+d in whole seconds, rounded up.
func unixUp(now time.Time, d time.Duration) int64 {
	t := now.Add(d)
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}
