package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// maxCursorLen bounds what DecodeCursor will look at.
const maxCursorLen = 2048

// CursorCodec signs list cursors so that clients can hand them back but not
// forge positions. A cursor is base64url(JSON) "." base64url(HMAC-SHA256),
// the MAC also covering the route pattern: a cursor from one list is
// rejected by every other list.
type CursorCodec struct {
	key []byte
}

// NewCursorCodec uses key (at least 32 bytes) or, when key is empty, a
// random per-process key: cursors then stop working across restarts and
// between replicas, which only costs clients a restart of their listing.
func NewCursorCodec(key []byte) *CursorCodec {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &CursorCodec{key: bytes.Clone(key)}
}

func (c *CursorCodec) mac(scope string, payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("accountdb-cursor-v1\x00"))
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)
}

// Encode signs v (JSON-marshalled) for scope.
func (c *CursorCodec) Encode(scope string, v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(c.mac(scope, payload)), nil
}

// Decode verifies s for scope and strictly unmarshals it into v. Any
// failure is a 400 validation_failed naming "cursor".
func (c *CursorCodec) Decode(scope, s string, v any) error {
	bad := BadRequest("the cursor is invalid or belongs to another listing", map[string]string{"cursor": "invalid cursor"})
	if len(s) > maxCursorLen {
		return bad
	}
	p64, m64, ok := strings.Cut(s, ".")
	if !ok {
		return bad
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	sig, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, c.mac(scope, payload)) {
		return bad
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bad
	}
	return nil
}

var errNoCursorCodec = errors.New("api: cursor codec missing from the request context (handler not behind NewHandler)")

func cursorCodecFrom(r *http.Request) (*CursorCodec, error) {
	if e := envFrom(r.Context()); e != nil && e.cursors != nil {
		return e.cursors, nil
	}
	return nil, errNoCursorCodec
}

// EncodeCursor signs v as the next-page cursor of the list being served by
// r (scoped to its route pattern) with the router's codec.
func EncodeCursor(r *http.Request, v any) (string, error) {
	c, err := cursorCodecFrom(r)
	if err != nil {
		return "", err
	}
	return c.Encode(routePattern(r), v)
}

// DecodeCursor verifies s, a cursor produced by EncodeCursor on the same
// route, and unmarshals it into v. Tampered or foreign cursors are a 400
// Problem with errors{"cursor": ...}.
func DecodeCursor(r *http.Request, s string, v any) error {
	c, err := cursorCodecFrom(r)
	if err != nil {
		return err
	}
	return c.Decode(routePattern(r), s, v)
}

// CursorParam decodes the ?cursor= query parameter into v. It reports
// false, nil when there is none (the first page).
func CursorParam(r *http.Request, v any) (bool, error) {
	vals := r.URL.Query()["cursor"]
	switch {
	case len(vals) == 0 || (len(vals) == 1 && vals[0] == ""):
		return false, nil
	case len(vals) > 1:
		return false, BadRequest("cursor is given more than once", map[string]string{"cursor": "repeated parameter"})
	}
	return true, DecodeCursor(r, vals[0], v)
}
