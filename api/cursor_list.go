package api

import (
	"net/http"
	"strconv"
)

// List limits (API.md).
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// ParseLimit reads ?limit=: DefaultLimit when absent, else an integer in
// 1..MaxLimit; anything else is a 400 naming "limit".
func ParseLimit(r *http.Request) (int, error) {
	vals := r.URL.Query()["limit"]
	if len(vals) == 0 {
		return DefaultLimit, nil
	}
	bad := BadRequest("limit is invalid", map[string]string{"limit": "must be an integer from 1 to " + strconv.Itoa(MaxLimit)})
	if len(vals) > 1 {
		return 0, bad
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 1 || n > MaxLimit {
		return 0, bad
	}
	return n, nil
}

// List is the envelope of every list answer.
type List[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// WriteList answers 200 with {"items": [...], "next_cursor": ...}; items
// is never null and an empty nextCursor is null (the last page).
func WriteList[T any](w http.ResponseWriter, items []T, nextCursor string) {
	l := List[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if nextCursor != "" {
		l.NextCursor = &nextCursor
	}
	writeJSON(w, http.StatusOK, l)
}
