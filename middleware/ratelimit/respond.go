package ratelimit

import (
	"net/http"
	"strconv"

	"github.com/openclaw/ratelimit/bucket"
)

// writeJSON writes a JSON body that the caller has already encoded.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes {"error": msg}. msg is a constant of this package and
// needs no escaping.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, []byte(`{"error":"`+msg+`"}`+"\n"))
}

// Denied is the default DeniedHandler. It writes 429 and
// {"error": "rate limit exceeded", "retry_after_seconds": N}, where N is
// the Retry-After header already set, or omitted when the bucket never
// refills.
func Denied(w http.ResponseWriter, _ *http.Request, _ bucket.Result) {
	body := []byte(`{"error":"rate limit exceeded"`)
	if after := w.Header().Get(HeaderRetryAfter); after != "" {
		body = append(body, `,"retry_after_seconds":`...)
		body = append(body, after...)
	}
	body = append(body, "}\n"...)
	writeJSON(w, http.StatusTooManyRequests, body)
}

// retryAfter returns the Retry-After value of a refusal of res, n tokens:
// whole seconds rounded up, at least one, and never before next.
func retryAfter(res bucket.Result, next int64) string {
	if next < 0 {
		return ""
	}
	return strconv.FormatInt(max(seconds(res.RetryAfter), next, 1), 10)
}
