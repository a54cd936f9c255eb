package ratingapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
	"github.com/openclaw/ratelimit/ratingapi"
)

func TestBadRequests(t *testing.T) {
	big := `{"item_id": "x", "score": 1, "comment": "` + strings.Repeat("a", 70_000) + `"}`
	long := strings.Repeat("é", 129)
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		header []string
		status int
		msg    string // a part of the error message
	}{
		{"empty body", "POST", "/v1/ratings", "", nil, 400, "empty"},
		{"not JSON", "POST", "/v1/ratings", "score=5", nil, 400, "not valid JSON"},
		{"cut short", "POST", "/v1/ratings", `{"item_id": "x"`, nil, 400, "not valid JSON"},
		{"array", "POST", "/v1/ratings", `[1, 2]`, nil, 400, "JSON object"},
		{"string", "POST", "/v1/ratings", `"hello"`, nil, 400, "JSON object"},
		{"null", "POST", "/v1/ratings", `null`, nil, 400, "JSON object"},
		{"unknown field", "POST", "/v1/ratings", `{"item_id":"x","score":1,"stars":5}`,
			nil, 400, `unknown field "stars"`},
		{"duplicate item", "POST", "/v1/ratings", `{"item_id":"a","item_id":"b","score":1}`,
			nil, 400, `field "item_id" appears more than once`},
		{"duplicate score", "POST", "/v1/ratings", `{"item_id":"a","score":1,"score":5}`,
			nil, 400, `field "score" appears more than once`},
		{"duplicate null", "POST", "/v1/ratings", `{"item_id":"a","comment":null,"comment":"x",` +
			`"score":1}`, nil, 400, `field "comment" appears more than once`},
		{"duplicate by escape", "POST", "/v1/ratings", `{"item_id":"a","item\u005fid":"b",` +
			`"score":1}`, nil, 400, `field "item_id" appears more than once`},
		{"name in another case", "POST", "/v1/ratings", `{"Item_ID":"x","score":1}`,
			nil, 400, `unknown field "Item_ID"`},
		{"nested value", "POST", "/v1/ratings", `{"item_id":{"item_id":"x"},"score":1}`,
			nil, 400, "item_id must be a string"},
		{"missing colon", "POST", "/v1/ratings", `{"item_id" "x","score":1}`,
			nil, 400, "not valid JSON"},
		{"trailing comma", "POST", "/v1/ratings", `{"item_id":"x","score":1,}`,
			nil, 400, "not valid JSON"},
		{"open brace only", "POST", "/v1/ratings", `{`, nil, 400, "ends too soon"},
		{"invalid UTF-8 in item", "POST", "/v1/ratings", "{\"item_id\":\"a\xffb\",\"score\":3}",
			nil, 400, "not valid UTF-8"},
		{"invalid UTF-8 in comment", "POST", "/v1/ratings",
			"{\"item_id\":\"a\",\"score\":3,\"comment\":\"\xc3\"}", nil, 400, "not valid UTF-8"},
		{"lone high surrogate", "POST", "/v1/ratings", `{"item_id":"a\ud83db","score":3}`,
			nil, 400, "unpaired UTF-16 surrogate at byte 13"},
		{"lone low surrogate", "POST", "/v1/ratings", `{"item_id":"\udc00","score":3}`,
			nil, 400, "unpaired UTF-16 surrogate"},
		{"two high surrogates", "POST", "/v1/ratings", `{"item_id":"\ud83d\ud83d","score":3}`,
			nil, 400, "unpaired UTF-16 surrogate"},
		{"trailing data", "POST", "/v1/ratings", `{"item_id":"x","score":1} {}`,
			nil, 400, "after the JSON object"},
		{"trailing brace", "POST", "/v1/ratings", `{"item_id":"x","score":1}}`,
			nil, 400, "after the JSON object"},
		{"float score", "POST", "/v1/ratings", `{"item_id":"x","score":4.5}`, nil, 400, "integer"},
		{"float-looking integer", "POST", "/v1/ratings", `{"item_id":"x","score":4.0}`,
			nil, 400, "integer"},
		{"string score", "POST", "/v1/ratings", `{"item_id":"x","score":"5"}`, nil, 400, "integer"},
		{"huge score", "POST", "/v1/ratings", `{"item_id":"x","score":1e400}`, nil, 400, "integer"},
		{"score 0", "POST", "/v1/ratings", `{"item_id":"x","score":0}`, nil, 400, "1 to 5"},
		{"score 6", "POST", "/v1/ratings", `{"item_id":"x","score":6}`, nil, 400, "1 to 5"},
		{"negative score", "POST", "/v1/ratings", `{"item_id":"x","score":-1}`, nil, 400, "1 to 5"},
		{"no score", "POST", "/v1/ratings", `{"item_id":"x"}`, nil, 400, "score is required"},
		{"no item", "POST", "/v1/ratings", `{"score":3}`, nil, 400, "item_id is required"},
		{"empty item", "POST", "/v1/ratings", `{"item_id":"","score":3}`, nil, 400, "1 to 128"},
		{"long item", "POST", "/v1/ratings", `{"item_id":"` + long + `","score":3}`,
			nil, 400, "1 to 128"},
		{"numeric item", "POST", "/v1/ratings", `{"item_id":7,"score":3}`, nil, 400, "string"},
		{"control in item", "POST", "/v1/ratings", `{"item_id":"a\u0000b","score":3}`,
			nil, 400, "control"},
		{"long comment", "POST", "/v1/ratings",
			`{"item_id":"x","score":3,"comment":"` + strings.Repeat("c", 1001) + `"}`,
			nil, 400, "comment"},
		{"object comment", "POST", "/v1/ratings", `{"item_id":"x","score":3,"comment":{}}`,
			nil, 400, "comment must be a string"},
		{"body over 64 KiB", "POST", "/v1/ratings", big, nil, 413, "exceeds"},
		{"form content type", "POST", "/v1/ratings", `{"item_id":"x","score":1}`,
			[]string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"text content type", "POST", "/v1/ratings", `{"item_id":"x","score":1}`,
			[]string{"Content-Type", "text/plain"}, 415, "application/json"},
		{"broken content type", "POST", "/v1/ratings", `{"item_id":"x","score":1}`,
			[]string{"Content-Type", "application/json; ==="}, 415, "application/json"},
		{"latin-1 charset", "POST", "/v1/ratings", `{"item_id":"x","score":1}`,
			[]string{"Content-Type", "application/json; charset=latin1"}, 415, "utf-8"},
		{"long item in path", "GET", "/v1/items/" + strings.Repeat("x", 129) + "/rating",
			"", nil, 400, "1 to 128"},
		{"invalid UTF-8 in path", "GET", "/v1/items/%C3%28/rating", "", nil, 400, "UTF-8"},
		{"control in path", "GET", "/v1/items/a%00b/rating", "", nil, 400, "control"},
		{"wrong method", "GET", "/v1/ratings", "", nil, 405, "method"},
		{"unknown route", "GET", "/v1/nothing", "", nil, 404, "route"},
		{"unknown root route", "GET", "/admin", "", nil, 404, "route"},
	}

	h := ratingapi.New(ratingapi.Config{
		RateLimit: ratelimit.New(bucket.NewMemory(), bucket.Limit{Capacity: 1000, Rate: 1}),
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := sendRaw(h, tc.method, tc.path, tc.body, tc.header)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tc.status, rec.Body)
			}
			if msg := decode[errBody](t, rec).Error; !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q does not contain %q", msg, tc.msg)
			}
		})
	}
}

func TestCharsetUTF8IsAccepted(t *testing.T) {
	h := ratingapi.New(ratingapi.Config{})
	rec := sendRaw(h, "POST", "/v1/ratings", `{"item_id":"x","score":2}`,
		[]string{"Content-Type", "application/json; charset=UTF-8"})
	if rec.Code != http.StatusCreated {
		t.Errorf("status %d, body %s", rec.Code, rec.Body)
	}
}

// sendRaw sends a request with a key and exactly the given headers.
func sendRaw(
	h http.Handler, method, path, body string, header []string,
) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	req.URL.Path, req.URL.RawPath, req.RequestURI = "", "", path
	if u, err := req.URL.Parse(path); err == nil {
		req.URL = u
	}
	req.Header.Set("X-API-Key", testKey)
	if method == http.MethodPost && len(header) == 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestStreamedBodyOverTheLimit(t *testing.T) {
	h := ratingapi.New(ratingapi.Config{})
	body := `{"item_id":"x","score":1,"comment":"` + strings.Repeat("a", 70_000) + `"}`
	req := httptest.NewRequest("POST", "/v1/ratings", strings.NewReader(body))
	req.ContentLength = -1 // as with chunked encoding
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", testKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413 (body %s)", rec.Code, rec.Body)
	}
}

func TestEscapedTextIsKept(t *testing.T) {
	h := ratingapi.New(ratingapi.Config{})
	body := `{"item\u005fid":"smile \ud83d\ude00 caf\u00e9","score":4,` +
		`"comment":"tab\tand \"quote\" \\ud800"}`
	rec := do(t, h, "POST", "/v1/ratings", testKey, body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	got := decode[ratingapi.Rating](t, rec)
	if got.ItemID != "smile 😀 café" || got.Comment != `tab	and "quote" \ud800` {
		t.Errorf("stored item %q and comment %q", got.ItemID, got.Comment)
	}
}
