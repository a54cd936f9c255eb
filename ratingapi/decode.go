package ratingapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of a rating request.
const (
	MaxBodyBytes     = 64 << 10
	MaxItemIDChars   = 128
	MaxCommentChars  = 1000
	MinScore         = 1
	MaxScore         = 5
	maxEchoedNameLen = 64
)

// requestError is a client error: the status and the message to send.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// ratingRequest is the body of POST /v1/ratings. Pointers tell a missing
// field from a zero one.
type ratingRequest struct {
	ItemID  *string
	Score   *int
	Comment *string
}

// decodeRating reads and checks the body of POST /v1/ratings. The body is
// read whole, within MaxBodyBytes, so that its bytes can be checked before
// a JSON parser rewrites any of them.
func decodeRating(w http.ResponseWriter, r *http.Request) (ratingRequest, *requestError) {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return ratingRequest{}, err
	}
	if r.ContentLength > MaxBodyBytes {
		return ratingRequest{}, tooLarge()
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	switch {
	case tooLong(err):
		return ratingRequest{}, tooLarge()
	case err != nil:
		return ratingRequest{}, badRequest("body could not be read")
	}

	// encoding/json turns invalid text into U+FFFD without a word, which
	// would store something other than what the client sent.
	if !utf8.Valid(body) {
		return ratingRequest{}, badRequest("body is not valid UTF-8")
	}
	if at := loneSurrogate(body); at >= 0 {
		return ratingRequest{}, badRequest(
			"body has a \\u escape of an unpaired UTF-16 surrogate at byte %d", at)
	}

	req, bad := parseRating(body)
	if bad != nil {
		return req, bad
	}
	return req, req.validate()
}

func checkContentType(value string) *requestError {
	unsupported := &requestError{
		status: http.StatusUnsupportedMediaType,
		msg:    "Content-Type must be application/json",
	}
	if value == "" {
		return unsupported
	}
	media, params, err := mime.ParseMediaType(value)
	if err != nil || media != "application/json" {
		return unsupported
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &requestError{
			status: http.StatusUnsupportedMediaType,
			msg:    "charset must be utf-8",
		}
	}
	return nil
}

func tooLarge() *requestError {
	return &requestError{
		status: http.StatusRequestEntityTooLarge,
		msg:    fmt.Sprintf("body exceeds %d bytes", MaxBodyBytes),
	}
}

func tooLong(err error) bool {
	var maxErr *http.MaxBytesError
	return errors.As(err, &maxErr)
}

// validate checks the fields of a decoded request.
func (req ratingRequest) validate() *requestError {
	if req.ItemID == nil {
		return badRequest("item_id is required")
	}
	if err := checkItemID(*req.ItemID); err != nil {
		return err
	}
	if req.Score == nil {
		return badRequest("score is required")
	}
	if s := *req.Score; s < MinScore || s > MaxScore {
		return badRequest("score must be an integer from %d to %d", MinScore, MaxScore)
	}
	if req.Comment != nil && utf8.RuneCountInString(*req.Comment) > MaxCommentChars {
		return badRequest("comment must be at most %d characters", MaxCommentChars)
	}
	return nil
}

// checkItemID checks an item id from a body or a path: 1 to 128
// characters of valid UTF-8, none of them a control character.
func checkItemID(id string) *requestError {
	n := utf8.RuneCountInString(id)
	if n < 1 || n > MaxItemIDChars {
		return badRequest("item_id must be 1 to %d characters", MaxItemIDChars)
	}
	if !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return badRequest("item_id must be valid UTF-8 without control characters")
	}
	return nil
}

// clip shortens a client-supplied name before it is echoed back.
func clip(s string) string {
	if len(s) <= maxEchoedNameLen {
		return s
	}
	cut := maxEchoedNameLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
