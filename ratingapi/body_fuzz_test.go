package ratingapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/openclaw/ratelimit/ratingapi"
)

// FuzzRatingBody posts whatever body and Content-Type the fuzzer makes.
// The API must never panic or answer a 5xx; a refusal is a 4xx with a JSON
// error; a body it accepts is valid UTF-8 whose object names each field
// once, exactly; and an accepted rating must round-trip: the stored rating
// holds the fields of the body, and reading the item back finds it.
func FuzzRatingBody(f *testing.F) {
	const jsonType = "application/json"
	for _, seed := range [][2]string{
		{`{"item_id":"book-1","score":5}`, jsonType},
		{`{"item_id":"book-1","score":3,"comment":"fine"}`, jsonType + "; charset=utf-8"},
		{`{"item_id":"book-1","score":4.5}`, jsonType},
		{`{"item_id":"book-1","score":"5"}`, jsonType},
		{`{"item_id":"book-1","score":0}`, jsonType},
		{`{"item_id":"book-1","score":6}`, jsonType},
		{`{"item_id":"book-1","score":1e400}`, jsonType},
		{`{"item_id":"book-1","score":-9223372036854775809}`, jsonType},
		{`{"item_id":"","score":5}`, jsonType},
		{`{"item_id":"a\u0000b","score":5}`, jsonType},
		{"{\"item_id\":\"\xff\xfe\",\"score\":5}", jsonType},
		{`{"item_id":"x","score":5,"admin":true}`, jsonType},
		{`{"item_id":"x","score":1,"score":5}`, jsonType},
		{`{"item_id":"x","item\u005fid":"y","score":5}`, jsonType},
		{`{"ITEM_ID":"x","score":5}`, jsonType},
		{`{"item_id":"\ud83d\ude00","score":5}`, jsonType},
		{`{"item_id":"\ud83dx","score":5}`, jsonType},
		{`{"item_id":"x","score":5,"comment":"\\udc00"}`, jsonType},
		{`{"item_id":"x","score":5,"comment":{"a":1,"a":2}}`, jsonType},
		{`{"item_id":"x","score":5} {"item_id":"y","score":5}`, jsonType},
		{`[{"item_id":"x","score":5}]`, jsonType},
		{`null`, jsonType},
		{``, jsonType},
		{`{"item_id":"x","score":5}`, "text/plain"},
		{`{"item_id":"x","score":5}`, jsonType + "; charset=latin1"},
		{`{"item_id":"x","score":5}`, ""},
		{`{"item_id":"` + strings.Repeat("é", 128) + `","score":2}`, jsonType},
		{`{"item_id":"` + strings.Repeat("a", 129) + `","score":2}`, jsonType},
		{`{"item_id":"x","score":5,"comment":"` + strings.Repeat("c", 70000) + `"}`, jsonType},
		{strings.Repeat("[", 10000), jsonType},
		{`{"item_id":"a/b?c#d%2F..","score":1}`, jsonType},
	} {
		f.Add(seed[0], seed[1])
	}

	f.Fuzz(func(t *testing.T, body, contentType string) {
		h := ratingapi.New(ratingapi.Config{})
		req := httptest.NewRequest(http.MethodPost, "/v1/ratings", strings.NewReader(body))
		req.Header["Content-Type"] = []string{contentType}
		req.Header.Set("X-API-Key", "fuzz-key")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("body %q (%q) got %d: %s", body, contentType, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusCreated {
			var e struct{ Error string }
			if rec.Code < 400 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("body %q got %d with %q, want a 4xx with a JSON error",
					body, rec.Code, rec.Body)
			}
			return
		}

		// Accepted: the body is one that no reader could take otherwise.
		if !utf8.ValidString(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		keys := topLevelKeys(t, body)
		seen := make(map[string]bool)
		for _, k := range keys {
			if seen[k] || k != "item_id" && k != "score" && k != "comment" {
				t.Fatalf("accepted a body with the fields %q: %q", keys, body)
			}
			seen[k] = true
		}

		// What came back is what the body said.
		var sent, stored struct {
			ItemID  string `json:"item_id"`
			Score   int    `json:"score"`
			Comment string `json:"comment"`
		}
		if err := json.Unmarshal([]byte(body), &sent); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %q: %v", body, err)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &stored); err != nil {
			t.Fatalf("201 body is not JSON: %q", rec.Body)
		}
		if stored != sent {
			t.Fatalf("stored %+v from body %q, want %+v", stored, body, sent)
		}

		get := httptest.NewRequest(http.MethodGet,
			"/v1/items/"+url.PathEscape(sent.ItemID)+"/rating", nil)
		get.Header.Set("X-API-Key", "fuzz-key")
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, get)
		var sum ratingapi.Summary
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &sum) != nil {
			t.Fatalf("reading item %q back got %d: %s", sent.ItemID, rec.Code, rec.Body)
		}
		if sum.ItemID != sent.ItemID || sum.Count != 1 || sum.Average != float64(sent.Score) {
			t.Fatalf("item %q reads %+v, want one rating of %d", sent.ItemID, sum, sent.Score)
		}
	})
}

// topLevelKeys returns the names of the top-level object of body, in
// order and with repeats, walking every token of every depth.
func topLevelKeys(t *testing.T, body string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	var (
		keys  []string
		stack []json.Delim // the open objects and arrays
		isKey = false      // the next token in an object is a name
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Fatalf("accepted a body that does not tokenize: %q: %v", body, err)
		}
		inObject := len(stack) > 0 && stack[len(stack)-1] == '{'
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, tok.(json.Delim))
			isKey = tok == json.Delim('{')
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if inObject && isKey {
				if len(stack) == 1 {
					keys = append(keys, tok.(string))
				}
				isKey = false
				continue
			}
		}
		isKey = len(stack) > 0 && stack[len(stack)-1] == '{'
	}
}
