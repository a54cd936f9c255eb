package ratingapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode"
	"unicode/utf16"
)

// parseRating reads the one JSON object of body a field at a time. A name
// must match a field exactly and appear once: encoding/json alone would
// keep the last of two values and match names in any case, and another
// parser in front of this service might read the same body otherwise.
// Every field is a scalar, so a nested value is a type error.
func parseRating(body []byte) (ratingRequest, *requestError) {
	var req ratingRequest
	dec := json.NewDecoder(bytes.NewReader(body))

	tok, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return req, badRequest("body is empty")
	case err != nil:
		return req, syntaxError(err)
	case tok != json.Delim('{'):
		return req, badRequest("body must be a JSON object")
	}

	var seen [3]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, syntaxError(err)
		}
		name, _ := tok.(string) // a key is always a string
		i, target := req.field(name)
		if target == nil {
			return req, badRequest("unknown field %q", clip(name))
		}
		if seen[i] {
			return req, badRequest("field %q appears more than once", name)
		}
		seen[i] = true
		if err := dec.Decode(target); err != nil {
			return req, valueError(name, err)
		}
	}

	// The closing brace, then nothing but white space.
	if _, err := dec.Token(); err != nil {
		return req, syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, badRequest("body holds data after the JSON object")
	}
	return req, nil
}

// field returns the index and the address of the field called name, or a
// nil address when there is none.
func (req *ratingRequest) field(name string) (int, any) {
	switch name {
	case "item_id":
		return 0, &req.ItemID
	case "score":
		return 1, &req.Score
	case "comment":
		return 2, &req.Comment
	}
	return 0, nil
}

// syntaxError turns an error of the JSON tokenizer into a client error.
// The body is not empty when it is called, so an early end is a cut.
func syntaxError(err error) *requestError {
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body is not valid JSON: it ends too soon")
	case errors.As(err, &syntaxErr):
		return badRequest("body is not valid JSON at byte %d", syntaxErr.Offset)
	}
	return badRequest("body is not valid JSON")
}

// valueError turns an error of decoding the value of field name into a
// client error.
func valueError(name string, err error) *requestError {
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return syntaxError(err)
	}
	switch name {
	case "item_id":
		return badRequest("item_id must be a string")
	case "score":
		return badRequest("score must be an integer from %d to %d", MinScore, MaxScore)
	}
	return badRequest("comment must be a string")
}

// loneSurrogate returns the offset of the first \u escape in body that
// names half of a UTF-16 surrogate pair without the other half right
// after it, or -1. encoding/json decodes such an escape to U+FFFD. Outside
// strings a backslash is a syntax error, which the parser reports.
func loneSurrogate(body []byte) int {
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		r, ok := escapedRune(body[i:])
		if !ok {
			i++ // a one-letter escape such as \" or \\
			continue
		}
		if !utf16.IsSurrogate(r) {
			i += 5
			continue
		}
		low, ok := escapedRune(body[i+6:])
		if !ok || utf16.DecodeRune(r, low) == unicode.ReplacementChar {
			return i
		}
		i += 11
	}
	return -1
}

// escapedRune reads the \uXXXX escape at the start of b.
func escapedRune(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
