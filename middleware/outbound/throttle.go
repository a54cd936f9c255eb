package outbound

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// noHintHold is how long a 429 that does not say when to come back holds
// the key's buckets, so that the retry does not hit the provider at once.
const noHintHold = time.Second

// maxHold bounds how long a 429 holds the key's buckets, whatever its
// headers say, so that a malformed header cannot stop a key for years.
const maxHold = 24 * time.Hour

// throttle drains every bucket of key for as long as the 429 resp asks,
// which every process sharing the store sees, and returns that time.
func (t *Transport) throttle(req *http.Request, key string, resp *http.Response,
	attempt int) time.Duration {
	now := time.Now()
	hold, ok := providerWait(resp.Header, t.resetHeaders, now)
	if !ok {
		hold = noHintHold
	}
	hold = min(hold, maxHold)

	if hold > 0 {
		ctx, cancel := detach(req.Context())
		defer cancel()
		for _, q := range t.quotas {
			bkey := q.bucketKey(key)
			t.marks.drained(bkey, now.Add(hold))
			if _, err := t.store.Drain(ctx, bkey, q.Limit, hold); err != nil {
				t.emit(Event{Kind: EventStoreError, Request: req, Quota: q.Name, Err: err})
			}
		}
	}
	t.emit(Event{Kind: EventThrottled, Request: req, Wait: hold, Attempt: attempt})
	return hold
}

// providerWait returns the longest wait that the headers h of a 429 ask
// for, from Retry-After (seconds or an HTTP date) and the reset headers
// (durations, seconds or RFC 3339 times), and whether any of them said.
// Times are read against the response's Date header when there is one, so
// that the local clock's skew does not matter.
func providerWait(h http.Header, resetHeaders []string, now time.Time) (time.Duration, bool) {
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}

	var (
		wait  time.Duration
		found bool
	)
	if d, ok := parseRetryAfter(h.Get("Retry-After"), now); ok {
		wait, found = d, true
	}
	for _, name := range resetHeaders {
		if d, ok := parseReset(h.Get(name), now); ok {
			wait, found = max(wait, d), true
		}
	}
	return wait, found
}

// parseRetryAfter reads a Retry-After value: a number of seconds or an
// HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, ok := parseSeconds(v); ok {
		return d, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(0, at.Sub(now)), true
	}
	return 0, false
}

// parseReset reads a reset header: a duration such as "6m0s" or "20ms", a
// number of seconds, or an RFC 3339 time.
func parseReset(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, err := time.ParseDuration(v); err == nil {
		return max(0, d), true
	}
	if d, ok := parseSeconds(v); ok {
		return d, true
	}
	if at, err := time.Parse(time.RFC3339, v); err == nil {
		return max(0, at.Sub(now)), true
	}
	return 0, false
}

// parseSeconds reads a non-negative number of seconds, fractions allowed,
// and cuts it to maxHold.
func parseSeconds(v string) (time.Duration, bool) {
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, false
	}
	if s >= maxHold.Seconds() {
		return maxHold, true
	}
	return time.Duration(s * float64(time.Second)), true
}
