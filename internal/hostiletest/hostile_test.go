package hostiletest

import "testing"

// TestRequestsAreDistinctRefusals checks the table itself: every case has
// a name of its own (subtests are found by name) and wants a refusal.
func TestRequestsAreDistinctRefusals(t *testing.T) {
	seen := make(map[string]bool)
	for _, c := range Requests() {
		if c.Name == "" || seen[c.Name] {
			t.Errorf("case name %q is empty or used twice", c.Name)
		}
		seen[c.Name] = true
		if c.Raw == "" {
			t.Errorf("%s: no request", c.Name)
		}
		if c.Want != 0 && (c.Want < 400 || c.Want > 499) {
			t.Errorf("%s: wants %d, not a refusal", c.Name, c.Want)
		}
	}
}

// TestRequestBuilders checks that Post counts its body in Content-Length
// and that both end the header block as HTTP/1.1 wants.
func TestRequestBuilders(t *testing.T) {
	want := "POST /v1/ratings HTTP/1.1\r\nHost: x\r\nX-API-Key: hostile-key\r\n" +
		"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	if got := Post("{}", JSON); got != want {
		t.Errorf("Post = %q, want %q", got, want)
	}
	want = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\n\r\n"
	if got := Get("/healthz", "k"); got != want {
		t.Errorf("Get = %q, want %q", got, want)
	}
}
