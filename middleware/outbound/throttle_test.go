package outbound

import (
	"net/http"
	"testing"
	"time"
)

func TestProviderWait(t *testing.T) {
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		header []string
		want   time.Duration
		found  bool
	}{
		{"nothing", nil, 0, false},
		{"seconds", []string{"Retry-After", "120"}, 2 * time.Minute, true},
		{"zero seconds", []string{"Retry-After", "0"}, 0, true},
		{"fractional seconds", []string{"Retry-After", "1.5"}, 1500 * time.Millisecond, true},
		{"http date", []string{"Date", date.Format(http.TimeFormat),
			"Retry-After", date.Add(90 * time.Second).Format(http.TimeFormat)},
			90 * time.Second, true},
		{"http date passed", []string{"Date", date.Format(http.TimeFormat),
			"Retry-After", date.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{"garbage", []string{"Retry-After", "soon"}, 0, false},
		{"negative", []string{"Retry-After", "-5"}, 0, false},
		{"huge", []string{"Retry-After", "99999999999"}, maxHold, true},
		{"reset requests", []string{"X-Ratelimit-Reset-Requests", "20ms"},
			20 * time.Millisecond, true},
		{"reset tokens", []string{"X-Ratelimit-Reset-Tokens", "6m0s"}, 6 * time.Minute, true},
		{"reset seconds", []string{"X-Ratelimit-Reset-Tokens", "1s"}, time.Second, true},
		{"reset number", []string{"X-Ratelimit-Reset-Tokens", "2.5"},
			2500 * time.Millisecond, true},
		{"reset rfc 3339", []string{"Date", date.Format(http.TimeFormat),
			"X-Ratelimit-Reset-Tokens", date.Add(time.Minute).Format(time.RFC3339)},
			time.Minute, true},
		{"longest wins", []string{"Retry-After", "1", "X-Ratelimit-Reset-Requests", "20ms",
			"X-Ratelimit-Reset-Tokens", "1m30s"}, 90 * time.Second, true},
		{"bad reset ignored", []string{"Retry-After", "3",
			"X-Ratelimit-Reset-Tokens", "later"}, 3 * time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := make(http.Header)
			for i := 0; i+1 < len(c.header); i += 2 {
				h.Set(c.header[i], c.header[i+1])
			}
			got, found := providerWait(h, DefaultResetHeaders, date)
			if got != c.want || found != c.found {
				t.Errorf("got %v, %v; want %v, %v", got, found, c.want, c.found)
			}
		})
	}
}

// An HTTP date is read against the response's Date, not the local clock.
func TestProviderWaitUsesDateHeader(t *testing.T) {
	server := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	local := server.Add(-time.Hour) // a local clock an hour behind
	h := http.Header{}
	h.Set("Date", server.Format(http.TimeFormat))
	h.Set("Retry-After", server.Add(30*time.Second).Format(http.TimeFormat))
	if got, _ := providerWait(h, nil, local); got != 30*time.Second {
		t.Errorf("got %v, want 30s", got)
	}
}

func TestMarks(t *testing.T) {
	ms := newMarks()
	now := time.Now()
	ms.refused("k", 5, now, time.Minute)

	if got := ms.wait("k", 5, now); got != time.Minute {
		t.Errorf("same cost: wait %v, want 1m", got)
	}
	if got := ms.wait("k", 9, now); got != time.Minute {
		t.Errorf("higher cost: wait %v, want 1m", got)
	}
	if got := ms.wait("k", 4, now); got != 0 {
		t.Errorf("lower cost: wait %v, want 0 (fewer tokens may be there sooner)", got)
	}
	ms.refunded("k")
	if got := ms.wait("k", 5, now); got != 0 {
		t.Errorf("refunded: wait %v, want 0 (tokens came back)", got)
	}
	ms.refused("k", 5, now, time.Minute)

	ms.drained("k", now.Add(2*time.Minute))
	if got := ms.wait("k", 1, now); got != 2*time.Minute {
		t.Errorf("drained: wait %v, want 2m", got)
	}
	ms.refused("k", 1, now, time.Second) // says less than the drain
	if got := ms.wait("k", 1, now); got != 2*time.Minute {
		t.Errorf("after a weaker refusal: wait %v, want 2m", got)
	}
	ms.refunded("k") // a drain is the provider's word, not a count of tokens
	if got := ms.wait("k", 1, now); got != 2*time.Minute {
		t.Errorf("drained, then refunded: wait %v, want 2m", got)
	}
	if got := ms.wait("k", 1, now.Add(3*time.Minute)); got != 0 {
		t.Errorf("passed: wait %v, want 0", got)
	}
	if len(ms.m) != 0 {
		t.Errorf("%d marks left, want the passed one dropped", len(ms.m))
	}
}
